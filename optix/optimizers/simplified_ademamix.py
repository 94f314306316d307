"""Simplified AdEMAMix: one undamped momentum plus alpha times the gradient, over Adam's
second moment."""

from __future__ import annotations

from typing import Any, NamedTuple

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


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """State of ``scale_by_simplified_ademamix`` (Optax's field names)."""

    t: jax.Array  # int32 scalar: number of updates applied so far
    m: Any  # param-shaped: undamped momentum, m = b1 * m + g
    n: Any  # param-shaped: EMA of |g|**2 with decay b2


def _check(fn: str, b1: Any, b2: Any, alpha: Any, eps: Any, eps_root: Any) -> None:
    if callable(b1):
        check_moment_args(fn, 0.0, b2, eps, eps_root)
    else:
        check_moment_args(fn, b1, b2, eps, eps_root)
    _checks.finite(fn, allow_schedule=True, alpha=alpha)


def scale_by_simplified_ademamix(
    b1: ScalarOrSchedule = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> GradientTransformation:
    """Rescale updates by simplified AdEMAMix (theory-style momentum, no numerator correction).

    For each leaf, with g the incoming update, k = t before this step (b1 and alpha
    evaluated at k when they are schedules) and c(b, t) = 1 - b**t:

        m = b1 * m + g
        n = b2 * n + (1 - b2) * |g|**2
        t = t + 1
        u = (m + alpha * g) / (sqrt(n / c(b2, t) + eps_root) + eps)

    m sums gradients without the (1 - b1) factor, so the learning rate is coupled with
    b1 (about ``(1 - b1)`` times Adam's). alpha = 0 is Adam with that rescaling; a
    large alpha with b1 near 1 approaches AdEMAMix. A schedule for b1 (an optix
    extension; Optax's b1 is a number) gives the official b1 warmup from ``min_beta1``
    over ``beta1_warmup`` steps:
    ``b1=lambda k: ademamix_b3_schedule(b1, min_beta1, beta1_warmup)(k + 1)`` (the
    official code evaluates it at the step after the increment, with 1e-8 inside its
    log). The official code's ``bias_correction1=True`` (divide by the sum of b1
    powers) is not provided. pytorch_optimizer's SimplifiedAdEMAMix is a different
    rule (EMA momentum, a denominator scaled by ``sqrt(c(b2, t))`` the other way).

    Args:
        b1: Momentum of the undamped sum, in (-1, 1), or a schedule of the count.
        b2: Decay of the EMA of |g|**2, in [0, 1).
        alpha: Weight of the current gradient (any real; >= 0 in the paper), or a
            schedule of the count.
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.

    Returns:
        A GradientTransformation whose state is ``ScaleBySimplifiedAdEMAMixState``.

    References:
        Morwani et al., "Connections between Schedule-Free Optimizers,
        AdEMAMix, and Accelerated SGD Variants", arXiv:2502.02431, Algorithm 2.
        Checked against optax.contrib.scale_by_simplified_ademamix and the official
        SimAdEMAMix (DepenM/Simplified-AdEMAMix, tests/references/ademamix.py) in
        tests/optimizers/test_ademamix.py.
    """
    _check("scale_by_simplified_ademamix", b1, b2, alpha, eps, eps_root)

    def leaf(g, m, n, b1_, alpha_, c2):
        dt = compute_dtype(g, m, n)
        rdt = real_dtype(dt)
        g_ = g.astype(dt)
        m_new = jnp.asarray(b1_, dt) * m.astype(dt) + g_
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        n_new = b2_ * real_part(n).astype(rdt) + scaled_abs_sq(one_minus_b2, g_)
        numerator = m_new + jnp.asarray(alpha_, rdt).astype(dt) * g_
        u = numerator / (jnp.sqrt(n_new / c2.astype(rdt) + eps_root) + eps).astype(dt)
        return u.astype(g.dtype), m_new.astype(m.dtype), n_new.astype(n.dtype)

    def init(params):
        return ScaleBySimplifiedAdEMAMixState(
            t=zero_count(), m=zeros_like(params), n=zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        b1_ = b1(state.t) if callable(b1) else b1
        alpha_ = alpha(state.t) if callable(alpha) else alpha
        t = safe_increment(state.t)
        c2 = bias_correction_factor(b2, t)
        updates, m, n = map_leaves(
            lambda g, m_, n_: leaf(g, m_, n_, b1_, alpha_, c2), updates, state.m, state.n, n_out=3
        )
        return updates, ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)

    return GradientTransformation(init, update)


def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """Simplified AdEMAMix: the transform, then decoupled weight decay and the learning rate.

    ``chain(scale_by_simplified_ademamix, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``: each step is
    ``p -= learning_rate * (u + weight_decay * p)``, the official code's decay. Update
    rule and the other arguments: see ``scale_by_simplified_ademamix``;
    ``weight_decay`` is >= 0 or a schedule.
    """
    fn = "simplified_ademamix"
    _check(fn, b1, b2, alpha, eps, eps_root)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
