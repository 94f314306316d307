"""Optimizers, one file per family: the family's transform, its state and its aliases."""

from optix.optimizers.adadelta import ScaleByAdaDeltaState, adadelta, scale_by_adadelta
from optix.optimizers.adagrad import ScaleByRssState, adagrad, scale_by_rss
from optix.optimizers.adam import ScaleByAdamState, adam, adamw, nadam, nadamw, scale_by_adam
from optix.optimizers.adamax import adamax, adamaxw, scale_by_adamax
from optix.optimizers.amsgrad import ScaleByAmsgradState, amsgrad, scale_by_amsgrad
from optix.optimizers.lazy_adam import ScaleByLazyAdamState, lazy_adam, scale_by_lazy_adam
from optix.optimizers.nadam_schedule import ScaleByNadamState, scale_by_nadam
from optix.optimizers.rmsprop import (
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    rmsprop,
    scale_by_rms,
    scale_by_stddev,
)
from optix.optimizers.sgd import sgd
from optix.optimizers.yogi import scale_by_yogi, yogi

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByLazyAdamState",
    "ScaleByNadamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "lazy_adam",
    "nadam",
    "nadamw",
    "rmsprop",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_lazy_adam",
    "scale_by_nadam",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "scale_by_yogi",
    "sgd",
    "yogi",
]
