"""D-Adaptation (Adam(W), SGD, AdaGrad) against the official dadaptation package (3.2)
and optax.contrib.dadapt_adamw."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from dadaptation import DAdaptAdaGrad, DAdaptAdam, DAdaptSGD

from optix.optimizers.dadaptation import dadapt_adamw
from optix.optimizers.dadaptation_adagrad import dadapt_adagrad, scale_by_dadapt_adagrad
from optix.optimizers.dadaptation_sgd import dadapt_sgd, scale_by_dadapt_sgd
from optix.optimizers.prodigy import prodigy
from tests.optax_layout import assert_same_layout
from tests.optimizers import lr_free_driver as driver
from tests.registry.learning_rate_free import F32_RTOL

F64, F32 = np.float64, np.float32
D0 = 1e-4  # d grows from here by ~10-1000x over the run
ADAGRAD_D0 = 1e-2  # D-Adapt AdaGrad's d grows slowly: start closer

# name: (optix alias, official class, {case: (optix kwargs, official kwargs)}, runs) with
# runs = [(case, schedule, dtype)]: every case in float64, float32 where rounding differs
# most; the learning rate only scales dlr, so one schedule per optimizer.
ADAM_CASES = {
    "default": ({}, {"use_bias_correction": True, "decouple": True}),
    "official_defaults_growth_rate": (
        {"use_bias_correction": False, "decouple": False, "growth_rate": 1.1},
        {"growth_rate": 1.1},
    ),
    "decoupled_wd": (
        {"weight_decay": 0.3},
        {"use_bias_correction": True, "decouple": True, "weight_decay": 0.3},
    ),
    "coupled_wd_growth_rate": (
        {"weight_decay": 0.3, "decouple": False, "growth_rate": 1.2},
        {"use_bias_correction": True, "weight_decay": 0.3, "growth_rate": 1.2},
    ),
    "betas_eps": (
        {"betas": (0.5, 0.9), "eps": 1e-3},
        {"use_bias_correction": True, "decouple": True, "betas": (0.5, 0.9), "eps": 1e-3},
    ),
}
SGD_CASES = {
    "default": ({}, {}),
    "momentum_wd": ({"momentum": 0.9, "weight_decay": 0.1}, {"momentum": 0.9, "weight_decay": 0.1}),
    "growth_rate": ({"growth_rate": 1.2}, {"growth_rate": 1.2}),
}
ADAGRAD_CASES = {
    "default": ({}, {}),
    "momentum_wd_eps": (
        {"momentum": 0.9, "weight_decay": 0.1, "eps": 1e-3},
        {"momentum": 0.9, "weight_decay": 0.1, "eps": 1e-3},
    ),
    "growth_rate": ({"growth_rate": 1.05}, {"growth_rate": 1.05}),
}


def runs(cases, f32_cases):
    return (
        [(case, False, F64) for case in cases]
        + [("default", True, F64), ("default", True, F32)]
        + [(case, False, F32) for case in f32_cases]
    )


OPTIMIZERS = {
    "dadapt_adamw": (dadapt_adamw, DAdaptAdam, "estim_lr0", D0, ADAM_CASES),
    "dadapt_sgd": (dadapt_sgd, DAdaptSGD, "d0", D0, SGD_CASES),
    "dadapt_adagrad": (dadapt_adagrad, DAdaptAdaGrad, "d0", ADAGRAD_D0, ADAGRAD_CASES),
}
RUNS = [
    (name, *run)
    for name, f32_cases in [
        ("dadapt_adamw", ["coupled_wd_growth_rate"]),
        ("dadapt_sgd", ["momentum_wd"]),
        ("dadapt_adagrad", ["momentum_wd_eps"]),
    ]
    for run in runs(OPTIMIZERS[name][4], f32_cases)
]


def run_id(name, case, schedule, dtype):
    lr = "lr_every_step" if schedule else "constant_lr"
    return f"{name}-{case}-{lr}-{np.dtype(dtype).name}"


@pytest.mark.parametrize(
    ("name", "case", "schedule", "dtype"), RUNS, ids=[run_id(*r) for r in RUNS]
)
def test_trajectory_matches_dadaptation(name, case, schedule, dtype):
    alias, official, d0_name, d0, cases = OPTIMIZERS[name]
    kwargs, torch_kwargs = cases[case]
    driver.check_torch(
        lambda lr: alias(lr, **{d0_name: d0}, **kwargs),
        lambda params, lr: official(params, lr=lr, d0=d0, **torch_kwargs),
        dtype,
        schedule,
        F32_RTOL[name],
    )


OPTAX_RUNS = {
    "default-float64": ({}, False, F64),
    "default-float32": ({}, False, F32),
    "schedule-weight_decay-float64": ({"weight_decay": 0.3}, True, F64),
    "betas_eps-float64": ({"betas": (0.5, 0.9), "eps": 1e-3}, False, F64),
}


@pytest.mark.parametrize("run", list(OPTAX_RUNS))
def test_dadapt_adamw_matches_optax(run):
    kwargs, schedule, dtype = OPTAX_RUNS[run]
    driver.check_optax(
        lambda lr: dadapt_adamw(lr, estim_lr0=D0, **kwargs),
        lambda lr: optax.contrib.dadapt_adamw(lr, estim_lr0=D0, **kwargs),
        dtype,
        schedule,
        F32_RTOL["dadapt_adamw"],
    )


@pytest.mark.parametrize("name", ["dadapt_adamw", "dadapt_adagrad"])
def test_a_step_without_gradient_changes_nothing_as_in_the_official_code(name, x64):
    """A zero first gradient: the official codes skip the step (Optax's dadapt_adamw
    divides 0 by 0); DAdaptAdam's unchanged step count matters only to bias correction,
    off by default there."""
    alias, official, d0_name, d0, _ = OPTIMIZERS[name]
    grads = driver.gradients(zero_first=True)
    # A decoupled decay, which the skipped step must not apply (a coupled one would make
    # the gradient nonzero).
    kwargs = {"weight_decay": 0.3, "decouple": True} if name == "dadapt_adamw" else {}
    expected = driver.run_torch(lambda ps: official(ps, lr=driver.LR, d0=d0, **kwargs), F64, grads)
    if name == "dadapt_adamw":
        kwargs |= {"use_bias_correction": False}
    actual = driver.run_jax(alias(driver.LR, **{d0_name: d0}, **kwargs), F64, grads)
    np.testing.assert_array_equal(actual[0]["w"], driver.initial_params()["w"])
    driver.assert_close(actual, expected, 1e-10)


def test_dadapt_sgd_waits_for_a_first_nonzero_gradient(x64):
    """The official code divides by the norm of the first gradient (NaN if it is 0);
    here a zero first gradient is skipped, and the run is the official one from the
    next gradient on."""
    grads = driver.gradients(zero_first=True)
    expected = driver.run_torch(lambda ps: DAdaptSGD(ps, lr=driver.LR, d0=D0), F64, grads[1:])
    actual = driver.run_jax(dadapt_sgd(driver.LR, d0=D0), F64, grads)
    np.testing.assert_array_equal(actual[0]["w"], driver.initial_params()["w"])
    driver.assert_close(actual[1:], expected, 1e-10)


@pytest.mark.parametrize("make", [dadapt_adamw, dadapt_sgd, dadapt_adagrad])
def test_warmup_from_zero_keeps_d(make):
    tx = make(optax.linear_schedule(0.0, 1.0, 10))
    params = jnp.ones(3)
    updates, state = tx.update(jnp.ones(3), tx.init(params), params)
    np.testing.assert_array_equal(updates, np.zeros(3))
    inner = state if make is dadapt_adamw else state[0]
    assert inner.estim_lr == np.float32(1e-6)


def test_dadapt_adamw_state_has_optax_s_layout():
    params = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4), "s": jnp.asarray(2.0, jnp.float32)}
    grads = jax.tree.map(jnp.ones_like, params)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.contrib.dadapt_adamw().init(params)
        _, theirs_after = optax.contrib.dadapt_adamw().update(grads, theirs, params)
    ours = dadapt_adamw().init(params)
    _, ours_after = dadapt_adamw().update(grads, ours, params)
    assert_same_layout(ours, theirs)
    assert_same_layout(ours_after, theirs_after)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: dadapt_adamw(estim_lr0=-1.0), ValueError, "dadapt_adamw: estim_lr0 must be > 0"),
        (lambda: dadapt_adamw(betas=(0.9, 1.0)), ValueError, "dadapt_adamw: b2 must be in [0, 1)"),
        (lambda: dadapt_adamw(growth_rate=0.9), ValueError, "dadapt_adamw: growth_rate must be"),
        (lambda: dadapt_adamw(decouple="yes"), TypeError, "dadapt_adamw: decouple must be a bool"),
        (lambda: dadapt_sgd(momentum=1.0), ValueError, "dadapt_sgd: momentum must be in [0, 1)"),
        (lambda: dadapt_sgd(d0=0.0), ValueError, "dadapt_sgd: d0 must be > 0, got d0=0.0"),
        (lambda: scale_by_dadapt_sgd(weight_decay=-1.0), ValueError, "weight_decay must be finite"),
        (lambda: dadapt_adagrad(eps=-1.0), ValueError, "dadapt_adagrad: eps must be finite and"),
        (lambda: scale_by_dadapt_adagrad("1"), TypeError, "learning_rate must be a number"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


@pytest.mark.parametrize("make", [dadapt_adamw, dadapt_sgd, dadapt_adagrad])
def test_update_needs_params(make):
    tx = make()
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


@pytest.mark.parametrize(
    ("make", "d0_name"),
    [
        (prodigy, "estim_lr0"),
        (dadapt_adamw, "estim_lr0"),
        (dadapt_sgd, "d0"),
        (dadapt_adagrad, "d0"),
    ],
)
def test_weight_decay_schedule_is_evaluated_at_the_count(make, d0_name):
    """A schedule 0.3 until count 3, then 0: the run follows the constant 0.3 for three
    steps, then departs from it."""
    grads = driver.gradients(6)
    constant = driver.run_jax(make(0.5, weight_decay=0.3, **{d0_name: 0.1}), F32, grads)
    decay = lambda count: jnp.where(count < 3, 0.3, 0.0)
    scheduled = driver.run_jax(make(0.5, weight_decay=decay, **{d0_name: 0.1}), F32, grads)
    for t in range(3):
        np.testing.assert_allclose(scheduled[t]["w"], constant[t]["w"], rtol=1e-6)
    assert not np.allclose(scheduled[-1]["w"], constant[-1]["w"], rtol=1e-4)
