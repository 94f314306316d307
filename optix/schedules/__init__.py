"""Schedules: pure functions from the step count to a hyperparameter value.

Names, arguments and values follow ``optax.schedules``; every schedule returns the
default float dtype (float64 under x64) and compiles once under ``jit``.
"""

from optix.schedules._common import Schedule
from optix.schedules.basic import (
    constant_schedule,
    exponential_decay,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
)
from optix.schedules.cosine import (
    cosine_decay_schedule,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from optix.schedules.cycles import cosine_onecycle_schedule, linear_onecycle_schedule
from optix.schedules.join import join_schedules
from optix.schedules.wsd import warmup_stable_decay_schedule

__all__ = [
    "Schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
]
