"""Multiplicative transformations: a constant factor, a schedule, the learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    identity,
    init_empty_state,
    safe_increment,
    zero_count,
)

ScaleState = EmptyState
"""State of ``scale``: Optax's name for ``EmptyState``."""


class ScaleByScheduleState(NamedTuple):
    """State of ``scale_by_schedule`` (and of ``scale_by_learning_rate`` with a schedule)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


def scale_leaves(factor: jax.typing.ArrayLike, updates):
    """Multiply every leaf by ``factor``, computed in the leaf's dtype.

    The factor is cast first so a float32 factor never promotes bf16 updates (and
    never fails under strict dtype promotion).
    """
    return jax.tree.map(lambda u: jnp.asarray(factor, dtype=u.dtype) * u, updates)


def scale(step_size: jax.typing.ArrayLike) -> GradientTransformation:
    """Multiply updates by a constant ``step_size`` (any finite number or an array)."""
    _checks.finite("scale", step_size=step_size)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return scale_leaves(step_size, updates), state

    return GradientTransformation(init_empty_state, update)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply updates by ``step_size_fn(count)``, count = number of previous updates."""
    if not callable(step_size_fn):
        raise TypeError(
            f"scale_by_schedule: step_size_fn must be a callable step -> value, "
            f"got step_size_fn={step_size_fn!r}"
        )

    def init(params):
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        factor = step_size_fn(state.count)
        return scale_leaves(factor, updates), ScaleByScheduleState(safe_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply updates by ``-learning_rate`` (or ``+learning_rate`` without ``flip_sign``).

    The learning rate may be a number, an array or a schedule of the step count. A
    schedule is ``scale_by_schedule`` (state ``ScaleByScheduleState(count)``), a constant
    is ``scale`` (state ``EmptyState()``), as in Optax, so Optax checkpoints load as
    they are. ``optix.serialization.migrate_state`` carries a checkpoint across a switch
    from one to the other. ``None`` means no scaling. A negative learning rate ascends,
    as in Optax.
    """
    if learning_rate is None:
        return identity()
    _checks.finite("scale_by_learning_rate", allow_schedule=True, learning_rate=learning_rate)
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)
