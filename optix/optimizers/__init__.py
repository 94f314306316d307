"""Optimizers, one file per family: the family's transform, its state and its aliases."""

from optix.optimizers.adadelta import ScaleByAdaDeltaState, adadelta, scale_by_adadelta
from optix.optimizers.adagrad import ScaleByRssState, adagrad, scale_by_rss
from optix.optimizers.adam import ScaleByAdamState, adam, adamw, nadam, nadamw, scale_by_adam
from optix.optimizers.adamax import adamax, adamaxw, scale_by_adamax
from optix.optimizers.adan import ScaleByAdanState, adan, scale_by_adan
from optix.optimizers.amsgrad import ScaleByAmsgradState, amsgrad, scale_by_amsgrad
from optix.optimizers.asgd import ScaleByAsgdState, asgd, scale_by_asgd
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
from optix.optimizers.rprop import ScaleByRpropState, rprop, scale_by_rprop
from optix.optimizers.sgd import sgd
from optix.optimizers.yogi import scale_by_yogi, yogi

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByAsgdState",
    "ScaleByLazyAdamState",
    "ScaleByNadamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "amsgrad",
    "asgd",
    "lazy_adam",
    "nadam",
    "nadamw",
    "rmsprop",
    "rprop",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_asgd",
    "scale_by_lazy_adam",
    "scale_by_nadam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_stddev",
    "scale_by_yogi",
    "sgd",
    "yogi",
]
