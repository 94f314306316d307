"""optix.torch.asgd and optix.torch.rprop against torch.optim.ASGD and torch.optim.Rprop."""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optix
from optix.optimizers.asgd import asgd_averaged_params
from optix.torch.asgd import asgd
from optix.torch.rprop import rprop
from tests.reference import DTYPES, SCHEDULES, compare, torch_reference
from tests.registry import ENTRIES

ASGD_CASES = {
    "default": {},
    "averaging": {"lambd": 0.1, "alpha": 0.6, "t0": 5.0},
    "weight_decay": {"lambd": 0.05, "t0": 3.0, "weight_decay": 0.1},
    "maximize": {"t0": 4.0, "weight_decay": 0.1, "maximize": True},
}

RPROP_CASES = {
    "default": {},
    "etas_step_sizes": {"etas": (0.3, 1.5), "step_sizes": (0.01, 0.08)},
    "maximize": {"etas": (0.4, 1.3), "maximize": True},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("case", list(ASGD_CASES))
def test_asgd_matches_torch(case, dtype, schedule):
    kwargs = ASGD_CASES[case]
    compare(
        lambda lr: asgd(lr=lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.ASGD(params, lr=lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["torch.asgd"].f32_rtol,
    )


@DTYPES
@pytest.mark.parametrize("case", list(RPROP_CASES))
def test_rprop_matches_torch(case, dtype):
    kwargs = RPROP_CASES[case]
    compare(
        lambda lr: rprop(lr=lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.Rprop(params, lr=lr, **kwargs)),
        dtype,
        False,
        ENTRIES["torch.rprop"].f32_rtol,
    )


@pytest.mark.parametrize(("ours", "theirs"), [(asgd, torch.optim.ASGD), (rprop, torch.optim.Rprop)])
def test_arguments_and_defaults_match_torch(ours, theirs):
    mine = inspect.signature(ours).parameters
    expected = [p for name, p in inspect.signature(theirs).parameters.items() if name != "params"]
    # torch's arguments in torch's order, then optix's keyword-only state dtype (asgd).
    extra = list(mine.values())[len(expected) :]
    assert [p.name for p in mine.values()][: len(expected)] == [p.name for p in expected]
    assert {p.name for p in extra} <= {"mu_dtype"}
    assert all(p.kind is p.KEYWORD_ONLY and p.default is None for p in extra)
    for p in expected:
        assert mine[p.name].default == p.default, p.name
        assert mine[p.name].kind == p.kind, p.name


def test_asgd_average_is_readable_from_the_torch_constructor():
    tx = asgd(lr=0.1)
    params = {"w": jnp.asarray([1.0, 2.0])}
    updates, state = tx.update({"w": jnp.asarray([0.5, -0.5])}, tx.init(params), params)
    new = optix.apply_updates(params, updates)
    np.testing.assert_array_equal(asgd_averaged_params(state)["w"], new["w"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: asgd(lr=-1.0), "optix.torch.asgd: lr must be finite and >= 0, got lr=-1.0"),
        (lambda: asgd(weight_decay=-1.0), "optix.torch.asgd: weight_decay must be finite"),
        (lambda: asgd(lambd=-1.0), "optix.torch.asgd: lambd must be finite and >= 0"),
        (
            lambda: rprop(etas=(1.5, 1.2)),
            "optix.torch.rprop: etas[0] must be in (0, 1), got etas[0]=1.5",
        ),
        (
            lambda: rprop(etas=(0.5, 0.9)),
            "optix.torch.rprop: etas[1] must be in (1, inf], got etas[1]=0.9",
        ),
        (
            lambda: rprop(step_sizes=(1.0, 0.1)),
            "optix.torch.rprop: step_sizes[0] must be <= step_sizes[1]",
        ),
        (lambda: rprop(lr=-0.1), "optix.torch.rprop: lr must be finite and >= 0, got lr=-0.1"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
