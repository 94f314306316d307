"""Ranger against lessw2020's ranger.py (in NumPy): whole trajectories.

The harness runs 20 steps: Lookahead synchronises at steps 6, 12 and 18 (k = 6), and
with b2 = 0.999 RAdam's adaptive step starts at t = 6 (rho_6 = 5.99 > 5). The cases move
the onset later (b2 = 0.8: t = 7; threshold 8: t = 9) and the synchronisations (k = 4).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.optimizers.radam import scale_by_radam
from optix.optimizers.ranger import ranger
from optix.transforms.centralize import centralize
from optix.transforms.hyperparams import inject_hyperparams
from optix.transforms.lookahead import LookaheadParams, lookahead
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    run_jax,
)
from tests.references.ranger import run_ranger
from tests.registry import ENTRIES

F32_RTOL = ENTRIES["ranger"].f32_rtol

CASES = {
    "default": ({}, {}),
    "weight_decay": ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    "no_gc": ({"use_gc": False}, {"use_gc": False}),
    "late_onset_eps": (
        {"b1": 0.9, "b2": 0.8, "eps": 0.1},
        {"betas": (0.9, 0.8), "eps": 0.1},
    ),
    "threshold_k4_alpha": (
        {"threshold": 8.0, "sync_period": 4, "slow_step_size": 0.8, "weight_decay": 0.05},
        {"N_sma_threshhold": 8.0, "k": 4, "alpha": 0.8, "weight_decay": 0.05},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "ranger_kwargs"), CASES.values(), ids=CASES.keys())
def test_matches_lessw2020_ranger(kwargs, ranger_kwargs, dtype, schedule):
    compare(
        lambda lr: ranger(lr, **kwargs),
        lambda dt, sched: run_ranger(dt, sched, **ranger_kwargs),
        dtype,
        schedule,
        F32_RTOL,
    )


CONV_SHAPES = {"conv": (4, 3, 2, 2), "fc": (3, 5), "bias": (5,)}


def conv_problem(steps=20):
    rng = np.random.default_rng(3)
    params = {k: rng.normal(size=s) for k, s in CONV_SHAPES.items()}
    grads = [{k: rng.normal(size=s) for k, s in CONV_SHAPES.items()} for _ in range(steps)]
    if steps > 9:
        grads[9] = {k: 1e3 * v for k, v in grads[9].items()}
    return params, grads


def run_optix(tx, params, grads, dtype):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    trajectory = []
    for g in grads:
        updates, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        params = optix.apply_updates(params, updates)
        trajectory.append(jax.tree.map(np.asarray, params))
    return trajectory, state


@DTYPES
@pytest.mark.parametrize("gc_conv_only", [False, True])
def test_centralizes_convolutions_and_dense_layers_as_ranger_does(gc_conv_only, dtype):
    params, grads = conv_problem()
    tx = ranger(CONSTANT_LR, weight_decay=0.1, gc_conv_only=gc_conv_only)
    with jax.enable_x64(dtype == np.float64):
        actual, _ = run_optix(tx, params, grads, dtype)
    kwargs = {"weight_decay": 0.1, "gc_conv_only": gc_conv_only}
    expected = run_ranger(np.float64, False, params=params, grad_sequence=grads, **kwargs)
    rtol = 1e-10 if dtype == np.float64 else F32_RTOL
    # Initial params other than the harness's: the "moved" check is done here.
    difference = max(
        float(np.max(np.abs(a[k] - e[k]) / np.maximum(np.abs(e[k]), 1e-3)))
        for a, e in zip(actual, expected, strict=True)
        for k in e
    )
    assert difference <= rtol
    assert np.max(np.abs(expected[-1]["conv"] - params["conv"])) > 1e-2
    uncentered = run_ranger(
        np.float64, False, params=params, grad_sequence=grads, weight_decay=0.1, use_gc=False
    )
    changed = np.max(np.abs(uncentered[-1]["fc"] - expected[-1]["fc"]))
    assert (changed == 0) if gc_conv_only else (changed > 1e-3)


def test_flax_layout_with_gc_channel_last_is_ranger_on_the_transpose(x64):
    params, grads = conv_problem()
    params, grads = {"fc": params["fc"]}, [{"fc": g["fc"]} for g in grads]
    flax_layout = ranger(CONSTANT_LR, gc_channel_last=True)
    actual, _ = run_optix(
        flax_layout, {"fc": params["fc"].T}, [{"fc": g["fc"].T} for g in grads], np.float64
    )
    expected = run_ranger(np.float64, False, params=params, grad_sequence=grads)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a["fc"].T, e["fc"], rtol=1e-10)


def test_slow_weights_are_readable_and_equal_the_params_after_a_sync(x64):
    params, grads = conv_problem(6)
    trajectory, state = run_optix(ranger(CONSTANT_LR), params, grads, np.float64)
    slow = optix.tree.get(state, "slow")
    for k in CONV_SHAPES:
        np.testing.assert_allclose(slow[k], trajectory[-1][k], rtol=1e-13, atol=1e-15)
        assert np.max(np.abs(slow[k] - params[k])) > 1e-3
    assert int(optix.tree.get(state, "steps_since_sync")) == 0


def test_lookahead_params_form_follows_the_same_trajectory(x64):
    fast = optix.chain(
        centralize(),
        scale_by_radam(0.95, 0.999, 1e-5, eps_placement="raw", strict_threshold=True),
        optix.add_decayed_weights(0.1),
        optix.scale_by_learning_rate(CONSTANT_LR),
    )
    tx = lookahead(fast, 6, 0.5)
    params = LookaheadParams.init_synced(
        jax.tree.map(lambda x: jnp.asarray(x, np.float64), initial_params())
    )
    state = tx.init(params)
    expected = run_jax(ranger(CONSTANT_LR, weight_decay=0.1), np.float64)
    for g, e in zip(gradient_sequence(), expected, strict=True):
        updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
        params = optix.apply_updates(params, updates)
        for k in e:
            np.testing.assert_allclose(params.fast[k], e[k], rtol=1e-13, atol=1e-15)


def test_degenerate_steps_are_momentum_sgd(x64):
    """Before rho_t exceeds 5, Ranger's step is lr * m / (1 - b1**t) (no adaptive denominator)."""
    params = {"w": jnp.zeros(3)}
    g = jnp.asarray([1e-3, 1.0, 1e3])
    tx = ranger(0.1, use_gc=False)
    updates, _ = tx.update({"w": g}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * g, rtol=1e-14)


def test_inject_hyperparams_follows_the_same_trajectory():
    # Up to XLA compiling the step inside inject_hyperparams' lax.cond (adam differs as much).
    injected = run_jax(inject_hyperparams(ranger)(CONSTANT_LR, weight_decay=0.1), np.float32)
    plain = run_jax(ranger(CONSTANT_LR, weight_decay=0.1), np.float32)
    assert_trajectories_close(injected, plain, 1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ranger(float("nan")),
            "ranger: learning_rate must be finite, got learning_rate=nan",
        ),
        (lambda: ranger(0.1, b1=1.0), "ranger: b1 must be in (-1, 1), got b1=1.0"),
        (
            lambda: ranger(0.1, threshold=3.0),
            "ranger: threshold must be in [4, inf), got threshold=3.0",
        ),
        (lambda: ranger(0.1, sync_period=0), "ranger: sync_period must be >= 1, got sync_period=0"),
        (
            lambda: ranger(0.1, slow_step_size=1.5),
            "ranger: slow_step_size must be in [0, 1], got slow_step_size=1.5",
        ),
        (
            lambda: ranger(0.1, weight_decay=-1.0),
            "ranger: weight_decay must be finite and >= 0, got weight_decay=-1.0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
