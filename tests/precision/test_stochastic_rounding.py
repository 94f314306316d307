"""Stochastic rounding to bfloat16: unbiased (the float32 mean within a few standard
errors), deterministic given the key, and tiny steps that move bf16 params and state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.precision.stochastic_rounding import (
    StochasticRoundingState,
    stochastic_round,
    with_stochastic_rounding,
)
from optix.serialization import abstract_state, from_bytes, to_bytes
from tests.precision.helpers import check_wrapper_contract, run_scan
from tests.transforms.wrapper_helpers import assert_trees_equal


def neighbours(x):
    """The bfloat16 values just below and above each float32 ``x`` (as float64)."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32) & np.uint32(0xFFFF0000)
    toward_zero = bits.view(np.float32).astype(np.float64)
    away = (bits + np.uint32(0x10000)).view(np.float32).astype(np.float64)
    return np.minimum(toward_zero, away), np.maximum(toward_zero, away)


VALUES = np.asarray(
    [1 + 2.0**-10, 1 + 3 * 2.0**-12, -3.14159, 2.0**-130 * 1.3, 1e-5 / 3, -7e20], np.float32
)


@pytest.mark.parametrize("x", VALUES, ids=lambda v: f"{v:.3g}")
def test_the_mean_is_the_float32_value(x):
    draws = 40_000
    rounded = np.asarray(
        stochastic_round(jnp.full((draws,), x), jax.random.key(7)).astype(jnp.float32), np.float64
    )
    low, high = neighbours(x)
    assert set(np.unique(rounded)) <= {low, high}
    p = (float(x) - low) / (high - low)
    standard_error = (high - low) * np.sqrt(p * (1 - p) / draws)
    assert abs(rounded.mean() - float(x)) < 4 * standard_error
    assert 0 < p < 1 and np.mean(rounded == high) == pytest.approx(p, abs=0.02)


def test_deterministic_given_the_key_and_exact_where_representable():
    x = jnp.asarray(np.random.default_rng(0).standard_normal(1000), jnp.float32)
    a, b = stochastic_round(x, jax.random.key(1)), stochastic_round(x, jax.random.key(1))
    c = stochastic_round(x, jax.random.key(2))
    assert a.dtype == jnp.bfloat16 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert np.any(np.asarray(a != c))
    exact = jnp.asarray([0.0, -0.0, 1.0, -2.5, 2.0**127, 2.0**-133, np.inf, -np.inf], jnp.float32)
    np.testing.assert_array_equal(
        stochastic_round(exact, jax.random.key(3)), exact.astype(jnp.bfloat16)
    )
    assert bool(jnp.isnan(stochastic_round(jnp.full((64,), jnp.nan), jax.random.key(4))).all())


def test_tiny_steps_move_bf16_params_by_their_float32_amount_on_average():
    n, lr, steps = 4096, 1e-4, 1000
    ones, grads = jnp.ones(n, jnp.bfloat16), -jnp.ones(n, jnp.bfloat16)
    params, _ = run_scan(with_stochastic_rounding(optix.sgd(lr), seed=3), ones, grads, steps)
    plain, _ = run_scan(optix.sgd(lr), ones, grads, steps)
    # each step adds variance <= (2**-7)**2 / 4 per entry: the mean's std is < 0.002
    assert abs(float(jnp.mean(params[-1].astype(jnp.float32))) - (1 + lr * steps)) < 0.01
    assert np.all(np.asarray(plain, np.float32) == 1.0)


def test_bf16_state_tracks_its_float32_value_on_average():
    n, steps = 4096, 300
    params = jnp.zeros(n, jnp.bfloat16)
    grads = jnp.full((n,), 1 + 2.0**-6, jnp.bfloat16)
    inner = optix.ema(0.999, debias=False)  # steps of 1e-3 * g, below bf16 resolution at 1

    def ema_of(tx, dtype):
        state = tx.init(params.astype(dtype))
        step = jax.jit(lambda s: tx.update(grads.astype(dtype), s, params.astype(dtype)))
        for _ in range(steps):
            _, state = step(state)
        return np.asarray(optix.tree.get(state, "ema"), np.float64)

    rounded = ema_of(with_stochastic_rounding(inner, round_params=False), jnp.bfloat16)
    nearest, exact = ema_of(inner, jnp.bfloat16), ema_of(inner, jnp.float32)
    assert abs(rounded.mean() - exact.mean()) < 0.05 * abs(nearest.mean() - exact.mean())


def test_wrapper_contract_checkpoint_and_determinism():
    params = {"w": jnp.ones((3, 4), jnp.bfloat16), "b": jnp.zeros(4), "frozen": None}
    grads = {"w": jnp.full((3, 4), 0.5, jnp.bfloat16), "b": jnp.ones(4), "frozen": None}
    wrap = lambda inner: with_stochastic_rounding(inner, seed=5)
    p, s = check_wrapper_contract(wrap, optix.adam(1e-3), params, grads)
    assert int(s.count) == 3 and s.inner_state[0].mu["w"].dtype == jnp.bfloat16
    again = check_wrapper_contract(wrap, optix.adam(1e-3), params, grads)
    assert_trees_equal((p, s), again)  # the same seed rounds the same way
    tx = wrap(optix.adam(1e-3))
    restored = from_bytes(abstract_state(tx, params), to_bytes(s))
    assert isinstance(restored, StochasticRoundingState)
    assert_trees_equal(restored, s)
    # float32 leaves get the inner's own numbers
    plain = optix.adam(1e-3)
    ref, _ = plain.update(grads, plain.init(params), params)
    ours, _ = tx.update(grads, tx.init(params), params)
    assert_trees_equal(ours["b"], ref["b"])


def test_params_are_needed_to_round_them():
    tx = with_stochastic_rounding(optix.sgd(0.1))
    with pytest.raises(ValueError, match="with_stochastic_rounding: update needs params"):
        tx.update(jnp.ones(2, jnp.bfloat16), tx.init(jnp.ones(2, jnp.bfloat16)))
    tx = with_stochastic_rounding(optix.sgd(0.1), round_params=False)
    updates, _ = tx.update(jnp.ones(2, jnp.bfloat16), tx.init(jnp.ones(2, jnp.bfloat16)))
    assert updates.dtype == jnp.bfloat16
