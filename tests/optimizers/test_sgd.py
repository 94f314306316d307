"""SGD against torch.optim.SGD and optax.sgd: whole trajectories, float64 and float32."""

import optax
import pytest
import torch

import optix
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry import ENTRIES

CASES = [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES, ids=["plain", "momentum", "nesterov"])
def test_trajectory_matches_torch(kwargs, dtype, schedule):
    compare(
        lambda lr: optix.sgd(lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.SGD(params, lr=lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["sgd"].f32_rtol,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES, ids=["plain", "momentum", "nesterov"])
def test_trajectory_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: optix.sgd(lr, **kwargs),
        optax_reference(lambda lr: optax.sgd(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["sgd"].f32_rtol,
        same_dtype_reference=False,
    )


def test_nesterov_without_momentum_raises():
    with pytest.raises(ValueError, match="sgd: nesterov=True needs a momentum"):
        optix.sgd(0.1, nesterov=True)


def test_negative_momentum_raises():
    with pytest.raises(
        ValueError, match=r"sgd: momentum must be in \(-1, inf\), got momentum=-1.0"
    ):
        optix.sgd(0.1, momentum=-1.0)
