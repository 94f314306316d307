"""optix.torch against torch.optim: whole trajectories, float64 and float32."""

import pytest
import torch

import optix
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare_torch_constructor,
    torch_cases,
)
from tests.registry import ENTRIES

SGD_CASES = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "dampening": {"momentum": 0.9, "dampening": 0.3},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "weight_decay": {"momentum": 0.9, "weight_decay": 0.1},
    "maximize": {"momentum": 0.5, "weight_decay": 0.1, "maximize": True},
}

ADAM_CASES = {
    "default": {},
    "betas_eps": {"betas": (0.8, 0.9), "eps": 0.1},
    "weight_decay": {"weight_decay": 0.1},
    "decoupled": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "amsgrad": {"betas": (0.9, 0.8), "amsgrad": True},
    "amsgrad_weight_decay": {"betas": (0.9, 0.8), "amsgrad": True, "weight_decay": 0.1},
    "maximize": {"weight_decay": 0.1, "maximize": True},
}

ADAMW_CASES = {
    "default": {},
    "amsgrad": {"betas": (0.9, 0.8), "amsgrad": True},
    "maximize": {"maximize": True, "weight_decay": 0.3},
}

NADAM_CASES = {
    "default": {},
    "momentum_decay": {"momentum_decay": 0.05},
    "weight_decay": {"weight_decay": 0.1},
    "decoupled": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "maximize": {"maximize": True},
}

ADAMAX_CASES = {
    "default": {},
    "weight_decay": {"weight_decay": 0.1, "eps": 0.01},
    "maximize": {"maximize": True, "betas": (0.5, 0.9)},
}

TABLE = [
    ("sgd", torch.optim.SGD, SGD_CASES),
    ("adam", torch.optim.Adam, ADAM_CASES),
    ("adamw", torch.optim.AdamW, ADAMW_CASES),
    ("nadam", torch.optim.NAdam, NADAM_CASES),
    ("adamax", torch.optim.Adamax, ADAMAX_CASES),
]
PARAMS = torch_cases(TABLE)


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("name", "torch_cls", "kwargs"), PARAMS)
def test_trajectory_matches_torch(name, torch_cls, kwargs, dtype, schedule):
    compare_torch_constructor(
        name, torch_cls, kwargs, dtype, schedule, ENTRIES[f"torch.{name}"].f32_rtol
    )


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "nadam", "adamax"])
def test_defaults_match_torch(name):
    import inspect

    ours = inspect.signature(getattr(optix.torch, name)).parameters
    theirs = inspect.signature(
        getattr(
            torch.optim,
            {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "nadam": "NAdam", "adamax": "Adamax"}[
                name
            ],
        )
    )
    for param_name, param in theirs.parameters.items():
        if param_name == "params":
            continue
        assert param_name in ours, f"optix.torch.{name} lacks torch's argument {param_name}"
        assert ours[param_name].default == param.default, param_name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: optix.torch.sgd(lr=-1.0),
            "optix.torch.sgd: lr must be finite and >= 0, got lr=-1.0",
        ),
        (
            lambda: optix.torch.sgd(momentum=0.0, nesterov=True),
            "nesterov=True requires momentum > 0",
        ),
        (
            lambda: optix.torch.adam(betas=(1.0, 0.999)),
            "optix.torch.adam: betas[0] must be in [0, 1), got betas[0]=1.0",
        ),
        (lambda: optix.torch.adamw(eps=-1e-8), "optix.torch.adamw: eps must be finite and >= 0"),
        (lambda: optix.torch.nadam(weight_decay=-0.1), "optix.torch.nadam: weight_decay must be"),
        (
            lambda: optix.torch.adamax(betas=(0.9, 1.5)),
            "optix.torch.adamax: betas[1] must be in [0, 1)",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
