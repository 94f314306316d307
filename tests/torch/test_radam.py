"""optix.torch.radam against torch.optim.RAdam: whole trajectories, float64 and float32.

20 steps: rectification starts at t = 6 for b2 = 0.999 and 0.9, at t = 10 for b2 = 0.7.
"""

import inspect

import pytest
import torch

from optix.torch.radam import radam
from tests.reference import DTYPES, SCHEDULES, compare, torch_reference
from tests.registry import ENTRIES

CASES = {
    "default": {},
    "betas_eps": {"betas": (0.8, 0.9), "eps": 0.1},
    "late_onset": {"betas": (0.9, 0.7), "eps": 1e-3},
    "weight_decay": {"weight_decay": 0.1},
    "decoupled": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "maximize": {"weight_decay": 0.1, "maximize": True},
    "maximize_decoupled": {"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES.keys())
def test_trajectory_matches_torch(kwargs, dtype, schedule):
    compare(
        lambda lr: radam(lr=lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.RAdam(params, lr=lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["torch.radam"].f32_rtol,
    )


def test_arguments_and_defaults_match_torch():
    ours = inspect.signature(radam).parameters
    theirs = inspect.signature(torch.optim.RAdam).parameters
    for name, param in theirs.items():
        if name == "params":
            continue
        assert name in ours, f"optix.torch.radam lacks torch's argument {name}"
        assert ours[name].default == param.default, name
        assert ours[name].kind == param.kind, name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: radam(lr=-1.0), "optix.torch.radam: lr must be finite and >= 0, got lr=-1.0"),
        (
            lambda: radam(betas=(0.9, 1.0)),
            "optix.torch.radam: betas[1] must be in [0, 1), got betas[1]=1.0",
        ),
        (
            lambda: radam(weight_decay=-0.1),
            "optix.torch.radam: weight_decay must be finite and >= 0, got weight_decay=-0.1",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
