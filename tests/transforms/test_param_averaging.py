"""EMA of the params against torch's AveragedModel, optix.incremental_update and optax.ema."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import optix
import optix.torch
from optix.transforms.param_averaging import EmaParamsState, ema_params
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SHAPES,
    assert_trajectories_close,
    gradient_sequence,
    initial_params,
    run_jax,
)

# Largest float32 difference measured against the float64 references (1.9e-6), rounded up.
F32_RTOL = 2e-6


def run_averaged(tx, dtype):
    """The params and the EMA in the state after every step of ``tx`` on the harness."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optix.apply_updates(params, updates), state

    trajectory, averages = [], []
    for g in gradient_sequence():
        params, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        trajectory.append(jax.tree.map(np.asarray, params))
        averages.append(jax.tree.map(np.asarray, optix.tree.get(state, "ema_params")))
    return trajectory, averages


def run_torch_averaged_model(decay, dtype):
    """torch.optim.SGD(momentum=0.9) with AveragedModel(get_ema_multi_avg_fn(decay))."""
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    model = torch.nn.ParameterDict(
        {
            k: torch.nn.Parameter(torch.tensor(v, dtype=torch_dtype))
            for k, v in initial_params().items()
        }
    )
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    optimizer = torch.optim.SGD(model.parameters(), lr=CONSTANT_LR, momentum=0.9)
    averages = []
    for g in gradient_sequence():
        for k in SHAPES:
            model[k].grad = torch.tensor(g[k], dtype=torch_dtype)
        optimizer.step()
        averaged.update_parameters(model)
        averages.append({k: averaged.module[k].detach().numpy().copy() for k in SHAPES})
    return averages


@DTYPES
@pytest.mark.parametrize("decay", [0.9, 0.5])
def test_copy_first_matches_torch_averaged_model(decay, dtype):
    tx = optix.chain(optix.torch.sgd(CONSTANT_LR, momentum=0.9), ema_params(decay, copy_first=True))
    with jax.enable_x64(dtype == np.float64):
        _, averages = run_averaged(tx, dtype)
    expected = run_torch_averaged_model(decay, np.float64)
    assert_trajectories_close(averages, expected, 1e-10 if dtype == np.float64 else F32_RTOL)
    if dtype == np.float32:
        assert_trajectories_close(averages, run_torch_averaged_model(decay, np.float32), F32_RTOL)


def warmup(count):
    count = jnp.asarray(count, jnp.result_type(float))
    return jnp.minimum(0.9, (1 + count) / (10 + count))


@DTYPES
@pytest.mark.parametrize("decay", [0.9, warmup], ids=["constant", "warmup_schedule"])
def test_default_matches_incremental_update_from_the_initial_params(decay, dtype):
    with jax.enable_x64(dtype == np.float64):
        trajectory, averages = run_averaged(
            optix.chain(optix.adam(CONSTANT_LR), ema_params(decay)), dtype
        )
    with jax.enable_x64(True):
        expected = jax.tree.map(lambda x: jnp.asarray(x, np.float64), initial_params())
        expected_averages = []
        for count, params in enumerate(trajectory):
            rate = decay(count) if callable(decay) else decay
            params = jax.tree.map(lambda x: jnp.asarray(x, np.float64), params)
            expected = optix.incremental_update(params, expected, 1.0 - rate)
            expected_averages.append(jax.tree.map(np.asarray, expected))
    rtol = 1e-12 if dtype == np.float64 else F32_RTOL
    assert_trajectories_close(averages, expected_averages, rtol)


@DTYPES
def test_debias_matches_optax_ema_of_the_params(dtype):
    with jax.enable_x64(dtype == np.float64):
        trajectory, averages = run_averaged(
            optix.chain(optix.sgd(CONSTANT_LR, momentum=0.9), ema_params(0.8, debias=True)), dtype
        )
    with jax.numpy_dtype_promotion("standard"), jax.enable_x64(True):
        tx = optax.ema(0.8, debias=True)
        state = tx.init(jax.tree.map(lambda x: jnp.asarray(x, np.float64), initial_params()))
        expected = []
        for params in trajectory:
            average, state = tx.update(
                jax.tree.map(lambda x: jnp.asarray(x, np.float64), params), state
            )
            expected.append(jax.tree.map(np.asarray, average))
    assert_trajectories_close(averages, expected, 1e-10 if dtype == np.float64 else F32_RTOL)


def test_updates_pass_through_unchanged_and_decay_zero_is_the_params():
    inner = optix.adam(CONSTANT_LR)
    plain = run_jax(inner, np.float32)
    latest, latest_averages = run_averaged(optix.chain(inner, ema_params(0.0)), np.float32)
    averaged, averages = run_averaged(optix.chain(inner, ema_params(0.99)), np.float32)
    for p, a, b, e in zip(plain, latest, averaged, latest_averages, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, p)
        jax.tree.map(np.testing.assert_array_equal, b, p)
        jax.tree.map(np.testing.assert_array_equal, e, p)
    assert not np.allclose(averages[-1]["w"], averaged[-1]["w"], atol=1e-2)


@pytest.mark.parametrize("accumulator_dtype", [None, jnp.float32], ids=["bf16", "f32"])
def test_a_float32_average_of_bf16_params_keeps_small_steps(accumulator_dtype):
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "frozen": None}
    grads = {"w": jnp.ones((2, 3), jnp.bfloat16), "frozen": None}
    tx = optix.chain(optix.sgd(0.01), ema_params(0.999, accumulator_dtype=accumulator_dtype))
    state0 = tx.init(params)
    assert isinstance(state0[1], EmaParamsState) and state0[1].ema_params["frozen"] is None
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(grads, state, params, value=1.0)
        return optix.apply_updates(params, updates), state

    state = state0
    for _ in range(10):
        params, state = step(params, state)
    assert len(traces) == 1
    assert jax.tree.structure(state) == jax.tree.structure(state0)
    assert params["w"].dtype == jnp.bfloat16 and params["frozen"] is None
    assert int(state[1].count) == 10
    average = state[1].ema_params["w"]
    assert average.dtype == (accumulator_dtype or jnp.bfloat16)
    # Each step moves the average by about 1e-5, below bf16's spacing near 1 (4e-3).
    if accumulator_dtype is None:
        np.testing.assert_array_equal(average, 1.0)
    else:
        assert bool(jnp.all(average < 1.0 - 1e-5)) and bool(jnp.all(average > 0.999))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ema_params(1.5), "ema_params: decay must be in [0, 1], got decay=1.5"),
        (
            lambda: ema_params(1.0, debias=True),
            "ema_params: decay must be in [0, 1), got decay=1.0",
        ),
        (
            lambda: ema_params(0.9, debias=True, copy_first=True),
            "ema_params: debias and copy_first are two starts; pass one of them",
        ),
        (
            lambda: ema_params(warmup, debias=True),
            "ema_params: debias needs a constant decay, got a schedule",
        ),
        (
            lambda: ema_params(0.9).update(
                {"w": jnp.ones(2)}, ema_params(0.9).init({"w": jnp.ones(2)})
            ),
            "ema_params needs the current params",
        ),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
