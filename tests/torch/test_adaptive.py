"""optix.torch's Adagrad, Adadelta and RMSprop against torch.optim: whole trajectories."""

import inspect

import pytest
import torch

from optix.torch import adaptive
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare_torch_constructor,
    torch_cases,
)
from tests.registry import ENTRIES

ADAGRAD_CASES = {
    "default": {},
    "lr_decay": {"lr_decay": 0.1},
    "weight_decay_initial": {"weight_decay": 0.1, "initial_accumulator_value": 0.5},
    "eps": {"eps": 0.5, "lr_decay": 0.05},
    "maximize": {"maximize": True, "weight_decay": 0.1, "lr_decay": 0.1},
}

ADADELTA_CASES = {
    "default": {},
    "rho_eps": {"rho": 0.5, "eps": 1e-2},
    "weight_decay": {"weight_decay": 0.1},
    "maximize": {"maximize": True, "weight_decay": 0.1},
}

RMSPROP_CASES = {
    "default": {},
    "alpha_eps": {"alpha": 0.9, "eps": 0.1},
    "centered": {"centered": True},
    "momentum": {"momentum": 0.9},
    "centered_momentum_weight_decay": {"centered": True, "momentum": 0.9, "weight_decay": 0.1},
    "maximize": {"maximize": True, "momentum": 0.5, "weight_decay": 0.1},
}

TABLE = [
    ("adagrad", torch.optim.Adagrad, ADAGRAD_CASES),
    ("adadelta", torch.optim.Adadelta, ADADELTA_CASES),
    ("rmsprop", torch.optim.RMSprop, RMSPROP_CASES),
]
PARAMS = torch_cases(TABLE)


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("name", "torch_cls", "kwargs"), PARAMS)
def test_trajectory_matches_torch(name, torch_cls, kwargs, dtype, schedule):
    compare_torch_constructor(
        name, torch_cls, kwargs, dtype, schedule, ENTRIES[f"torch.{name}"].f32_rtol
    )


@pytest.mark.parametrize(("name", "torch_cls"), [(n, c) for n, c, _ in TABLE])
def test_arguments_and_defaults_match_torch(name, torch_cls):
    ours = inspect.signature(getattr(adaptive, name)).parameters
    theirs = inspect.signature(torch_cls).parameters
    torch_names = [p for p in theirs if p != "params"]
    # torch's arguments in torch's order, then optix's keyword-only state dtypes.
    assert list(ours)[: len(torch_names)] == torch_names
    extra = list(ours.values())[len(torch_names) :]
    assert {p.name for p in extra} <= {"mu_dtype", "nu_dtype"}
    assert all(p.kind is p.KEYWORD_ONLY and p.default is None for p in extra)
    for param_name, param in theirs.items():
        if param_name != "params":
            assert ours[param_name].default == param.default, param_name
            assert ours[param_name].kind == param.kind, param_name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: adaptive.adagrad(lr_decay=-0.1),
            "optix.torch.adagrad: lr_decay must be finite and >= 0, got lr_decay=-0.1",
        ),
        (
            lambda: adaptive.adagrad(initial_accumulator_value=-1.0),
            "optix.torch.adagrad: initial_accumulator_value must be finite and >= 0",
        ),
        (
            lambda: adaptive.adadelta(rho=1.1),
            "optix.torch.adadelta: rho must be in [0, 1], got rho=1.1",
        ),
        (lambda: adaptive.adadelta(lr=-1.0), "optix.torch.adadelta: lr must be finite and >= 0"),
        (
            lambda: adaptive.rmsprop(alpha=-0.5),
            "optix.torch.rmsprop: alpha must be in [0, 1], got alpha=-0.5",
        ),
        (
            lambda: adaptive.rmsprop(momentum=-0.9),
            "optix.torch.rmsprop: momentum must be finite and >= 0, got momentum=-0.9",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
