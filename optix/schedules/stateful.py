"""Schedules with a state of their own, and the states of ``inject_hyperparams``.

A ``StatefulSchedule`` is advanced once per update and sees the update's extra
arguments (a loss value, say); ``WrappedSchedule`` makes a step-count schedule one.
``inject_hyperparams`` (in ``optix.transforms.hyperparams``, also reachable here) keeps
its values in ``InjectStatefulHyperparamsState``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with its own state, advanced once per update (it sees ``**extra_args``).

    ``init()`` gives the first state, ``update(state, **extra_args)`` the next one, and
    ``schedule(state, **extra_args)`` the value used by the update that sees ``state``.
    """

    def init(self) -> Any: ...

    def update(self, state: Any, **extra_args: Any) -> Any: ...

    def __call__(self, state: Any, **extra_args: Any) -> jax.typing.ArrayLike: ...


class WrappedScheduleState(NamedTuple):
    """State of ``WrappedSchedule``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


class WrappedSchedule:
    """A step-count schedule ``schedule_fn(count)`` as a ``StatefulSchedule``.

    The state counts the updates (int32, saturating at its largest value); the value at
    a state is ``schedule_fn(count)``, so the first update uses ``schedule_fn(0)``.

    Args:
        schedule_fn: A function of the step count.
    """

    def __init__(self, schedule_fn: Callable[[jax.Array], Any]):
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """The state before the first update: count 0."""
        return WrappedScheduleState(count=jnp.zeros([], jnp.int32))

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        """The state after one more update (extra arguments are ignored)."""
        del extra_args
        count = state.count
        limit = jnp.iinfo(count.dtype).max
        return WrappedScheduleState(count=jnp.where(count < limit, count + 1, limit))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> jax.typing.ArrayLike:
        """The value at ``state``: ``schedule_fn(state.count)``."""
        del extra_args
        return self.schedule_fn(state.count)


class InjectHyperparamsState(NamedTuple):
    """Optax's former state of ``inject_hyperparams``, kept so old code still imports it.

    ``inject_hyperparams`` builds ``InjectStatefulHyperparamsState``.
    """

    count: jax.Array  # type: ignore[assignment]  # int32 scalar
    hyperparams: dict[str, Any]
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """State of ``inject_hyperparams``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    hyperparams: dict[str, Any]  # the values the last update used (initial values after init)
    hyperparams_states: dict[str, Any]  # one state per scheduled hyperparameter
    inner_state: Any
