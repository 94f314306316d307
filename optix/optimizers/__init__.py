"""Optimizers, one file per family: the family's transform, its state and its aliases."""

from optix.optimizers.acprop import acprop, scale_by_acprop
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
from optix.optimizers.adam_mini import (
    AdamMiniBlocks,
    ScaleByAdamMiniState,
    adam_mini,
    scale_by_adam_mini,
)
from optix.optimizers.adamax import adamax, adamaxw, scale_by_adamax
from optix.optimizers.adan import ScaleByAdanState, adan, scale_by_adan
from optix.optimizers.ademamix import ScaleByAdemamixState, ademamix, scale_by_ademamix
from optix.optimizers.adopt import adopt, scale_by_adopt
from optix.optimizers.amsgrad import ScaleByAmsgradState, amsgrad, scale_by_amsgrad
from optix.optimizers.asgd import ScaleByAsgdState, asgd, scale_by_asgd
from optix.optimizers.cocob import COCOBState, cocob, scale_by_cocob
from optix.optimizers.dadaptation import DAdaptAdamWState, dadapt_adamw
from optix.optimizers.dadaptation_adagrad import (
    ScaleByDAdaptAdaGradState,
    dadapt_adagrad,
    scale_by_dadapt_adagrad,
)
from optix.optimizers.dadaptation_sgd import ScaleByDAdaptSGDState, dadapt_sgd, scale_by_dadapt_sgd
from optix.optimizers.damped_newton import NewtonInfo, ScaleByNewtonState, newton, scale_by_newton
from optix.optimizers.distance_over_gradients import (
    ScaleByDistanceOverGradientsState,
    scale_by_distance_over_gradients,
)
from optix.optimizers.dog import DoGState, DoWGState, dog, dowg, scale_by_dog, scale_by_dowg
from optix.optimizers.fromage import fromage
from optix.optimizers.galore import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore
from optix.optimizers.galore_adamw import galore_adamw, scale_by_galore_adam
from optix.optimizers.kron import KronState, kron, scale_by_kron
from optix.optimizers.lamb import lamb
from optix.optimizers.lars import lars
from optix.optimizers.lazy_adam import ScaleByLazyAdamState, lazy_adam, scale_by_lazy_adam
from optix.optimizers.lbfgs import ScaleByLBFGSState, lbfgs, scale_by_lbfgs
from optix.optimizers.lion import ScaleByLionState, lion, scale_by_lion
from optix.optimizers.madgrad import MadgradState, madgrad, scale_by_madgrad
from optix.optimizers.mechanic import MechanicState, mechanize
from optix.optimizers.momo import MomoAdamState, MomoState, momo, momo_adam
from optix.optimizers.muon import MuonState, muon, scale_by_muon
from optix.optimizers.muon_axes import MuonDimensionNumbers
from optix.optimizers.muon_jordan import muon_jordan, muon_with_adamw
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
from optix.optimizers.prodigy import ProdigyGrowthState, ProdigyState, prodigy
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
from optix.optimizers.sam import SAMState, sam, sam_sgd, scale_by_sam
from optix.optimizers.schedule_free import ScheduleFreeState
from optix.optimizers.schedule_free_aliases import schedule_free_adamw, schedule_free_sgd
from optix.optimizers.sgd import sgd
from optix.optimizers.shampoo import ShampooState, scale_by_shampoo, shampoo
from optix.optimizers.sign import scale_by_sign, sign_sgd, signum
from optix.optimizers.simplified_ademamix import (
    ScaleBySimplifiedAdEMAMixState,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from optix.optimizers.sm3 import ScaleBySM3State, scale_by_sm3, sm3
from optix.optimizers.soap import SoapState, scale_by_soap, soap
from optix.optimizers.sophia import SophiaState, scale_by_sophia, sophia
from optix.optimizers.sophia_g import GaussNewtonBartlettState, scale_by_sophia_g, sophia_g
from optix.optimizers.truncated_newton import (
    NewtonCGInfo,
    ScaleByNewtonCGState,
    newton_cg,
    scale_by_newton_cg,
)
from optix.optimizers.yogi import scale_by_yogi, yogi

__all__ = [
    "AdamMiniBlocks",
    "COCOBState",
    "DAdaptAdamWState",
    "DoGState",
    "DoWGState",
    "FactoredState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "GaussNewtonBartlettState",
    "KronState",
    "MadgradState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MuonDimensionNumbers",
    "MuonState",
    "NewtonCGInfo",
    "NewtonInfo",
    "ProdigyGrowthState",
    "ProdigyState",
    "SAMState",
    "ScaleByAdaBoundState",
    "ScaleByAdaDeltaState",
    "ScaleByAdamMiniState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAdemamixState",
    "ScaleByAmsgradState",
    "ScaleByAsgdState",
    "ScaleByBeliefAmsgradState",
    "ScaleByBeliefState",
    "ScaleByDAdaptAdaGradState",
    "ScaleByDAdaptSGDState",
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
    "ScaleBySimplifiedAdEMAMixState",
    "ScheduleFreeState",
    "ShampooState",
    "SoapState",
    "SophiaState",
    "acprop",
    "adabelief",
    "adabound",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adam_mini",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "ademamix",
    "adopt",
    "amsbound",
    "amsgrad",
    "asgd",
    "cocob",
    "dadapt_adagrad",
    "dadapt_adamw",
    "dadapt_sgd",
    "dog",
    "dowg",
    "fromage",
    "galore",
    "galore_adamw",
    "kron",
    "lamb",
    "lars",
    "lazy_adam",
    "lbfgs",
    "lion",
    "madgrad",
    "mechanize",
    "momo",
    "momo_adam",
    "muon",
    "muon_jordan",
    "muon_with_adamw",
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
    "prodigy",
    "radam",
    "ranger",
    "rmsprop",
    "rprop",
    "sam",
    "sam_sgd",
    "scale_by_acprop",
    "scale_by_adabound",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adam_mini",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_amsgrad",
    "scale_by_asgd",
    "scale_by_belief",
    "scale_by_cocob",
    "scale_by_dadapt_adagrad",
    "scale_by_dadapt_sgd",
    "scale_by_distance_over_gradients",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_factored_rms",
    "scale_by_galore",
    "scale_by_galore_adam",
    "scale_by_kron",
    "scale_by_lazy_adam",
    "scale_by_lbfgs",
    "scale_by_lion",
    "scale_by_madgrad",
    "scale_by_muon",
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
    "scale_by_sam",
    "scale_by_shampoo",
    "scale_by_sign",
    "scale_by_simplified_ademamix",
    "scale_by_sm3",
    "scale_by_soap",
    "scale_by_sophia",
    "scale_by_sophia_g",
    "scale_by_stddev",
    "scale_by_yogi",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
    "shampoo",
    "sign_sgd",
    "signum",
    "simplified_ademamix",
    "sm3",
    "soap",
    "sophia",
    "sophia_g",
    "yogi",
]
