"""Accumulators of past updates: momentum (heavy ball, Nesterov) and moving averages.

Per-leaf math runs in at least float32 (``compute_dtype``); outputs keep the
incoming update's dtype and buffers keep their own.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, safe_increment, zero_count
from optix.tree.leafwise import (
    bias_correction_factor,
    check_complex_slot,
    compute_dtype,
    ema_weights,
    map_leaves,
)
from optix.tree.math import zeros_like


class TraceState(NamedTuple):
    """State of ``trace``."""

    trace: jax.Array  # param-shaped: the momentum buffer


def trace(
    decay: float, nesterov: bool = False, accumulator_dtype: jax.typing.DTypeLike | None = None
) -> GradientTransformation:
    """Heavy-ball momentum; with ``nesterov``, Nesterov's look-ahead form.

    For each leaf, with g the incoming update:

        trace = g + decay * trace
        u = g + decay * trace   if nesterov else   trace

    The buffer starts at zero, so the first ``trace`` equals g. This is
    torch.optim.SGD's momentum with ``dampening=0``; ``momentum_buffer`` adds dampening.

    Args:
        decay: Momentum coefficient, > -1 (negative momentum damps oscillations in games).
        nesterov: Use Nesterov momentum.
        accumulator_dtype: Dtype of the buffer; ``None`` keeps the params' dtype.
    """
    _checks.in_interval("trace", "(-1, inf)", decay=decay)
    _checks.floating_dtype("trace", accumulator_dtype=accumulator_dtype)

    def leaf(g, t):
        check_complex_slot(g, t, "accumulator_dtype")
        dt = compute_dtype(g, t)
        decay_ = jnp.asarray(decay, dt)
        new_t = g.astype(dt) + decay_ * t.astype(dt)
        u = g.astype(dt) + decay_ * new_t if nesterov else new_t
        return u.astype(g.dtype), new_t.astype(t.dtype)

    def init(params):
        return TraceState(trace=zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, new_trace = map_leaves(leaf, updates, state.trace, n_out=2)
        return updates, TraceState(trace=new_trace)

    return GradientTransformation(init, update)


class MomentumBufferState(NamedTuple):
    """State of ``momentum_buffer``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    momentum_buffer: jax.Array  # param-shaped (dtype accumulator_dtype)


def momentum_buffer(
    momentum: float,
    dampening: float = 0.0,
    nesterov: bool = False,
    *,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.SGD's momentum buffer, including its first-step rule.

    For each leaf, with g the incoming update:

        buf = g                                      on the first update
        buf = momentum * buf + (1 - dampening) * g   afterwards
        u = g + momentum * buf   if nesterov else   buf

    Args:
        momentum: Momentum coefficient, >= 0.
        dampening: Fraction of g withheld from the buffer after the first step, in [0, 1].
        nesterov: Nesterov momentum (torch requires ``dampening == 0`` for it).
        accumulator_dtype: Dtype of the buffer; ``None`` keeps the params' dtype.

    References:
        Checked against torch.optim.SGD in tests/torch/test_optim.py.
    """
    _checks.non_negative("momentum_buffer", momentum=momentum)
    _checks.in_unit_interval("momentum_buffer", closed_right=True, dampening=dampening)
    _checks.floating_dtype("momentum_buffer", accumulator_dtype=accumulator_dtype)

    def leaf(g, b, first):
        check_complex_slot(g, b, "accumulator_dtype")
        dt = compute_dtype(g, b)
        momentum_ = jnp.asarray(momentum, dt)
        later = momentum_ * b.astype(dt) + jnp.asarray(1.0 - dampening, dt) * g.astype(dt)
        new_b = jnp.where(first, g.astype(dt), later)
        u = g.astype(dt) + momentum_ * new_b if nesterov else new_b
        return u.astype(g.dtype), new_b.astype(b.dtype)

    def init(params):
        buffer = zeros_like(params, dtype=accumulator_dtype)
        return MomentumBufferState(count=zero_count(), momentum_buffer=buffer)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        first = state.count == 0
        updates, new_buffer = map_leaves(
            lambda g, b: leaf(g, b, first), updates, state.momentum_buffer, n_out=2
        )
        return updates, MomentumBufferState(safe_increment(state.count), new_buffer)

    return GradientTransformation(init, update)


class EmaState(NamedTuple):
    """State of ``ema``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    ema: jax.Array  # param-shaped


def ema(
    decay: jax.typing.ArrayLike,
    debias: bool = True,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Exponential moving average of the updates.

    For each leaf, with g the incoming update and t = count + 1:

        ema = decay * ema + (1 - decay) * g
        u = ema / (1 - decay**t)   if debias else   ema

    Args:
        decay: Decay of the average, in (-1, 1].
        debias: Divide by the bias correction so early averages are not shrunk to zero.
        accumulator_dtype: Dtype of the average; ``None`` keeps the params' dtype.
    """
    _checks.momentum("ema", decay=decay)
    _checks.floating_dtype("ema", accumulator_dtype=accumulator_dtype)

    def leaf(g, e, correction):
        check_complex_slot(g, e, "accumulator_dtype")
        dt = compute_dtype(g, e)
        decay_, one_minus_decay = ema_weights(decay, dt)
        new_e = decay_ * e.astype(dt) + one_minus_decay * g.astype(dt)
        u = new_e / correction.astype(dt) if debias else new_e
        return u.astype(g.dtype), new_e.astype(e.dtype)

    def init(params):
        return EmaState(count=zero_count(), ema=zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        correction = bias_correction_factor(decay, count)
        updates, new_ema = map_leaves(
            lambda g, e: leaf(g, e, correction), updates, state.ema, n_out=2
        )
        return updates, EmaState(count, new_ema)

    return GradientTransformation(init, update)
