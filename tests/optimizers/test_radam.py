"""RAdam against Optax, torch.optim.RAdam and the official RAdam: whole trajectories.

The harness runs 20 steps. With b2 = 0.999 rectification starts at t = 6; the cases
also move it earlier (threshold 4.5: t = 5) and later (b2 = 0.8: t = 7, b2 = 0.7 or
threshold 8: t = 9-10), so every case runs at least 10 rectified steps.
"""

import inspect
from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optix.optimizers.radam import radam, scale_by_radam
from optix.optimizers.rectification import rectification, sma_length
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare,
    initial_params,
    optax_reference,
    run_jax,
    torch_reference,
)
from tests.references.radam import run_official_radam
from tests.registry import ENTRIES

F32_RTOL = ENTRIES["radam"].f32_rtol

OPTAX_CASES = {
    "default": {},
    "betas_eps": {"b1": 0.8, "b2": 0.9, "eps": 0.1, "eps_root": 1e-3},
    "nesterov": {"nesterov": True},
    "late_onset": {"b2": 0.7},
    "early_threshold": {"threshold": 4.5},
    "late_threshold": {"threshold": 8.0, "eps": 0.1},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX_CASES.values(), ids=OPTAX_CASES.keys())
def test_default_form_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: radam(lr, **kwargs),
        optax_reference(lambda lr: optax.radam(lr, **kwargs)),
        dtype,
        schedule,
        F32_RTOL,
        same_dtype_reference=False,
    )


TORCH_CASES = {
    "default": ({}, {}),
    "late_onset_eps": ({"b1": 0.8, "b2": 0.7, "eps": 0.1}, {"betas": (0.8, 0.7), "eps": 0.1}),
    "decoupled": ({"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "torch_kwargs"), TORCH_CASES.values(), ids=TORCH_CASES.keys())
def test_torch_form_matches_torch_radam(kwargs, torch_kwargs, dtype, schedule):
    compare(
        lambda lr: radam(lr, eps_placement="raw", strict_threshold=True, **kwargs),
        torch_reference(lambda params, lr: torch.optim.RAdam(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        F32_RTOL,
    )


OFFICIAL_CASES = {
    "skip": ({}, {}),
    "skip_weight_decay": ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    "skip_late_onset": (
        {"b2": 0.7, "eps": 0.1, "weight_decay": 0.1},
        {"betas": (0.9, 0.7), "eps": 0.1, "weight_decay": 0.1},
    ),
    "skip_b2_0.8": ({"b1": 0.5, "b2": 0.8}, {"betas": (0.5, 0.8)}),
    "sgd_weight_decay": (
        {"degenerate": "sgd", "weight_decay": 0.1, "eps": 0.1},
        {"degenerated_to_sgd": True, "weight_decay": 0.1, "eps": 0.1},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "official_kwargs"), OFFICIAL_CASES.values(), ids=OFFICIAL_CASES.keys()
)
def test_official_form_matches_official_radam(kwargs, official_kwargs, dtype, schedule):
    kwargs = {"degenerate": "skip", **kwargs}
    compare(
        lambda lr: radam(lr, eps_placement="raw", **kwargs),
        lambda dt, sched: run_official_radam(dt, sched, **official_kwargs),
        dtype,
        schedule,
        F32_RTOL,
    )


@pytest.mark.parametrize("weight_decay", [0.5, lambda count: jnp.where(count >= 0, 0.5, 0.0)])
def test_skip_leaves_params_and_weight_decay_alone_until_rectified(weight_decay, x64):
    """Official RAdam with degenerated_to_sgd=False: steps 1-5 change nothing."""
    trajectory = run_jax(
        radam(0.05, eps_placement="raw", degenerate="skip", weight_decay=weight_decay),
        np.float64,
    )
    start = initial_params()
    for t in range(5):
        for k in start:
            np.testing.assert_array_equal(trajectory[t][k], start[k])
    assert np.max(np.abs(trajectory[5]["w"] - start["w"])) > 1e-3
    moving = run_jax(radam(0.05, eps_placement="raw", weight_decay=0.5), np.float64)
    assert np.max(np.abs(moving[0]["w"] - start["w"])) > 1e-3


def test_eps_placements_are_different_algorithms(x64):
    corrected = run_jax(radam(0.05, eps=0.1), np.float64)
    raw = run_jax(radam(0.05, eps=0.1, eps_placement="raw"), np.float64)
    assert np.max(np.abs(corrected[-1]["w"] - raw[-1]["w"])) > 1e-3


def exact_rho(b2: float, t: int) -> float:
    getcontext().prec = 60
    b2 = Decimal(b2)
    b2_t = b2**t
    return float(2 / (1 - b2) - 1 - 2 * t * b2_t / (1 - b2_t))


@pytest.mark.parametrize("b2", [0.5, 0.7, 0.8, 0.9, 0.99, 0.999, 0.9999, 0.99999])
def test_rho_is_accurate_in_float32_and_float64(b2):
    steps = np.unique(np.r_[1:300, np.geomspace(300, 2**31 - 1, 60).astype(np.int64)])
    expected = np.array([exact_rho(b2, int(t)) for t in steps])
    f32 = np.asarray(sma_length(b2, jnp.asarray(steps, jnp.int32)), np.float64)
    with jax.enable_x64(True):
        f64 = np.asarray(sma_length(b2, jnp.asarray(steps, jnp.int32)))
    assert np.max(np.abs(f32 - expected) / expected) < 5e-7
    assert np.max(np.abs(f64 - expected) / expected) < 1e-14


@pytest.mark.parametrize(
    ("b2", "threshold", "first"),
    [(0.999, 5.0, 6), (0.8, 5.0, 7), (0.7, 5.0, 10), (0.999, 4.5, 5), (0.999, 8.0, 9)],
)
def test_rectification_starts_where_rho_crosses_the_threshold(b2, threshold, first):
    steps = jnp.arange(1, 21)
    rectified, r = rectification(b2, threshold, steps)
    assert int(np.argmax(np.asarray(rectified))) + 1 == first
    assert bool(jnp.all(rectified[first - 1 :]))
    rho = np.array([exact_rho(b2, t) for t in range(first, 21)])
    rho_inf = 2 / (1 - b2) - 1
    expected = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    np.testing.assert_allclose(r[first - 1 :], expected, rtol=1e-6)


def test_strict_threshold_excludes_equality():
    """At rho_t == threshold Optax and the official code rectify; torch does not."""
    threshold = float(sma_length(0.999, 6))
    updates = {}
    for strict in (False, True):
        tx = scale_by_radam(threshold=threshold, strict_threshold=strict, degenerate="skip")
        params = {"w": jnp.ones(3)}
        state = tx.init(params)
        for _ in range(6):
            u, state = tx.update({"w": jnp.asarray([0.5, -1.0, 2.0])}, state, params)
        updates[strict] = u["w"]
    assert bool(jnp.all(updates[True] == 0.0))
    assert bool(jnp.all(updates[False] != 0.0))


def test_signatures_extend_optax():
    for ours, theirs in [(scale_by_radam, optax.scale_by_radam), (radam, optax.radam)]:
        ours_p = list(inspect.signature(ours).parameters.values())
        theirs_p = list(inspect.signature(theirs).parameters.values())
        assert [(p.name, p.kind, p.default) for p in ours_p[: len(theirs_p)]] == [
            (p.name, p.kind, p.default) for p in theirs_p
        ]
        assert all(p.kind is p.KEYWORD_ONLY for p in ours_p[len(theirs_p) :])


def test_traced_b2_matches_constant_b2():
    params = {"w": jnp.asarray(np.linspace(-1.0, 1.0, 5), jnp.float32)}
    grads = [{"w": jnp.asarray(np.sin(np.arange(5.0) + t), jnp.float32)} for t in range(12)]

    def final(b2):
        tx = scale_by_radam(b2=b2)
        state = tx.init(params)
        for g in grads:
            u, state = tx.update(g, state, params)
        return u["w"]

    np.testing.assert_allclose(jax.jit(final)(0.99), final(0.99), rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: radam(float("nan")),
            "radam: learning_rate must be finite",
        ),
        (lambda: radam(0.1, b2=1.0), "radam: b2 must be in [0, 1), got b2=1.0"),
        (
            lambda: radam(0.1, threshold=3.0),
            "radam: threshold must be in [4, inf), got threshold=3.0",
        ),
        (
            lambda: scale_by_radam(eps_placement="inside"),
            "scale_by_radam: eps_placement must be one of ('corrected', 'raw'), "
            "got eps_placement='inside'",
        ),
        (
            lambda: radam(0.1, degenerate="adam"),
            "radam: degenerate must be one of ('sgd', 'skip'), got degenerate='adam'",
        ),
        (
            lambda: radam(0.1, weight_decay=-1.0),
            "radam: weight_decay must be finite and >= 0, got weight_decay=-1.0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
