"""Adamax: Adam with an infinity-norm second moment, and its decoupled-decay variant."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers.adam import ScaleByAdamState, check_moment_args
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import zeros_like


def scale_by_adamax(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Adamax's infinity-norm moment.

    For each leaf, with g the incoming update and t = count + 1:

        mu = b1 * mu + (1 - b1) * g
        nu = max(b2 * nu, |g| + eps)
        u = (mu / (1 - b1**t)) / nu

    eps sits inside the maximum (as in torch.optim.Adamax and Optax), so nu > 0 and
    a zero gradient never divides by zero.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the infinity norm, in [0, 1] (1: the largest |g| so far, undecayed).
        eps: Added to |g| inside the maximum, >= 0.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``, the infinity norm; ``None`` keeps the params' dtype.
            The moments are updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdamState``.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        arXiv:1412.6980, Algorithm 2.
        Checked against torch.optim.Adamax and optax.adamax in
        tests/optimizers/test_adamax.py.
    """
    check_moment_args(
        "scale_by_adamax", b1, b2, eps, b2_interval="[0, 1]", mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )

    def leaf(g, mu, nu, c1):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        (b1_, one_minus_b1), g_ = ema_weights(b1, dt), g.astype(dt)
        b2_ = jnp.asarray(b2, rdt)
        mu_new = b1_ * mu.astype(dt) + one_minus_b1 * g_
        nu_new = jnp.maximum(b2_ * real_part(nu).astype(rdt), jnp.abs(g_) + eps)
        u = (mu_new / c1.astype(dt)) / nu_new.astype(dt)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c1 = bias_correction_factor(b1, count)
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, c1), updates, state.mu, state.nu, n_out=3
        )
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Adamax: ``chain(scale_by_adamax(...), scale_by_learning_rate(learning_rate))``.

    Update rule and arguments: see ``scale_by_adamax``.
    """
    check_moment_args(
        "adamax", b1, b2, eps, b2_interval="[0, 1]", mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    _checks.finite("adamax", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Adamax with decoupled weight decay: ``p -= lr * (u + weight_decay * p)``.

    ``chain(scale_by_adamax, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate)``; update rule: see ``scale_by_adamax``.
    """
    check_moment_args(
        "adamaxw", b1, b2, eps, b2_interval="[0, 1]", mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    _checks.finite("adamaxw", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("adamaxw", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
