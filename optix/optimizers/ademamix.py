"""AdEMAMix: Adam whose numerator mixes a fast and a slow EMA of gradients."""

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
from optix.optimizers.adam import check_moment_args, moments
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
)
from optix.tree.math import zeros_like


class ScaleByAdemamixState(NamedTuple):
    """State of ``scale_by_ademamix``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: steps of m1 and nu
    count_m2: jax.Array  # int32 scalar: steps of m2, the count the b3 and alpha schedules see
    m1: Any  # param-shaped: fast EMA of g, decay b1 (dtype mu_dtype)
    m2: Any  # param-shaped: slow EMA of g, decay b3 (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of |g|**2, decay b2 (dtype mu_dtype)


def _value(x: ScalarOrSchedule, count: jax.Array) -> Any:
    return x(count) if callable(x) else x


def scale_by_ademamix(
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by AdEMAMix: a bias-corrected fast EMA plus alpha times a slow one.

    For each leaf, with g the incoming update, t = count + 1, c(b, t) = 1 - b**t and
    b3, alpha evaluated at count_m2 when they are schedules:

        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = b2 * nu + (1 - b2) * |g|**2
        u = (m1 / c(b1, t) + alpha * m2) / (sqrt(nu / c(b2, t) + eps_root) + eps)

    The slow EMA m2 has no bias correction: it fills over ~1 / (1 - b3) steps. The
    paper warms alpha up linearly and b3 up along its half-life, over the same number
    of steps: pass ``alpha=ademamix_alpha_schedule(alpha, 0.0, warmup)`` and
    ``b3=ademamix_b3_schedule(b3, b1, warmup)`` (``optix.schedules.ademamix``). Both,
    like the official JAX code, see count_m2, which is 0 on the first step; the
    official PyTorch code and pytorch_optimizer evaluate their warmups at count + 1.

    Args:
        b1: Decay of the fast EMA, in (-1, 1).
        b2: Decay of the EMA of |g|**2, in [0, 1).
        b3: Decay of the slow EMA, in [0, 1], or a schedule of count_m2.
        alpha: Weight of the slow EMA (any real; >= 0 in the paper), or a schedule.
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        mu_dtype: Dtype of m1, m2 and nu (Optax stores all three in it); ``None`` keeps
            the params' dtype.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdemamixState``.

    References:
        Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older",
        ICLR 2025, arXiv:2409.03137, Algorithm 1.
        Checked against optax.contrib.scale_by_ademamix, the official PyTorch AdEMAMix
        (apple/ml-ademamix, tests/references/ademamix.py) and pytorch_optimizer.AdEMAMix
        in tests/optimizers/test_ademamix.py.
    """
    fn = "scale_by_ademamix"
    check_moment_args(fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype)
    _checks.in_unit_interval(fn, closed_right=True, allow_schedule=True, b3=b3)
    _checks.finite(fn, allow_schedule=True, alpha=alpha)

    def leaf(g, m1, m2, nu, b3_, alpha_, c1, c2):
        dt = compute_dtype(g, m1, m2, nu)
        rdt = real_dtype(dt)
        g_, m1_new, nu_new = moments(g, m1, nu, b1, b2, dt)
        b3_, one_minus_b3 = ema_weights(b3_, dt)
        m2_new = b3_ * m2.astype(dt) + one_minus_b3 * g_
        numerator = m1_new / c1.astype(dt) + jnp.asarray(alpha_, rdt).astype(dt) * m2_new
        u = numerator / (jnp.sqrt(nu_new / c2.astype(rdt) + eps_root) + eps).astype(dt)
        return (
            u.astype(g.dtype),
            m1_new.astype(m1.dtype),
            m2_new.astype(m2.dtype),
            nu_new.astype(nu.dtype),
        )

    def init(params):
        return ScaleByAdemamixState(
            count=zero_count(),
            count_m2=zero_count(),
            m1=zeros_like(params, dtype=mu_dtype),
            m2=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=mu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        b3_ = _value(b3, state.count_m2)
        alpha_ = _value(alpha, state.count_m2)
        count = safe_increment(state.count)
        c1 = bias_correction_factor(b1, count)
        c2 = bias_correction_factor(b2, count)
        updates, m1, m2, nu = map_leaves(
            lambda g, a, b, v: leaf(g, a, b, v, b3_, alpha_, c1, c2),
            updates,
            state.m1,
            state.m2,
            state.nu,
            n_out=4,
        )
        new_state = ScaleByAdemamixState(
            count=count, count_m2=safe_increment(state.count_m2), m1=m1, m2=m2, nu=nu
        )
        return updates, new_state

    return GradientTransformation(init, update)


def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """AdEMAMix: ``scale_by_ademamix``, then decoupled weight decay and the learning rate.

    ``chain(scale_by_ademamix, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``: each step is
    ``p -= learning_rate * (u + weight_decay * p)``, the official code's AdamW-style
    decay. Note Optax's defaults, kept here: alpha is 5.0 in ``ademamix`` and 6.0 in
    ``scale_by_ademamix``. Update rule, warmup schedules and the other arguments: see
    ``scale_by_ademamix``; ``weight_decay`` is >= 0 or a schedule.
    """
    fn = "ademamix"
    check_moment_args(fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
