"""Yogi against Optax, pytorch_optimizer and TF-Addons (NumPy transliteration)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import Yogi

from optix.core import chain
from optix.optimizers.adam import ScaleByAdamState
from optix.optimizers.yogi import scale_by_yogi, yogi
from optix.transforms.scaling import scale_by_learning_rate
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare,
    max_relative_difference,
    optax_reference,
    run_jax,
    torch_reference,
)
from tests.references.adaptive import run_tfa_yogi
from tests.registry import ENTRIES

CASES = {
    "default": {},
    "betas_eps": {"b1": 0.5, "b2": 0.9, "eps": 1e-2},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES.keys())
def test_yogi_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: yogi(lr, **kwargs),
        optax_reference(lambda lr: optax.yogi(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["yogi"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
def test_scale_by_yogi_matches_optax_in_a_chain(dtype, schedule):
    kwargs = {
        "b1": 0.8,
        "b2": 0.95,
        "eps": 1e-4,
        "eps_root": 1e-3,
        "initial_accumulator_value": 0.1,
    }
    compare(
        lambda lr: chain(scale_by_yogi(**kwargs), scale_by_learning_rate(lr)),
        optax_reference(
            lambda lr: optax.chain(optax.scale_by_yogi(**kwargs), optax.scale_by_learning_rate(lr))
        ),
        dtype,
        schedule,
        ENTRIES["yogi"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES.keys())
def test_yogi_matches_pytorch_optimizer(kwargs, dtype, schedule):
    torch_kwargs = {
        "betas": (kwargs.get("b1", 0.9), kwargs.get("b2", 0.999)),
        "eps": kwargs.get("eps", 1e-3),
        "initial_accumulator": 1e-6,
    }
    compare(
        lambda lr: yogi(lr, **kwargs),
        torch_reference(lambda params, lr: Yogi(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        ENTRIES["yogi"].f32_rtol,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "tfa_kwargs"),
    [
        ({}, {}),
        (
            {"b1": 0.5, "b2": 0.9, "eps": 1e-2, "initial_accumulator_value": 0.1},
            {"beta1": 0.5, "beta2": 0.9, "epsilon": 1e-2, "initial_accumulator_value": 0.1},
        ),
    ],
    ids=["default", "betas_eps_init"],
)
def test_raw_eps_and_zero_mu_match_tf_addons(kwargs, tfa_kwargs, dtype, schedule):
    compare(
        lambda lr: yogi(lr, initial_mu=0.0, eps_on="raw", **kwargs),
        lambda _dtype, schedule: run_tfa_yogi(schedule, **tfa_kwargs),
        dtype,
        schedule,
        ENTRIES["yogi"].f32_rtol,
        same_dtype_reference=False,
    )


def test_tf_addons_convention_differs_from_optax(x64):
    tfa = run_tfa_yogi(False)
    assert max_relative_difference(run_jax(yogi(0.05), np.float64), tfa) > 1e-4
    assert max_relative_difference(run_jax(yogi(0.05, eps_on="raw"), np.float64), tfa) > 1e-8


def test_second_moment_moves_additively():
    tx = scale_by_yogi(b1=0.0, b2=0.5, eps=0.0, initial_accumulator_value=1.0)
    g = {"w": jnp.asarray([0.5, 2.0])}
    updates, state = tx.update(g, tx.init(g))
    assert isinstance(state, ScaleByAdamState)
    # nu = 1 - 0.5 * sign(1 - g**2) * g**2: shrinks by 0.125 where g**2 < nu, grows by 2.
    np.testing.assert_allclose(state.nu["w"], [0.875, 3.0], rtol=1e-6)
    np.testing.assert_allclose(
        updates["w"], np.asarray([0.5, 2.0]) / np.sqrt(np.asarray([0.875, 3.0]) / 0.5), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: yogi(0.1, b1=1.0), "yogi: b1 must be in (-1, 1), got b1=1.0"),
        (lambda: yogi(float("nan")), "yogi: learning_rate must be finite"),
        (
            lambda: scale_by_yogi(initial_accumulator_value=-1e-6),
            "scale_by_yogi: initial_accumulator_value must be finite and >= 0",
        ),
        (
            lambda: scale_by_yogi(eps_on="hat"),
            "scale_by_yogi: eps_on must be one of ('corrected', 'raw'), got eps_on='hat'",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
