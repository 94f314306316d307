"""optix.torch.adafactor against torch.optim.Adafactor: whole trajectories."""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optix.torch.adafactor import adafactor, scale_by_torch_factored_rms
from tests.reference import DTYPES, compare, torch_reference
from tests.registry.kron_mini import F32_RTOL

F32 = F32_RTOL["torch.adafactor"]

CASES = {
    "default": {},
    "weight_decay_maximize": {"weight_decay": 0.5, "maximize": True},
    "eps_d_beta2": {"eps": (1e-3, 0.5), "d": 1.5, "beta2_decay": -0.5},
    "foreach": {"foreach": True, "weight_decay": 0.1},
}


@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "schedule"),
    [(CASES["default"], False), (CASES["default"], True), (CASES["weight_decay_maximize"], True)]
    + [(CASES[c], False) for c in ("eps_d_beta2", "foreach")],
    ids=["default", "default-lr_every_step", "wd_maximize-lr_every_step", "eps_d_beta2", "foreach"],
)
def test_trajectory_matches_torch(kwargs, dtype, schedule):
    compare(
        lambda lr: adafactor(lr=lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.Adafactor(params, lr=lr, **kwargs)),
        dtype,
        schedule,
        F32,
    )


@DTYPES
def test_relative_step_caps_a_large_lr(dtype):
    """With lr = 5, rho = min(lr, 1/sqrt(t)) is 1/sqrt(t) at every step."""
    compare(
        lambda lr: adafactor(lr=100 * lr, weight_decay=1e-3),
        torch_reference(
            lambda params, lr: torch.optim.Adafactor(params, lr=100 * lr, weight_decay=1e-3)
        ),
        dtype,
        False,
        F32,
    )


def test_arguments_and_defaults_match_torch():
    ours = inspect.signature(adafactor).parameters
    theirs = inspect.signature(torch.optim.Adafactor).parameters
    torch_names = [p for p in theirs if p != "params"]
    assert list(ours)[: len(torch_names)] == torch_names
    assert list(ours)[len(torch_names) :] == ["nu_dtype"]
    for name in torch_names:
        assert ours[name].default == theirs[name].default, name
        assert ours[name].kind == theirs[name].kind, name


def test_state_layout_follows_torch():
    tx = scale_by_torch_factored_rms()
    state = tx.init({"m": jnp.zeros((2, 3, 4)), "v": jnp.zeros(5)})
    assert state.row_var["m"].shape == (2, 3, 1)
    assert state.col_var["m"].shape == (2, 1, 4)
    assert state.variance["v"].shape == (5,)
    # First step: w = 1, the state is g**2's averages.
    g = jnp.arange(1.0, 13.0).reshape(3, 4)
    _, state = tx.update({"m": jnp.stack([g, g]), "v": jnp.ones(5)}, state)
    np.testing.assert_allclose(
        state.row_var["m"][0, :, 0], np.mean(np.square(g), axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(state.col_var["m"][1, 0], np.mean(np.square(g), axis=0), rtol=1e-6)


def test_complex_params_are_refused():
    with pytest.raises(TypeError, match="complex params are not supported"):
        adafactor().init({"w": jnp.ones(2, jnp.complex64)})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adafactor(lr=-1.0), "optix.torch.adafactor: lr must be finite and >= 0"),
        (
            lambda: adafactor(beta2_decay=0.5),
            "beta2_decay must be in (-inf, 0], got beta2_decay=0.5",
        ),
        (lambda: adafactor(eps=(-1.0, 1e-3)), "eps[0] must be finite and >= 0, got eps[0]=-1.0"),
        (lambda: adafactor(eps=(None, -1.0)), "eps[1] must be finite and >= 0, got eps[1]=-1.0"),
        (lambda: adafactor(d=0.5), "optix.torch.adafactor: d must be >= 1, got d=0.5"),
        (lambda: adafactor(weight_decay=-0.1), "weight_decay must be finite and >= 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
