"""RMSProp against Optax and torch.optim.RMSprop: whole trajectories, float64 and float32."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optix.core import chain
from optix.optimizers.adam import scale_by_adam
from optix.optimizers.rmsprop import (
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    rmsprop,
    scale_by_rms,
    scale_by_stddev,
)
from optix.transforms.scaling import scale_by_learning_rate
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    compare,
    lr_schedule,
    max_relative_difference,
    optax_reference,
    run_jax,
    torch_reference,
)
from tests.registry import ENTRIES

OPTAX_CASES = {
    "default": {},
    "eps_outside": {"eps_in_sqrt": False, "decay": 0.99},
    "decay_eps_initial_scale": {"decay": 0.5, "eps": 0.1, "initial_scale": 1.0},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "bias_correction": {"bias_correction": True, "eps": 1e-3},
    "centered": {"centered": True},
    "centered_outside_momentum": {"centered": True, "eps_in_sqrt": False, "momentum": 0.5},
    "centered_bias_correction": {
        "centered": True,
        "bias_correction": True,
        "eps": 0.1,
        "initial_scale": 0.5,
    },
}

# Optax's settings that reproduce torch.optim.RMSprop while the learning rate is constant.
TORCH_ALIGNED = {
    "plain": ({"decay": 0.99, "eps_in_sqrt": False}, {}),
    "eps": ({"decay": 0.9, "eps_in_sqrt": False, "eps": 0.1}, {"alpha": 0.9, "eps": 0.1}),
    "centered_momentum": (
        {"decay": 0.99, "eps_in_sqrt": False, "centered": True, "momentum": 0.9},
        {"centered": True, "momentum": 0.9},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX_CASES.values(), ids=OPTAX_CASES.keys())
def test_rmsprop_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: rmsprop(lr, **kwargs),
        optax_reference(lambda lr: optax.rmsprop(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["rmsprop"].f32_rtol,
        same_dtype_reference=False,
    )


@DTYPES
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("scale_by_rms", {"decay": 0.8, "initial_scale": 0.1, "bias_correction": True}),
        ("scale_by_stddev", {"decay": 0.8, "eps": 1e-2, "eps_in_sqrt": False}),
    ],
)
def test_transforms_match_optax_in_a_chain(name, kwargs, dtype):
    ours = {"scale_by_rms": scale_by_rms, "scale_by_stddev": scale_by_stddev}[name]
    compare(
        lambda lr: chain(ours(**kwargs), scale_by_learning_rate(lr)),
        optax_reference(
            lambda lr: optax.chain(getattr(optax, name)(**kwargs), optax.scale_by_learning_rate(lr))
        ),
        dtype,
        False,
        ENTRIES["rmsprop"].f32_rtol,
        same_dtype_reference=False,
    )


@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "torch_kwargs"), TORCH_ALIGNED.values(), ids=TORCH_ALIGNED.keys()
)
def test_eps_outside_matches_torch_at_constant_lr(kwargs, torch_kwargs, dtype):
    compare(
        lambda lr: rmsprop(lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.RMSprop(params, lr=lr, **torch_kwargs)),
        dtype,
        False,
        ENTRIES["rmsprop"].f32_rtol,
    )


def test_momentum_convention_differs_from_torch_when_lr_changes(x64):
    """Optax scales by lr before the buffer, torch after: equal only for a constant lr."""
    kwargs, torch_kwargs = TORCH_ALIGNED["centered_momentum"]
    torch_run = torch_reference(lambda p, lr: torch.optim.RMSprop(p, lr=lr, **torch_kwargs))
    constant = run_jax(rmsprop(CONSTANT_LR, **kwargs), np.float64)
    assert max_relative_difference(constant, torch_run(np.float64, False)) < 1e-10
    changing = run_jax(rmsprop(lr_schedule, **kwargs), np.float64)
    assert max_relative_difference(changing, torch_run(np.float64, True)) > 1e-3


def test_bias_corrected_rms_is_adam_without_first_moment(x64):
    """Optax's documented identity: scale_by_rms(b2, eps outside, corrected) = adam(b1=0)."""
    rms = run_jax(
        chain(
            scale_by_rms(0.9, 1e-3, eps_in_sqrt=False, bias_correction=True),
            scale_by_learning_rate(0.05),
        ),
        np.float64,
    )
    adam = run_jax(chain(scale_by_adam(0.0, 0.9, 1e-3), scale_by_learning_rate(0.05)), np.float64)
    assert max_relative_difference(rms, adam) < 1e-12


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("centered", [False, True])
def test_optax_s_state_classes_a_count_only_with_bias_correction(centered, bias_correction):
    fn = scale_by_stddev if centered else scale_by_rms
    if bias_correction:
        cls = ScaleByRStdDevWithCountState if centered else ScaleByRmsWithCountState
    else:
        cls = ScaleByRStdDevState if centered else ScaleByRmsState
    tx = fn(initial_scale=0.5, bias_correction=bias_correction)
    g = {"w": jnp.asarray([1.0, -2.0])}
    state = tx.init(g)
    theirs = getattr(optax, fn.__name__)(initial_scale=0.5, bias_correction=bias_correction)
    assert type(state) is cls and cls.__name__ == type(theirs.init(g)).__name__
    np.testing.assert_array_equal(state.nu["w"], [0.5, 0.5])
    _, state = tx.update(g, state)
    _, state = tx.update(g, state)
    assert type(state) is cls
    assert int(state.count) == 2 if bias_correction else "count" not in cls._fields
    np.testing.assert_allclose(state.nu["w"], [0.9**2 * 0.5 + 0.19, 0.9**2 * 0.5 + 0.76], rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rmsprop(0.1, decay=1.5), "rmsprop: decay must be in [0, 1], got decay=1.5"),
        (
            lambda: scale_by_rms(decay=1.0, bias_correction=True),
            "scale_by_rms: decay must be in [0, 1), got decay=1.0",
        ),
        (
            lambda: scale_by_stddev(initial_scale=-1.0),
            "scale_by_stddev: initial_scale must be finite and >= 0, got initial_scale=-1.0",
        ),
        (lambda: rmsprop(0.1, momentum=-1.0), "rmsprop: momentum must be in (-1, inf)"),
        (lambda: rmsprop(float("nan")), "rmsprop: learning_rate must be finite"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
