"""Schedules: pure functions from the step count to a hyperparameter value.

Names, arguments and values follow ``optax.schedules``; every schedule returns the
default float dtype (float64 under x64) and compiles once under ``jit``.

As in Optax, ``inject_hyperparams`` and ``inject_stateful_hyperparams`` are reachable
here too. They build transformations, a layer above the schedules, and live in
``optix.transforms.hyperparams``: this module looks them up there on first access
(``__getattr__``) and imports nothing from the layers above it.
"""

import importlib
from typing import Any

from optix.schedules._common import Schedule
from optix.schedules.ademamix import ademamix_alpha_schedule, ademamix_b3_schedule
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
from optix.schedules.stateful import (
    InjectHyperparamsState,
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
)
from optix.schedules.wsd import warmup_stable_decay_schedule

# Defined in optix.transforms.hyperparams, resolved by __getattr__ below.
_FROM_TRANSFORMS = ("inject_hyperparams", "inject_stateful_hyperparams")

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "Schedule",
    "StatefulSchedule",
    "WrappedSchedule",
    "ademamix_alpha_schedule",
    "ademamix_b3_schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "inject_hyperparams",  # pyright: ignore[reportUnsupportedDunderAll]
    "inject_stateful_hyperparams",  # pyright: ignore[reportUnsupportedDunderAll]
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


def __getattr__(name: str) -> Any:
    """``inject_hyperparams`` and ``inject_stateful_hyperparams``, imported on first use."""
    if name in _FROM_TRANSFORMS:
        return getattr(importlib.import_module("optix.transforms.hyperparams"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the two resolved on first use included."""
    return sorted({*globals(), *_FROM_TRANSFORMS})
