"""Yogi: Adam with an additive, sign-controlled second moment."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers.adam import ScaleByAdamState, check_moment_args
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import (
    abs_sq,
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import full_like

EpsOn = Literal["corrected", "raw"]


def _check(
    fn, b1, b2, eps, eps_root, initial_accumulator_value, initial_mu, eps_on, **dtypes
) -> None:
    check_moment_args(fn, b1, b2, eps, eps_root, **dtypes)
    _checks.non_negative(fn, initial_accumulator_value=initial_accumulator_value)
    if initial_mu is not None:
        _checks.non_negative(fn, initial_mu=initial_mu)
    _checks.one_of(fn, "eps_on", eps_on, ("corrected", "raw"))


def scale_by_yogi(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
    *,
    initial_mu: float | None = None,
    eps_on: EpsOn = "corrected",
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Yogi: Adam whose second moment moves by at most (1 - b2) * |g|**2.

    For each leaf, with g the incoming update, t = count + 1 and c(b, t) = 1 - b**t:

        mu = b1 * mu + (1 - b1) * g
        nu = nu - (1 - b2) * sign(nu - |g|**2) * |g|**2
        u = (mu / c(b1, t)) / (sqrt(nu / c(b2, t) + eps_root) + eps)       if eps_on == "corrected"
        u = sqrt(c(b2, t)) / c(b1, t) * mu / (sqrt(nu + eps_root) + eps)   if eps_on == "raw"

    ``nu`` starts at ``initial_accumulator_value``; ``mu`` at ``initial_mu``, which
    ``None`` sets to ``initial_accumulator_value``. The defaults are Optax's
    ``scale_by_yogi`` (pytorch_optimizer's Yogi computes the same). TF-Addons' Yogi,
    written from Algorithm 2 of the paper, starts ``mu`` at 0 and adds eps to the
    uncorrected root (Adam's "eps-hat"): ``initial_mu=0.0, eps_on="raw"``. ``mu`` and
    ``nu`` are the paper's m_t and v_t.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Controls the step of ``nu``, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        initial_accumulator_value: Starting value of ``nu`` (and of ``mu`` by default), >= 0.
        initial_mu: Starting value of ``mu``, >= 0; ``None`` uses ``initial_accumulator_value``.
        eps_on: Add eps to the bias-"corrected" root (Optax) or to the "raw" root (TF-Addons).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. The moments are
            updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdamState``.

    References:
        Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for Nonconvex
        Optimization", NeurIPS 2018, Algorithm 2.
        Checked against optax.scale_by_yogi, pytorch_optimizer.Yogi and a NumPy
        transliteration of TF-Addons' Yogi in tests/optimizers/test_yogi.py.
    """
    dtypes = {"mu_dtype": mu_dtype, "nu_dtype": nu_dtype}
    _check(
        "scale_by_yogi",
        b1,
        b2,
        eps,
        eps_root,
        initial_accumulator_value,
        initial_mu,
        eps_on,
        **dtypes,
    )
    mu_init = initial_accumulator_value if initial_mu is None else initial_mu

    def leaf(g, mu, nu, c1, c2):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        one_minus_b2 = jnp.asarray(1 - b2, rdt)
        g_ = g.astype(dt)
        g2 = abs_sq(g_)
        mu_new = b1_ * mu.astype(dt) + one_minus_b1 * g_
        nu_ = real_part(nu).astype(rdt)
        nu_new = nu_ - one_minus_b2 * jnp.sign(nu_ - g2) * g2
        c1, c2 = c1.astype(dt), c2.astype(rdt)
        if eps_on == "corrected":
            u = (mu_new / c1) / (jnp.sqrt(nu_new / c2 + eps_root) + eps).astype(dt)
        else:
            denominator = (jnp.sqrt(nu_new + eps_root) + eps).astype(dt)
            u = jnp.sqrt(c2).astype(dt) / c1 * mu_new / denominator
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=full_like(params, mu_init, dtype=mu_dtype),
            nu=full_like(params, initial_accumulator_value, dtype=nu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c1, c2 = bias_correction_factor(b1, count), bias_correction_factor(b2, count)
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, c1, c2), updates, state.mu, state.nu, n_out=3
        )
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    *,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
    initial_mu: float | None = None,
    eps_on: EpsOn = "corrected",
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Yogi: ``chain(scale_by_yogi(...), scale_by_learning_rate(learning_rate))``.

    Update rule and arguments: see ``scale_by_yogi``. The keyword-only arguments are
    optix's (Optax's alias fixes them at ``scale_by_yogi``'s defaults).
    """
    dtypes = {"mu_dtype": mu_dtype, "nu_dtype": nu_dtype}
    _check("yogi", b1, b2, eps, eps_root, initial_accumulator_value, initial_mu, eps_on, **dtypes)
    _checks.finite("yogi", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_yogi(
            b1,
            b2,
            eps,
            eps_root,
            initial_accumulator_value,
            initial_mu=initial_mu,
            eps_on=eps_on,
            **dtypes,
        ),
        scale_by_learning_rate(learning_rate),
    )
