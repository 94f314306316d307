"""Lion: the sign of an interpolation between momentum and gradient."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

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
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import compute_dtype, ema_weights, map_leaves, real_dtype
from optix.tree.math import zeros_like

Mode = Literal["hard", "smooth", "refined"]


class ScaleByLionState(NamedTuple):
    """State of ``scale_by_lion``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g with decay b2 (dtype mu_dtype)


def _check(fn: str, b1: Any, b2: Any, mode: str, smooth_beta: Any, mu_dtype: Any) -> None:
    _checks.in_unit_interval(fn, closed_right=True, b1=b1, b2=b2)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype)
    _checks.one_of(fn, "mode", mode, ("hard", "smooth", "refined"))
    _checks.positive(fn, smooth_beta=smooth_beta)


def scale_by_lion(
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    mode: Mode = "hard",
    smooth_beta: float = 1.0,
) -> GradientTransformation:
    """Rescale updates to the sign of Lion's interpolated momentum.

    For each leaf, with g the incoming update:

        c = b1 * mu + (1 - b1) * g
        u = sign(c)                              if mode == "hard"
        u = tanh(smooth_beta * c)                if mode == "smooth"
                                                 (sign(c) * tanh(smooth_beta * |c|) if complex)
        u = c if |c| < 1 else sign(c)            if mode == "refined"
        mu = b2 * mu + (1 - b2) * g

    The update uses the momentum from before this step; the paper's beta1 and beta2
    are b1 and b2. "smooth" and "refined" are Optax's variants of the sign.

    Args:
        b1: Weight of the momentum in the interpolation, in [0, 1].
        b2: Decay of the momentum, in [0, 1].
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype. It is updated in at
            least float32 and stored back in it.
        mode: "hard" (the paper's sign), "smooth" or "refined".
        smooth_beta: Slope of the tanh in "smooth" mode, > 0.

    Returns:
        A GradientTransformation whose state is ``ScaleByLionState``.

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
        arXiv:2302.06675, Program 1.
        Checked against optax.scale_by_lion and pytorch_optimizer.Lion in
        tests/optimizers/test_lion.py.
    """
    _check("scale_by_lion", b1, b2, mode, smooth_beta, mu_dtype)

    def leaf(g, mu):
        dt = compute_dtype(g, mu)
        rdt = real_dtype(dt)
        g_, mu_ = g.astype(dt), mu.astype(dt)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        b2_, one_minus_b2 = ema_weights(b2, dt)
        c = b1_ * mu_ + one_minus_b1 * g_
        if mode == "hard":
            u = jnp.sign(c)
        elif mode == "smooth":
            beta = jnp.asarray(smooth_beta, rdt)
            if jnp.iscomplexobj(c):  # the phase of c, with tanh of its modulus
                u = jnp.sign(c) * jnp.tanh(beta * jnp.abs(c)).astype(dt)
            else:
                u = jnp.tanh(beta * c)
        else:
            u = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
        mu_new = b2_ * mu_ + one_minus_b2 * g_
        return u.astype(g.dtype), mu_new.astype(mu.dtype)

    def init(params):
        return ScaleByLionState(count=zero_count(), mu=zeros_like(params, dtype=mu_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, mu = map_leaves(leaf, updates, state.mu, n_out=2)
        return updates, ScaleByLionState(count=safe_increment(state.count), mu=mu)

    return GradientTransformation(init, update)


def lion(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: MaskOrFn = None,
    *,
    mode: Mode = "hard",
    smooth_beta: float = 1.0,
) -> GradientTransformation:
    """Lion: ``scale_by_lion``, then decoupled weight decay and the learning rate.

    ``chain(scale_by_lion, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``: each step is
    ``p -= learning_rate * (sign(c) + weight_decay * p)`` with c from ``scale_by_lion``,
    the official code's decoupled decay ``p *= 1 - lr * wd``.
    Lion's learning rate is typically 3-10x smaller than AdamW's and its weight decay
    3-10x larger. Update rule and arguments: see ``scale_by_lion``.
    """
    _check("lion", b1, b2, mode, smooth_beta, mu_dtype)
    _checks.finite("lion", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("lion", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_lion(b1, b2, mu_dtype, mode=mode, smooth_beta=smooth_beta),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
