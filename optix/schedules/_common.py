"""Pieces shared by the schedules: float steps, blend weights without cancellation, checks.

A schedule blends two values, ``start * w + end * w_rest`` with ``w + w_rest = 1``.
Both weights are formed directly (never ``1 - w``), so a value near either end keeps
its relative precision in float32: a warmup from 0 at step 1 of 1000, or a decay to 0
one step before its end, stays within a few ulps of the float64 value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Schedule = Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]
"""A function from the step count to a hyperparameter value."""


def as_float(value: jax.typing.ArrayLike) -> jax.Array:
    """``value`` in the default float dtype (float64 under x64), chosen at call time."""
    return jnp.asarray(value, jnp.result_type(float))


def log_of(value: jax.typing.ArrayLike) -> jax.Array:
    """``log(value)`` in the default float dtype, from the double-precision value when concrete.

    Rounding a rate like 0.96 to float32 first would put a relative error of
    ``p * 3e-8`` into ``rate**p``; the logarithm of the exact rate avoids it.
    """
    if isinstance(value, numbers.Real) and float(value) > 0:
        return as_float(math.log(value))
    return jnp.log(as_float(value))


def clipped_position(count: jax.typing.ArrayLike, begin: Any, length: Any) -> jax.Array:
    """Steps since ``begin``, clipped to ``[0, length]``, as a float."""
    return jnp.clip(as_float(count) - as_float(begin), 0, as_float(length))


def linear_weights(k: jax.Array, length: Any) -> tuple[jax.Array, jax.Array]:
    """``(1 - x, x)`` for ``x = clip(k / length, 0, 1)``, the first as ``(length - k) / length``.

    Under ``jit`` XLA turns division by a constant into multiplication by its rounded
    reciprocal, so ``length / length`` can read ``1 - 1e-16``: the ends are pinned to
    exactly 1, which keeps a schedule's first and last values exact.
    """
    length = as_float(length)
    k = jnp.clip(k, 0, length)
    rest = jnp.where(k <= 0, 1, (length - k) / length)
    done = jnp.where(k >= length, 1, k / length)
    return rest, done


def cosine_weights(k: jax.Array, length: Any) -> tuple[jax.Array, jax.Array]:
    """``((1 + cos(pi x)) / 2, (1 - cos(pi x)) / 2)`` for ``x = k / length``.

    Written as ``sin(pi/2 * (1 - x))**2`` and ``sin(pi/2 * x)**2``: sin near 0 keeps its
    relative precision where ``1 + cos`` near ``pi`` would cancel.
    """
    rest, done = linear_weights(k, length)
    return jnp.sin(0.5 * jnp.pi * rest) ** 2, jnp.sin(0.5 * jnp.pi * done) ** 2


def power_weights(
    weights: tuple[jax.Array, jax.Array], exponent: jax.typing.ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """``(w**exponent, 1 - w**exponent)`` from ``(w, 1 - w)``, the second as ``-expm1(..)``.

    An exponent of 0 gives ``(1, 0)`` everywhere, also at ``w = 0`` (where ``0 * log(0)``
    would be NaN).
    """
    w, rest = weights
    exponent = as_float(exponent)
    log_w = jnp.log1p(-rest)
    zero = exponent == 0
    safe_log_w = jnp.where(zero, jnp.zeros_like(log_w), log_w)
    return w**exponent, jnp.where(zero, jnp.zeros_like(rest), -jnp.expm1(exponent * safe_log_w))


def blend(
    start: jax.typing.ArrayLike, end: jax.typing.ArrayLike, weights: tuple[jax.Array, jax.Array]
) -> jax.Array:
    """``start * w + end * w_rest``, in the default float dtype."""
    w, rest = weights
    return as_float(start) * w + as_float(end) * rest


def _number(fn: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | jax.Array):
        raise TypeError(f"{fn}: {name} must be a real number, got {name}={value!r}")
    return float(value)


def boundaries_and_scales_items(fn: str, boundaries_and_scales: Any) -> list[tuple[float, float]]:
    """Sorted ``(boundary, scale)`` pairs as floats; steps and scales must be finite and >= 0."""
    if not boundaries_and_scales:
        return []
    items = sorted(
        (_number(fn, "boundaries_and_scales", b), _number(fn, "boundaries_and_scales", s))
        for b, s in boundaries_and_scales.items()
    )
    for boundary, scale in items:
        if not (0 <= boundary < math.inf and 0 <= scale < math.inf):
            raise ValueError(
                f"{fn}: boundaries_and_scales must map steps >= 0 to finite scales >= 0, "
                f"got boundaries_and_scales={boundaries_and_scales!r}"
            )
    return items
