"""Optax's ``optax.contrib`` names that optix provides, re-exported from where they live."""

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
    "DifferentiallyPrivateAggregateState",
    "HutchinsonState",
    "NormalizeState",
    "ReduceLROnPlateauState",
    "SplitRealAndImaginaryState",
    "differentially_private_aggregate",
    "dpsgd",
    "hutchinson_estimator_diag_hessian",
    "normalize",
    "reduce_on_plateau",
    "split_real_and_imaginary",
]
