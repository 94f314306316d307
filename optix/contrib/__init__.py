"""Optax's ``optax.contrib`` names that optix provides, re-exported from where they live."""

from optix.optimizers.acprop import acprop, scale_by_acprop
from optix.optimizers.ademamix import (
    ScaleByAdemamixState,
    ademamix,
    scale_by_ademamix,
)
from optix.optimizers.adopt import adopt, scale_by_adopt
from optix.optimizers.cocob import (
    COCOBState,
    cocob,
    scale_by_cocob,
)
from optix.optimizers.dadaptation import DAdaptAdamWState, dadapt_adamw
from optix.optimizers.dog import (
    DoGState,
    DoWGState,
    dog,
    dowg,
)
from optix.optimizers.galore import (
    GaLoreDimensionNumbers,
    GaLoreState,
    galore,
    scale_by_galore,
)
from optix.optimizers.madgrad import (
    MadgradState,
    madgrad,
    scale_by_madgrad,
)
from optix.optimizers.mechanic import MechanicState, mechanize
from optix.optimizers.momo import (
    MomoAdamState,
    MomoState,
    momo,
    momo_adam,
)
from optix.optimizers.muon import (
    MuonState,
    muon,
    scale_by_muon,
)
from optix.optimizers.muon_axes import MuonDimensionNumbers
from optix.optimizers.prodigy import ProdigyState, prodigy
from optix.optimizers.sam import SAMState, sam
from optix.optimizers.schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_eval_params,
)
from optix.optimizers.schedule_free_aliases import schedule_free_adamw, schedule_free_sgd
from optix.optimizers.simplified_ademamix import (
    ScaleBySimplifiedAdEMAMixState,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from optix.optimizers.sophia import (
    SophiaState,
    sophia,
)
from optix.second_order.hutchinson import HutchinsonState, hutchinson_estimator_diag_hessian
from optix.transforms.complex_valued import SplitRealAndImaginaryState, split_real_and_imaginary
from optix.transforms.normalize import NormalizeState, normalize
from optix.transforms.privacy import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)
from optix.transforms.reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DifferentiallyPrivateAggregateState",
    "DoGState",
    "DoWGState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "HutchinsonState",
    "MadgradState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScheduleFreeState",
    "SophiaState",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "cocob",
    "dadapt_adamw",
    "differentially_private_aggregate",
    "dog",
    "dowg",
    "dpsgd",
    "galore",
    "hutchinson_estimator_diag_hessian",
    "madgrad",
    "mechanize",
    "momo",
    "momo_adam",
    "muon",
    "normalize",
    "prodigy",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_galore",
    "scale_by_madgrad",
    "scale_by_muon",
    "scale_by_simplified_ademamix",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "simplified_ademamix",
    "sophia",
    "split_real_and_imaginary",
]
