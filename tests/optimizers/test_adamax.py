"""Adamax against torch.optim.Adamax and Optax: whole trajectories, float64 and float32."""

import optax
import pytest
import torch

import optix
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry import ENTRIES


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    "kwargs", [{}, {"b1": 0.5, "b2": 0.9, "eps": 0.01}], ids=["default", "betas_eps"]
)
def test_adamax_matches_torch(kwargs, dtype, schedule):
    torch_kwargs = {
        "betas": (kwargs.get("b1", 0.9), kwargs.get("b2", 0.999)),
        "eps": kwargs.get("eps", 1e-8),
    }
    compare(
        lambda lr: optix.adamax(lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.Adamax(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        ENTRIES["adamax"].f32_rtol,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("name", "kwargs"), [("adamax", {}), ("adamaxw", {"weight_decay": 0.1})])
def test_matches_optax(name, kwargs, dtype, schedule):
    compare(
        lambda lr: getattr(optix, name)(lr, **kwargs),
        optax_reference(lambda lr: getattr(optax, name)(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES[name].f32_rtol,
        same_dtype_reference=False,
    )


def test_bad_b2_raises():
    with pytest.raises(ValueError, match=r"adamaxw: b2 must be in \[0, 1\], got b2=1.5"):
        optix.adamaxw(0.1, b2=1.5)
