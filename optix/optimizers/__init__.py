"""Optimizers, one file per family: the family's transform, its state and its aliases."""

from optix.optimizers.adam import ScaleByAdamState, adam, adamw, nadam, nadamw, scale_by_adam
from optix.optimizers.adamax import adamax, adamaxw, scale_by_adamax
from optix.optimizers.amsgrad import ScaleByAmsgradState, amsgrad, scale_by_amsgrad
from optix.optimizers.nadam_schedule import ScaleByNadamState, scale_by_nadam
from optix.optimizers.sgd import sgd

__all__ = [
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByNadamState",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "nadam",
    "nadamw",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_nadam",
    "sgd",
]
