"""AMSGrad: Adam with a non-decreasing second moment, in Optax's and torch's orders."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, safe_increment, zero_count
from optix.optimizers.adam import check_moment_args, moments
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import zeros_like


class ScaleByAmsgradState(NamedTuple):
    """State of ``scale_by_amsgrad``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2 (dtype nu_dtype)
    nu_max: Any  # param-shaped: running maximum of nu, see nu_max_of (dtype nu_dtype)


def scale_by_amsgrad(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_max_of: Literal["corrected", "raw"] = "corrected",
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by AMSGrad: Adam with a non-decreasing second moment.

    For each leaf, with g the incoming update, t = count + 1 and c(b, t) = 1 - b**t
    (a correction switched off by ``bias_correction_mu`` / ``bias_correction_nu`` is 1):

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g|**2
        nu_max = max(nu_max, nu / c(b2, t)),   v = nu_max              if nu_max_of == "corrected"
        nu_max = max(nu_max, nu),              v = nu_max / c(b2, t)   if nu_max_of == "raw"
        u = (mu / c(b1, t)) / (sqrt(v + eps_root) + eps)

    The two orders are different algorithms: "corrected" is Optax's ``amsgrad``,
    "raw" is torch.optim.Adam(amsgrad=True), which keeps the maximum of the raw
    ``nu`` and divides it by the current correction. With
    ``bias_correction_nu=False`` both are the paper's algorithm.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        bias_correction_mu: Divide ``mu`` by ``1 - b1**t``.
        bias_correction_nu: Divide ``nu`` by ``1 - b2**t``.
        nu_max_of: Take the maximum of the "corrected" or of the "raw" second moment.
        nu_dtype: Dtype of ``nu`` and ``nu_max``; ``None`` keeps the params' dtype. The
            moments are updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByAmsgradState``.

    References:
        Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018,
        arXiv:1904.09237, Algorithm 2.
        Checked against optax.scale_by_amsgrad and torch.optim.Adam(amsgrad=True) in
        tests/optimizers/test_adam.py.
    """
    check_moment_args(
        "scale_by_amsgrad", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    _checks.one_of("scale_by_amsgrad", "nu_max_of", nu_max_of, ("corrected", "raw"))

    def leaf(g, mu, nu, nu_max, c1, c2):
        dt = compute_dtype(g, mu, nu, nu_max)
        rdt = real_dtype(dt)
        _, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        c1 = c1.astype(dt) if bias_correction_mu else jnp.ones([], dt)
        c2 = c2.astype(rdt) if bias_correction_nu else jnp.ones([], rdt)
        nu_max_ = real_part(nu_max).astype(rdt)
        if nu_max_of == "corrected":
            nu_max_new = jnp.maximum(nu_max_, nu_new / c2)
            v = nu_max_new
        else:
            nu_max_new = jnp.maximum(nu_max_, nu_new)
            v = nu_max_new / c2
        u = (mu_new / c1) / (jnp.sqrt(v + eps_root) + eps).astype(dt)
        return (
            u.astype(g.dtype),
            mu_new.astype(mu.dtype),
            nu_new.astype(nu.dtype),
            nu_max_new.astype(nu_max.dtype),
        )

    def init(params):
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
            nu_max=zeros_like(params, dtype=nu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c1, c2 = bias_correction_factor(b1, count), bias_correction_factor(b2, count)
        updates, mu, nu, nu_max = map_leaves(
            lambda g, m, v, vm: leaf(g, m, v, vm, c1, c2),
            updates,
            state.mu,
            state.nu,
            state.nu_max,
            n_out=4,
        )
        return updates, ScaleByAmsgradState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init, update)


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_max_of: Literal["corrected", "raw"] = "corrected",
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AMSGrad: ``chain(scale_by_amsgrad(...), scale_by_learning_rate(learning_rate))``.

    Update rule and arguments: see ``scale_by_amsgrad``.
    """
    check_moment_args("amsgrad", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("amsgrad", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu,
            bias_correction_nu,
            nu_max_of=nu_max_of,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )
