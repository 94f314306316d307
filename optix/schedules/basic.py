"""Constant, polynomial, exponential and piecewise schedules: pure functions of the step.

Each schedule maps a step count (0 for the first update) to a value in the default
float dtype (float64 under x64). Step-valued arguments stay Python numbers in the
closure, so a jitted step compiles once whatever the count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import (
    Schedule,
    as_float,
    blend,
    boundaries_and_scales_items,
    clipped_position,
    cosine_weights,
    linear_weights,
    log_of,
    power_weights,
)


def constant_schedule(value: jax.typing.ArrayLike) -> Schedule:
    """The same ``value`` at every step.

    Args:
        value: The value, a number or an array.

    Returns:
        A function of the step count returning ``value`` in the default float dtype.

    References:
        Checked against optax.constant_schedule in tests/schedules/test_basic.py.
    """
    _checks.number("constant_schedule", value=value)
    return lambda count: as_float(value)


def _transition_start(fn: str, transition_begin):
    """``transition_begin``, type-checked; a negative value counts as 0, as in Optax."""
    _checks.number(fn, transition_begin=transition_begin)
    begin = _checks._concrete(transition_begin)
    return 0 if begin is not None and begin < 0 else transition_begin


def _no_transition(fn: str, transition_steps) -> bool:
    """Whether ``transition_steps`` is a concrete number <= 0: Optax's constant schedule."""
    _checks.number(fn, transition_steps=transition_steps)
    steps = _checks._concrete(transition_steps)
    return steps is not None and steps <= 0


def polynomial_schedule(
    init_value: jax.typing.ArrayLike,
    end_value: jax.typing.ArrayLike,
    power: jax.typing.ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Move from ``init_value`` to ``end_value`` along a power of the remaining fraction.

    At step count, with k = clip(count - transition_begin, 0, transition_steps):

        q = ((transition_steps - k) / transition_steps)**power
        value = init_value * q + end_value * (1 - q)

    which is Optax's ``(init_value - end_value) * q + end_value``, with ``1 - q``
    formed as ``-expm1(power * log1p(-k / transition_steps))`` so a warmup from 0
    keeps its relative precision in float32.

    Args:
        init_value: Value up to ``transition_begin``.
        end_value: Value from ``transition_begin + transition_steps`` on.
        power: Exponent of the polynomial, >= 0 (0 holds ``init_value``).
        transition_steps: Length of the transition; a value <= 0 holds ``init_value``
            at every step, as in Optax (a length computed as ``total - warmup`` may
            come out negative in a short run).
        transition_begin: Steps before the transition starts; a negative value counts
            as 0, as in Optax.

    Returns:
        A function of the step count.

    References:
        Checked against optax.polynomial_schedule in tests/schedules/test_basic.py.
    """
    fn = "polynomial_schedule"
    _checks.number(fn, init_value=init_value, end_value=end_value)
    _checks.non_negative(fn, power=power)
    transition_begin = _transition_start(fn, transition_begin)
    if _no_transition(fn, transition_steps) or _checks._concrete(power) == 0:
        return constant_schedule(init_value)

    def schedule(count):
        k = clipped_position(count, transition_begin, transition_steps)
        weights = power_weights(linear_weights(k, transition_steps), power)
        return blend(init_value, end_value, weights)

    return schedule


def linear_schedule(
    init_value: jax.typing.ArrayLike,
    end_value: jax.typing.ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Move linearly from ``init_value`` to ``end_value``: ``polynomial_schedule`` with power 1.

    Args:
        init_value: Value up to ``transition_begin``.
        end_value: Value from ``transition_begin + transition_steps`` on.
        transition_steps: Length of the transition; <= 0 holds ``init_value``.
        transition_begin: Steps before the transition starts (negative counts as 0).

    Returns:
        A function of the step count.

    References:
        Checked against optax.linear_schedule in tests/schedules/test_basic.py.
    """
    fn = "linear_schedule"
    _checks.number(fn, init_value=init_value, end_value=end_value)
    _checks.number(fn, transition_steps=transition_steps, transition_begin=transition_begin)
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(
    init_value: jax.typing.ArrayLike,
    transition_steps: int,
    decay_rate: jax.typing.ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> Schedule:
    """Multiply ``init_value`` by ``decay_rate`` every ``transition_steps`` steps.

    At step count, with k = count - transition_begin:

        p = k / transition_steps                (floor(p) with staircase)
        value = init_value * decay_rate**p      (init_value while k <= 0)

    then clipped below at ``end_value`` when decay_rate < 1, above when decay_rate >= 1.

    Args:
        init_value: Value up to ``transition_begin``.
        transition_steps: Steps per factor of ``decay_rate``; a value <= 0 gives the
            constant schedule ``init_value``, as in Optax.
        decay_rate: Factor per ``transition_steps``, >= 0 (< 1 decays, > 1 grows). 0
            gives the constant schedule ``init_value``, as in Optax. A negative rate
            (NaN or sign flips in Optax) raises.
        transition_begin: Steps before the decay starts (negative counts as 0).
        staircase: Decay in whole factors of ``decay_rate`` instead of continuously.
        end_value: Bound the value stops at; ``None`` for no bound.

    Returns:
        A function of the step count.

    References:
        Checked against optax.exponential_decay in tests/schedules/test_basic.py.
    """
    fn = "exponential_decay"
    _checks.number(fn, init_value=init_value)
    _checks.number(fn, allow_none=True, end_value=end_value)
    _checks.non_negative(fn, decay_rate=decay_rate)
    transition_begin = _transition_start(fn, transition_begin)
    if _no_transition(fn, transition_steps) or _checks._concrete(decay_rate) == 0:
        return constant_schedule(init_value)

    def schedule(count):
        init = as_float(init_value)
        k = as_float(count) - as_float(transition_begin)
        p = k / as_float(transition_steps)
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(k <= 0, init, init * jnp.exp(p * log_of(decay_rate)))
        if end_value is None:
            return value
        end = as_float(end_value)
        decays = as_float(decay_rate) < 1
        return jnp.where(decays, jnp.maximum(value, end), jnp.minimum(value, end))

    return schedule


def piecewise_constant_schedule(
    init_value: jax.typing.ArrayLike,
    boundaries_and_scales: dict[int, float] | None = None,
) -> Schedule:
    """``init_value`` times the product of the scales of every boundary passed.

    At step count: value = init_value * prod(scale for boundary, scale in
    boundaries_and_scales.items() if count >= boundary).

    Args:
        init_value: Value before the first boundary.
        boundaries_and_scales: ``{step: scale}``; steps >= 0, scales finite and >= 0.
            ``None`` or ``{}`` gives a constant schedule.

    Returns:
        A function of the step count.

    References:
        Checked against optax.piecewise_constant_schedule in tests/schedules/test_basic.py.
    """
    _checks.number("piecewise_constant_schedule", init_value=init_value)
    pieces = boundaries_and_scales_items("piecewise_constant_schedule", boundaries_and_scales)

    def schedule(count):
        t = as_float(count)
        value = as_float(init_value)
        for boundary, scale in pieces:
            value = jnp.where(t >= boundary, value * scale, value)
        return value

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: jax.typing.ArrayLike,
    boundaries_and_scales: dict[int, float] | None = None,
) -> Schedule:
    """Interpolate between the running products of the scales, boundary to boundary.

    With boundaries b_1 < ... < b_n (b_0 = 0) and values v_0 = init_value,
    v_i = v_(i-1) * scale_i: between b_i and b_(i+1) the value moves from v_i to
    v_(i+1), linearly or along half a cosine; from b_n on it is v_n.

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: Value at step 0.
        boundaries_and_scales: ``{step: scale}``; steps >= 0, scales finite and >= 0.

    Returns:
        A function of the step count (counts below 0 read as 0; Optax returns 0 there).

    References:
        Checked against optax.piecewise_interpolate_schedule in tests/schedules/test_basic.py.
    """
    fn = "piecewise_interpolate_schedule"
    _checks.one_of(fn, "interpolate_type", interpolate_type, ("linear", "cosine"))
    _checks.number(fn, init_value=init_value)
    pieces = boundaries_and_scales_items(fn, boundaries_and_scales)
    weights = linear_weights if interpolate_type == "linear" else cosine_weights
    starts = [0.0] + [boundary for boundary, _ in pieces]

    def schedule(count):
        t = jnp.maximum(as_float(count), 0)
        values = [as_float(init_value)]
        for _, scale in pieces:
            values.append(values[-1] * scale)
        value = values[-1]
        # Later intervals first, so each step ends with the interval that holds it.
        for i in reversed(range(len(pieces))):
            begin, end = starts[i], starts[i + 1]
            if end > begin:
                inside = blend(values[i], values[i + 1], weights(t - begin, end - begin))
                value = jnp.where(t < end, inside, value)
        return value

    return schedule
