"""AdaBelief against Optax and a NumPy transliteration of the official code (0.2.1)."""

import inspect
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.adabelief import (
    ScaleByBeliefAmsgradState,
    ScaleByBeliefState,
    adabelief,
    scale_by_belief,
)
from optix.optimizers.rectification import rectification, sma_length
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, run_jax
from tests.references.adabelief import run_official_adabelief
from tests.registry import ENTRIES

# (optix keywords, official keywords). The official defaults are rectify=True,
# weight_decouple=True, eps=1e-16; optix's eps and eps_root both play the official eps.
OFFICIAL_CASES = {
    "plain": ({}, {"rectify": False}),
    "eps_betas": (
        {"b1": 0.5, "b2": 0.99, "eps": 1e-3, "eps_root": 1e-3},
        {"betas": (0.5, 0.99), "eps": 1e-3, "rectify": False},
    ),
    "decoupled": ({"weight_decay": 0.1}, {"weight_decay": 0.1, "rectify": False}),
    "fixed_decay": (
        {"weight_decay": 0.1, "fixed_decay": True},
        {"weight_decay": 0.1, "fixed_decay": True, "rectify": False},
    ),
    "coupled": (
        {"weight_decay": 0.1, "weight_decouple": False},
        {"weight_decay": 0.1, "weight_decouple": False, "rectify": False},
    ),
    "amsgrad_eps": (
        {"b2": 0.8, "amsgrad": True, "eps": 1e-2, "eps_root": 1e-2},
        {"betas": (0.9, 0.8), "amsgrad": True, "eps": 1e-2, "rectify": False},
    ),
    "rectify": ({"rectify": True}, {}),
    "rectify_b2_eps": (
        {"rectify": True, "b2": 0.9, "eps": 1e-2, "eps_root": 1e-2},
        {"betas": (0.9, 0.9), "eps": 1e-2},
    ),
    "rectify_skip_decay": (
        {"rectify": True, "b2": 0.9, "degenerated_to_sgd": False, "weight_decay": 0.1},
        {"betas": (0.9, 0.9), "degenerated_to_sgd": False, "weight_decay": 0.1},
    ),
    "rectify_amsgrad": (
        {"rectify": True, "b2": 0.8, "amsgrad": True},
        {"betas": (0.9, 0.8), "amsgrad": True},
    ),
    "rectify_coupled": (
        {"rectify": True, "weight_decay": 0.1, "weight_decouple": False},
        {"weight_decay": 0.1, "weight_decouple": False},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("ours", "official"), OFFICIAL_CASES.values(), ids=OFFICIAL_CASES)
def test_matches_official_adabelief(ours, official, dtype, schedule):
    compare(
        lambda lr: adabelief(lr, **ours),
        lambda dt, sched: run_official_adabelief(dt, sched, **official),
        dtype,
        schedule,
        ENTRIES["adabelief"].f32_rtol,
    )


OPTAX_CASES = [
    {},
    {"b1": 0.8, "b2": 0.9, "eps": 1e-3, "eps_root": 1e-4},
    {"nesterov": True},
    {"nesterov": True, "b1": 0.5, "eps_root": 0.0},
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX_CASES, ids=lambda x: str(x))
def test_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: adabelief(lr, **kwargs),
        optax_reference(lambda lr: optax.adabelief(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["adabelief"].f32_rtol,
        same_dtype_reference=False,
    )


@DTYPES
def test_weight_decay_is_optax_mains_chain(dtype):
    """Optax after 0.2.8 inserts add_decayed_weights before the learning rate."""
    mask = {"w": True, "b": False, "s": True}
    compare(
        lambda lr: adabelief(lr, weight_decay=0.1, weight_decay_mask=mask),
        optax_reference(
            lambda lr: optax.chain(
                optax.scale_by_belief(),
                optax.add_decayed_weights(0.1, mask),
                optax.scale_by_learning_rate(lr),
            )
        ),
        dtype,
        False,
        ENTRIES["adabelief"].f32_rtol,
        same_dtype_reference=False,
    )


def test_degenerate_steps_without_sgd_leave_params_alone(x64):
    """With b2 = 0.999, rho_t < 5 for t <= 5: those steps do not move the params."""
    trajectory = run_jax(adabelief(0.05, rectify=True, degenerated_to_sgd=False), np.float64)
    start = trajectory[0]
    for step in trajectory[1:5]:
        for k in start:
            np.testing.assert_array_equal(step[k], start[k])
    assert not np.array_equal(trajectory[5]["w"], start["w"])


def test_amsgrad_state_keeps_the_running_maximum():
    params = {"w": jnp.zeros(2)}
    tx = scale_by_belief(b2=0.5, amsgrad=True)
    state = tx.init(params)
    assert isinstance(state, ScaleByBeliefAmsgradState)
    _, state = tx.update({"w": jnp.asarray([4.0, 0.0])}, state)
    peak = float(state.nu_max["w"][0])
    _, state = tx.update({"w": jnp.zeros(2)}, state)
    assert float(state.nu_max["w"][0]) == peak
    assert float(state.nu["w"][0]) < 0.6 * peak
    assert isinstance(scale_by_belief().init(params), ScaleByBeliefState)


def exact_sma_length(b2: float, t: int) -> float:
    b = Fraction(b2)
    rho_inf = 2 / (1 - b) - 1
    return float(rho_inf - 2 * t * b**t / (1 - b**t))


@pytest.mark.parametrize("b2", [0.8, 0.9, 0.99, 0.999, 0.9999])
def test_sma_length_in_float32_is_within_3e7_of_exact(b2):
    """The direct formula loses 1e-4 to cancellation in float32 (b2 = 0.999)."""
    steps = np.arange(1, 400)
    exact = np.array([exact_sma_length(b2, int(t)) for t in steps])
    f32 = np.asarray(jax.jit(lambda c: sma_length(b2, c))(jnp.asarray(steps, jnp.int32)))
    assert np.max(np.abs(f32 - exact) / exact) < 3e-7
    with jax.enable_x64(True):
        f64 = np.asarray(jax.jit(lambda c: sma_length(b2, c))(jnp.asarray(steps, jnp.int32)))
    assert np.max(np.abs(f64 - exact) / exact) < 1e-15


def test_rectification_starts_at_rho_5():
    rectified, r = jax.jit(lambda c: rectification(0.999, 5.0, c))(jnp.arange(1, 9))
    np.testing.assert_array_equal(rectified, [False] * 5 + [True] * 3)
    np.testing.assert_array_equal(r[:5], 0.0)
    rho = exact_sma_length(0.999, 6)
    rho_inf = 2 / (1 - 0.999) - 1
    expected = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    np.testing.assert_allclose(r[5], expected, rtol=1e-6)


def optax_parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(adabelief, optax.adabelief), (scale_by_belief, optax.scale_by_belief)],
    ids=["adabelief", "scale_by_belief"],
)
def test_signature_extends_optax(ours, theirs):
    mine, optax_params = optax_parameters(ours), optax_parameters(theirs)
    assert mine[: len(optax_params)] == optax_params
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _ in mine[len(optax_params) :])
    assert ScaleByBeliefState._fields == optax.ScaleByBeliefState._fields


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adabelief(float("nan")), "adabelief: learning_rate must be finite"),
        (lambda: adabelief(0.1, b1=1.0), "adabelief: b1 must be in (-1, 1), got b1=1.0"),
        (lambda: adabelief(0.1, eps_root=-1.0), "adabelief: eps_root must be finite and >= 0"),
        (
            lambda: adabelief(0.1, weight_decay=-0.1),
            "adabelief: weight_decay must be finite and >= 0, got weight_decay=-0.1",
        ),
        (lambda: scale_by_belief(b2=1.5), "scale_by_belief: b2 must be in [0, 1), got b2=1.5"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
