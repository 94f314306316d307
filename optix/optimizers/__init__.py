"""Optimizers, one file per family: the family's transform, its state and its aliases."""

from optix.optimizers.adabelief import (
    ScaleByBeliefAmsgradState,
    ScaleByBeliefState,
    adabelief,
    scale_by_belief,
)
from optix.optimizers.adabound import ScaleByAdaBoundState, adabound, amsbound, scale_by_adabound
from optix.optimizers.adadelta import ScaleByAdaDeltaState, adadelta, scale_by_adadelta
from optix.optimizers.adafactor import FactoredState, adafactor, scale_by_factored_rms
from optix.optimizers.adagrad import ScaleByRssState, adagrad, scale_by_rss
from optix.optimizers.adam import ScaleByAdamState, adam, adamw, nadam, nadamw, scale_by_adam
from optix.optimizers.adamax import adamax, adamaxw, scale_by_adamax
from optix.optimizers.adan import ScaleByAdanState, adan, scale_by_adan
from optix.optimizers.amsgrad import ScaleByAmsgradState, amsgrad, scale_by_amsgrad
from optix.optimizers.asgd import ScaleByAsgdState, asgd, scale_by_asgd
from optix.optimizers.damped_newton import NewtonInfo, ScaleByNewtonState, newton, scale_by_newton
from optix.optimizers.distance_over_gradients import (
    ScaleByDistanceOverGradientsState,
    scale_by_distance_over_gradients,
)
from optix.optimizers.fromage import fromage
from optix.optimizers.lamb import lamb
from optix.optimizers.lars import lars
from optix.optimizers.lazy_adam import ScaleByLazyAdamState, lazy_adam, scale_by_lazy_adam
from optix.optimizers.lbfgs import ScaleByLBFGSState, lbfgs, scale_by_lbfgs
from optix.optimizers.lion import ScaleByLionState, lion, scale_by_lion
from optix.optimizers.nadam_schedule import ScaleByNadamState, scale_by_nadam
from optix.optimizers.noisy_sgd import noisy_sgd
from optix.optimizers.novograd import ScaleByNovogradState, novograd, scale_by_novograd
from optix.optimizers.optimistic import (
    ScaleByOptimisticGradientState,
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
    scale_by_optimistic_gradient,
)
from optix.optimizers.padam import ScaleByPadamState, padam, scale_by_padam
from optix.optimizers.polyak import polyak_sgd, scale_by_polyak
from optix.optimizers.radam import radam, scale_by_radam
from optix.optimizers.ranger import ranger
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
from optix.optimizers.sign import scale_by_sign, sign_sgd, signum
from optix.optimizers.sm3 import ScaleBySM3State, scale_by_sm3, sm3
from optix.optimizers.truncated_newton import (
    NewtonCGInfo,
    ScaleByNewtonCGState,
    newton_cg,
    scale_by_newton_cg,
)
from optix.optimizers.yogi import scale_by_yogi, yogi

__all__ = [
    "FactoredState",
    "NewtonCGInfo",
    "NewtonInfo",
    "ScaleByAdaBoundState",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByAsgdState",
    "ScaleByBeliefAmsgradState",
    "ScaleByBeliefState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByLBFGSState",
    "ScaleByLazyAdamState",
    "ScaleByLionState",
    "ScaleByNadamState",
    "ScaleByNewtonCGState",
    "ScaleByNewtonState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByPadamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleBySM3State",
    "adabelief",
    "adabound",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "amsbound",
    "amsgrad",
    "asgd",
    "fromage",
    "lamb",
    "lars",
    "lazy_adam",
    "lbfgs",
    "lion",
    "nadam",
    "nadamw",
    "newton",
    "newton_cg",
    "noisy_sgd",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "padam",
    "polyak_sgd",
    "radam",
    "ranger",
    "rmsprop",
    "rprop",
    "scale_by_adabound",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_asgd",
    "scale_by_belief",
    "scale_by_distance_over_gradients",
    "scale_by_factored_rms",
    "scale_by_lazy_adam",
    "scale_by_lbfgs",
    "scale_by_lion",
    "scale_by_nadam",
    "scale_by_newton",
    "scale_by_newton_cg",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_padam",
    "scale_by_polyak",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_stddev",
    "scale_by_yogi",
    "sgd",
    "sign_sgd",
    "signum",
    "sm3",
    "yogi",
]
