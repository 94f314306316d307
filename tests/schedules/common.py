"""Evaluate schedules step by step the way an optimizer does, and compare them with Optax's.

``run`` calls the schedule at every int32 count through one jitted function and
asserts it compiled once: the count is data, never a constant baked into the program.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

F64_RTOL = 1e-12
F32_RTOL = 1e-6


def run(schedule: Callable, steps: int) -> np.ndarray:
    """Values at counts 0..steps-1, in the default float dtype, compiled once."""
    traces = []

    @jax.jit
    def value(count):
        traces.append(None)
        return schedule(count)

    values = [value(jnp.asarray(count, jnp.int32)) for count in range(steps)]
    assert len(traces) == 1, "the schedule recompiled for a new count"
    assert all(v.dtype == jnp.result_type(float) for v in values)
    return np.asarray(values)


def run64(schedule: Callable, steps: int) -> np.ndarray:
    with jax.enable_x64(True):
        return run(schedule, steps)


LAW_STEPS = 120


def values64(schedule: Callable) -> np.ndarray:
    """Float64 values at counts 0..LAW_STEPS-1 (a fixed length: eager ops compile once)."""
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(schedule)(jnp.arange(LAW_STEPS)))


def optax_values(name: str, args: tuple, kwargs: dict, steps: int) -> np.ndarray:
    """Optax's schedule in float64 (its code relies on standard promotion)."""
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        schedule = getattr(optax.schedules, name)(*args, **kwargs)
        return np.asarray([float(schedule(jnp.asarray(c, jnp.int64))) for c in range(steps)])


def max_relative_difference(actual: np.ndarray, expected: np.ndarray, floor: float = 0.0) -> float:
    """Largest |actual - expected| / max(|expected|, floor); where that is 0, actual must be 0."""
    scale = np.maximum(np.abs(expected), floor)
    scale = np.where(scale == 0, 1.0, scale)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected) / scale))


def assert_matches_optax(
    ours: Callable, name: str, args: tuple, kwargs: dict, steps: int, f32_floor: float = 0.0
):
    """float64 within F64_RTOL of Optax's float64; float32 within F32_RTOL of it too.

    ``f32_floor`` floors the float32 denominator, for schedules that cross zero (no
    float32 formula keeps relative precision where init and end values cancel).
    """
    schedule = ours(*args, **kwargs)
    expected = optax_values(name, args, kwargs, steps)
    assert len(np.unique(expected)) > 2, "the run does not pass the schedule's phases"
    f64 = max_relative_difference(run64(schedule, steps), expected)
    f32 = max_relative_difference(run(schedule, steps), expected, f32_floor)
    assert f64 <= F64_RTOL, f"float64 differs from optax.{name} by {f64:.3g}"
    assert f32 <= F32_RTOL, f"float32 differs from optax.{name} (float64) by {f32:.3g}"


def in_order(values: np.ndarray, increasing: bool, tol: float = 1e-12) -> bool:
    """Non-decreasing (or non-increasing) up to ``tol`` relative to the largest value."""
    steps = np.diff(values) if increasing else -np.diff(values)
    return bool(np.all(steps >= -tol * max(1.0, float(np.max(np.abs(values))))))
