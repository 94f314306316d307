"""Join schedules end to end: each runs on the steps since its boundary."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import jax.numpy as jnp

from optix.schedules._common import Schedule, as_float


def _checked_boundaries(boundaries: Sequence[int], n_schedules: int) -> list[int | float]:
    """Boundaries as Python numbers (ints where integral): >= 0, non-decreasing, one per join."""
    fn = "join_schedules"
    boundaries = list(boundaries)
    if len(boundaries) != n_schedules - 1:
        raise ValueError(
            f"{fn}: boundaries must have len(schedules) - 1 = {n_schedules - 1} entries, "
            f"got boundaries={boundaries!r}"
        )
    out: list[int | float] = []
    for b in boundaries:
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not 0 <= b < math.inf:
            raise ValueError(f"{fn}: boundaries must be steps >= 0, got boundaries={boundaries!r}")
        out.append(int(b) if float(b).is_integer() else float(b))
    if any(later < earlier for earlier, later in itertools.pairwise(out)):
        raise ValueError(f"{fn}: boundaries must be non-decreasing, got boundaries={boundaries!r}")
    return out


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    At step count, the schedule i with boundaries[i - 1] <= count < boundaries[i]
    gives the value, called on ``count - boundaries[i - 1]`` (the steps since its
    boundary); the first is called on ``count`` itself. Equal boundaries skip the
    schedule between them. Every value is cast to the default float dtype.

    Args:
        schedules: Non-empty sequence of functions of the step count.
        boundaries: ``len(schedules) - 1`` steps, >= 0 and non-decreasing. Optax
            accepts decreasing boundaries (later schedules then hide earlier ones
            without notice) and negative ones; here both raise.

    Returns:
        A function of the step count.

    References:
        Checked against optax.join_schedules in tests/schedules/test_join.py.
    """
    schedules = list(schedules)
    if not schedules or not all(callable(s) for s in schedules):
        raise ValueError(
            "join_schedules: schedules must be a non-empty sequence of functions of the "
            f"step count, got schedules={schedules!r}"
        )
    starts = _checked_boundaries(boundaries, len(schedules))
    integral = all(isinstance(b, int) for b in starts)

    def schedule(count):
        step = jnp.asarray(count)
        if not (integral and jnp.issubdtype(step.dtype, jnp.integer)):
            step = as_float(step)
        value = as_float(schedules[0](step))
        for boundary, later in zip(starts, schedules[1:], strict=True):
            value = jnp.where(step < boundary, value, as_float(later(step - boundary)))
        return value

    return schedule
