"""AdaBound and AMSBound against the official AdaBound (NumPy transliteration).

The cases with gamma = 0.1 and final_lr = 0.02 clip elements at both bounds within the
20 steps; the learning-rate schedule moves the bounds through lr_t / base_lr.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from optix.optimizers.adabound import adabound, amsbound, scale_by_adabound
from tests.reference import DTYPES, SCHEDULES, compare, lr_schedule, run_jax
from tests.references.adabound import run_official_adabound
from tests.registry import ENTRIES

CASES = {
    "default": ({}, {}),
    "bounds_bind": (
        {"final_lr": 0.02, "gamma": 0.1},
        {"final_lr": 0.02, "gamma": 0.1},
    ),
    "betas_eps_weight_decay": (
        {"b1": 0.8, "b2": 0.9, "final_lr": 0.02, "gamma": 0.1, "eps": 0.01, "weight_decay": 0.1},
        {"betas": (0.8, 0.9), "final_lr": 0.02, "gamma": 0.1, "eps": 0.01, "weight_decay": 0.1},
    ),
}

AMS_CASES = {
    "default": ({}, {}),
    "max_active": (
        {"b2": 0.8, "final_lr": 0.02, "gamma": 0.1},
        {"betas": (0.9, 0.8), "final_lr": 0.02, "gamma": 0.1},
    ),
    "weight_decay": (
        {"b2": 0.8, "final_lr": 0.02, "gamma": 0.1, "weight_decay": 0.1},
        {"betas": (0.9, 0.8), "final_lr": 0.02, "gamma": 0.1, "weight_decay": 0.1},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "official"), CASES.values(), ids=CASES.keys())
def test_adabound_matches_official(kwargs, official, dtype, schedule):
    compare(
        lambda lr: adabound(lr, **kwargs),
        lambda dt, sched: run_official_adabound(dt, sched, **official),
        dtype,
        schedule,
        ENTRIES["adabound"].f32_rtol,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "official"), AMS_CASES.values(), ids=AMS_CASES.keys())
def test_amsbound_matches_official(kwargs, official, dtype, schedule):
    compare(
        lambda lr: amsbound(lr, **kwargs),
        lambda dt, sched: run_official_adabound(dt, sched, amsbound=True, **official),
        dtype,
        schedule,
        ENTRIES["amsbound"].f32_rtol,
    )


def test_one_step_hits_both_bounds():
    """t = 1: step = sqrt(1 - b2) / (1 - b1) / (sqrt(1 - b2) |g| + eps) ~ 10 / |g|."""
    tx = scale_by_adabound(final_lr=0.1, gamma=0.1, eps=0.0, base_lr=1.0)
    g = jnp.asarray([1e-3, 1e3, 1e4])
    u, _ = tx.update({"g": g}, tx.init({"g": g}))
    lower, upper = 0.1 * 0.1 / 1.1, 0.1 * 1.1 / 0.1
    mu = 0.1 * np.asarray(g)
    np.testing.assert_allclose(u["g"], [upper * mu[0], 10 / 1e3 * mu[1], lower * mu[2]], rtol=1e-6)


def test_base_lr_is_the_schedule_at_step_zero(x64):
    implicit = run_jax(adabound(lr_schedule, final_lr=0.02, gamma=0.1), np.float64)
    explicit = run_jax(adabound(lr_schedule, final_lr=0.02, gamma=0.1, base_lr=1e-2), np.float64)
    np.testing.assert_array_equal(implicit[-1]["w"], explicit[-1]["w"])
    other = run_jax(adabound(lr_schedule, final_lr=0.02, gamma=0.1, base_lr=2e-2), np.float64)
    assert np.max(np.abs(other[-1]["w"] - implicit[-1]["w"])) > 1e-4


def test_state_has_the_running_maximum_only_with_amsbound():
    params = {"w": jnp.ones(3)}
    assert scale_by_adabound().init(params).nu_max is None
    assert scale_by_adabound(amsbound=True).init(params).nu_max["w"].shape == (3,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: adabound(0.1, final_lr=-1.0),
            "adabound: final_lr must be finite and >= 0, got final_lr=-1.0",
        ),
        (lambda: amsbound(0.1, gamma=0.0), "amsbound: gamma must be > 0, got gamma=0.0"),
        (lambda: adabound(0.1, gamma=1.0), "adabound: gamma must be in [0, 1), got gamma=1.0"),
        (lambda: adabound(0.1, b1=1.0), "adabound: b1 must be in (-1, 1), got b1=1.0"),
        (
            lambda: adabound(lambda count: 0.0 * count),
            "adabound: base_lr must be > 0, got base_lr=0.0 (it defaults to the learning rate "
            "at step 0; pass base_lr=... when that is 0)",
        ),
        (
            lambda: scale_by_adabound(base_lr=0.0),
            "scale_by_adabound: base_lr must be > 0, got base_lr=0.0",
        ),
        (
            lambda: amsbound(0.1, weight_decay=-0.1),
            "amsbound: weight_decay must be finite and >= 0, got weight_decay=-0.1",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
