"""Prodigy against the official prodigyopt.Prodigy (1.1.2) and optax.contrib.prodigy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from prodigyopt import Prodigy

from optix.optimizers.prodigy import ProdigyGrowthState, ProdigyState, prodigy
from tests.optax_layout import assert_same_layout
from tests.optimizers import lr_free_driver as driver
from tests.registry.learning_rate_free import F32_RTOL

F32 = F32_RTOL["prodigy"]
D0 = 1e-4  # d grows from here by ~100x over the run

# (optix kwargs, prodigyopt kwargs): Optax's defaults are the official code's with bias
# correction; each other case changes a code path.
CASES = {
    "default": ({}, {"use_bias_correction": True}),
    "official_defaults": (
        {"use_bias_correction": False, "estim_lr_coef": 0.2},
        {"d_coef": 0.2},
    ),
    "decoupled_wd": ({"weight_decay": 0.3}, {"use_bias_correction": True, "weight_decay": 0.3}),
    "coupled_wd_growth_rate": (
        {"weight_decay": 0.3, "decouple": False, "growth_rate": 1.2},
        {"use_bias_correction": True, "weight_decay": 0.3, "decouple": False, "growth_rate": 1.2},
    ),
    "safeguard_warmup": (
        {"safeguard_warmup": True, "betas": (0.5, 0.9), "estim_lr_coef": 0.5},
        {"use_bias_correction": True, "safeguard_warmup": True, "betas": (0.5, 0.9), "d_coef": 0.5},
    ),
    "slice_p_beta3_eps": (
        {"slice_p": 3, "beta3": 0.8, "eps": 1e-3},
        {"use_bias_correction": True, "slice_p": 3, "beta3": 0.8, "eps": 1e-3},
    ),
}


def official(torch_kwargs):
    return lambda params, lr: Prodigy(params, lr=lr, d0=D0, **torch_kwargs)


# Every case in float64; float32 where the rounding differs most. The learning rate only
# scales dlr: a schedule is tested where it meets each use of dlr.
F64, F32_RUN = np.float64, np.float32
RUNS = [(case, False, F64) for case in CASES] + [
    ("default", True, F64),
    ("safeguard_warmup", True, F64),
    ("default", False, F32_RUN),
    ("default", True, F32_RUN),
    ("official_defaults", False, F32_RUN),
    ("coupled_wd_growth_rate", False, F32_RUN),
]


def run_id(case, schedule, dtype):
    return f"{case}-{'lr_every_step' if schedule else 'constant_lr'}-{np.dtype(dtype).name}"


@pytest.mark.parametrize(("case", "schedule", "dtype"), RUNS, ids=[run_id(*r) for r in RUNS])
def test_trajectory_matches_prodigyopt(case, schedule, dtype):
    kwargs, torch_kwargs = CASES[case]
    driver.check_torch(
        lambda lr: prodigy(lr, estim_lr0=D0, **kwargs), official(torch_kwargs), dtype, schedule, F32
    )


OPTAX_RUNS = {
    "default-float64": ({}, False, F64),
    "default-float32": ({}, False, F32_RUN),
    "schedule-weight_decay-float64": ({"weight_decay": 0.3}, True, F64),
    "safeguard_beta3_coef-float64": (
        {"safeguard_warmup": True, "beta3": 0.8, "estim_lr_coef": 0.5},
        False,
        F64,
    ),
}


@pytest.mark.parametrize("run", list(OPTAX_RUNS))
def test_trajectory_matches_optax(run):
    kwargs, schedule, dtype = OPTAX_RUNS[run]
    driver.check_optax(
        lambda lr: prodigy(lr, estim_lr0=D0, **kwargs),
        lambda lr: optax.contrib.prodigy(lr, estim_lr0=D0, **kwargs),
        dtype,
        schedule,
        F32,
    )


def test_a_step_without_gradient_changes_nothing_as_in_the_official_code(x64):
    """A zero first gradient: Optax's version divides 0 by 0 (NaN); the official code
    skips the step. Without bias correction its unchanged step count does not matter."""
    grads = driver.gradients(zero_first=True)
    expected = driver.run_torch(
        lambda ps: Prodigy(ps, lr=driver.LR, d0=D0, weight_decay=0.3), np.float64, grads
    )
    tx = prodigy(driver.LR, estim_lr0=D0, weight_decay=0.3, use_bias_correction=False)
    actual = driver.run_jax(tx, np.float64, grads)
    np.testing.assert_array_equal(actual[0]["w"], driver.initial_params()["w"])
    driver.assert_close(actual, expected, 1e-10)


def test_warmup_from_zero_keeps_d():
    tx = prodigy(optax.linear_schedule(0.0, 1.0, 10))
    params = jnp.ones(3)
    updates, state = tx.update(jnp.ones(3), tx.init(params), params)
    np.testing.assert_array_equal(updates, np.zeros(3))
    assert state.estim_lr == np.float32(1e-6) and state.count == 1


PARAMS = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4), "s": jnp.asarray(2.0, jnp.float32)}


def test_state_has_optax_s_layout():
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.contrib.prodigy().init(PARAMS)
        _, theirs_after = optax.contrib.prodigy().update(grads, theirs, PARAMS)
    ours = prodigy().init(PARAMS)
    _, ours_after = prodigy().update(grads, ours, PARAMS)
    assert_same_layout(ours, theirs)
    assert_same_layout(ours_after, theirs_after)


def test_growth_rate_and_slice_p_states():
    state = prodigy(growth_rate=1.02, slice_p=5).init(PARAMS)
    assert isinstance(state, ProdigyGrowthState)
    assert state._fields[: len(ProdigyState._fields)] == ProdigyState._fields
    assert state.grad_sum["w"].shape == state.params0["w"].shape == (3,)  # 12 entries, every 5th
    assert state.params0["s"].shape == (1,)
    assert isinstance(prodigy(growth_rate=float("inf")).init(PARAMS), ProdigyState)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: prodigy(estim_lr_coef=-1.0), ValueError, "prodigy: estim_lr_coef must be > 0"),
        (lambda: prodigy(estim_lr0=0.0), ValueError, "prodigy: estim_lr0 must be > 0"),
        (lambda: prodigy(betas=(1.0, 0.9)), ValueError, "prodigy: b1 must be in [0, 1)"),
        (lambda: prodigy(beta3=1.5), ValueError, "prodigy: beta3 must be in [0, 1]"),
        (lambda: prodigy(growth_rate=0.5), ValueError, "prodigy: growth_rate must be >= 1"),
        (lambda: prodigy(slice_p=0), ValueError, "prodigy: slice_p must be >= 1"),
        (lambda: prodigy(weight_decay=-0.1), ValueError, "prodigy: weight_decay must be finite"),
        (lambda: prodigy("1.0"), TypeError, "prodigy: learning_rate must be a number"),
        (lambda: prodigy(decouple=1), TypeError, "prodigy: decouple must be a bool"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_update_needs_params():
    tx = prodigy()
    with pytest.raises(ValueError, match="prodigy needs the current params"):
        tx.update(PARAMS, tx.init(PARAMS))
