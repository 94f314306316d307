"""ACProp: AdaBelief's centred second moment, applied asynchronously (the gradient of this
step over the second moment of the steps before)."""

from __future__ import annotations

from typing import Literal

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
from optix.optimizers.adabelief import ScaleByBeliefState
from optix.optimizers.adam import check_moment_args
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import zeros_like

Residual = Literal["previous", "current"]


def scale_by_acprop(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    residual: Residual = "previous",
) -> GradientTransformation:
    """Rescale updates by ACProp: g over the root of the centred second moment so far.

    For each leaf, with g the incoming update, k = count (0 on the first step) and
    c(b, k) = 1 - b**k:

        mu_new = b1 * mu + (1 - b1) * g
        e = g - mu                               residual="previous" (Optax)
        e = g - mu_new                           residual="current" (paper, official)
        u = g / (sqrt(nu / c(b2, k)) + eps)      nu from before this step, k >= 1
        u = g / (1 + eps)                        first step, "previous"
        u = g                                    first step, "current"
        nu = b2 * nu + (1 - b2) * |e|**2 + eps_root
        mu = mu_new

    The denominator holds the steps before this one only ("asynchronous"), so g and
    its scale are uncorrelated. Optax centres the residual on the momentum from
    before the step; the paper's Algorithm 2 and the official code centre it on the
    updated momentum, and their first step is plain ``u = g``. The official ACProp
    adds its ``eps`` to the stored second moment before each use (``eps_root = eps``
    here) and defaults to ``rectify=True``, a RAdam-style warmup not provided here;
    ``acprop(lr, b1, b2, eps, eps, weight_decay, residual="current")`` is
    ``ACProp(params, lr, (b1, b2), eps, weight_decay, rectify=False)``.

    Args:
        b1: Decay of the momentum the residual is centred on, in (-1, 1).
        b2: Decay of the EMA of the squared residual, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added to the second moment each step, >= 0.
        residual: "previous" (Optax's) or "current" (the paper's), as above.

    Returns:
        A GradientTransformation whose state is ``ScaleByBeliefState`` (Optax's).

    References:
        Zhuang, Ding, Tang, Dvornek, Tatikonda & Duncan, "Momentum Centering and
        Asynchronous Update for Adaptive Gradient Methods", NeurIPS 2021,
        arXiv:2110.05454, Algorithm 2.
        Checked against optax.contrib.scale_by_acprop and the official ACProp
        (juntang-zhuang/ACProp-Optimizer, tests/references/acprop.py) in
        tests/optimizers/test_acprop.py.
    """
    fn = "scale_by_acprop"
    check_moment_args(fn, b1, b2, eps, eps_root)
    _checks.one_of(fn, "residual", residual, ("previous", "current"))
    first_denominator = 1.0 + eps if residual == "previous" else 1.0

    def leaf(g, mu, nu, first, c2):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        g_, mu_old, nu_old = g.astype(dt), mu.astype(dt), real_part(nu).astype(rdt)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        mu_new = b1_ * mu_old + one_minus_b1 * g_
        e = g_ - (mu_old if residual == "previous" else mu_new)
        nu_new = b2_ * nu_old + scaled_abs_sq(one_minus_b2, e) + eps_root
        later = jnp.sqrt(nu_old / c2.astype(rdt)) + eps
        denominator = jnp.where(first, jnp.asarray(first_denominator, rdt), later)
        u = g_ / denominator.astype(dt)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByBeliefState(count=zero_count(), mu=zeros_like(params), nu=zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        first = state.count == 0
        c2 = bias_correction_factor(b2, state.count)
        c2 = jnp.where(first, jnp.ones_like(c2), c2)  # 1 - b2**0 = 0 is never used
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, first, c2), updates, state.mu, state.nu, n_out=3
        )
        return updates, ScaleByBeliefState(count=safe_increment(state.count), mu=mu, nu=nu)

    return GradientTransformation(init, update)


def acprop(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    residual: Residual = "previous",
) -> GradientTransformation:
    """ACProp: ``scale_by_acprop``, then decoupled weight decay and the learning rate.

    ``chain(scale_by_acprop, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``: each step is
    ``p -= learning_rate * (u + weight_decay * p)``, the official code's default
    (``weight_decouple=True``) decay. Update rule, the two residual conventions and the
    other arguments: see ``scale_by_acprop``; ``weight_decay`` is >= 0 or a schedule.
    """
    fn = "acprop"
    check_moment_args(fn, b1, b2, eps, eps_root)
    _checks.one_of(fn, "residual", residual, ("previous", "current"))
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root, residual=residual),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
