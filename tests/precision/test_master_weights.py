"""with_master_weights: steps below bf16 resolution accumulate in the float32 copy
exactly as float32 training does, and the params follow the rounded master."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.precision.master_weights import MasterWeightsState, with_master_weights
from optix.serialization import abstract_state, from_bytes, to_bytes
from tests.precision.helpers import check_wrapper_contract, run_scan
from tests.transforms.wrapper_helpers import assert_trees_equal


def test_tiny_steps_accumulate_exactly_as_in_float32():
    # sgd(1e-4) with gradient -1: each step adds 1e-4, under bf16's resolution at 1 (2**-7).
    ones, lr, steps = jnp.ones(8), 1e-4, 1000
    grads = -jnp.ones(8, jnp.bfloat16)
    params, state = run_scan(
        with_master_weights(optix.sgd(lr)), ones.astype(jnp.bfloat16), grads, steps
    )
    float32_params, _ = run_scan(optix.sgd(lr), ones, -ones, steps)
    np.testing.assert_array_equal(state.master, float32_params)  # bit for bit, every step
    np.testing.assert_array_equal(params, state.master.astype(jnp.bfloat16))
    expected = np.float32(1)
    for _ in range(steps):
        expected = expected + np.float32(lr)
    assert state.master[-1, 0] == expected and params[-1, 0] == jnp.bfloat16(1.1015625)
    plain, _ = run_scan(optix.sgd(lr), ones.astype(jnp.bfloat16), grads, steps)
    assert np.all(np.asarray(plain, np.float32) == 1.0)  # bf16 alone never moves


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_inner_state_is_float32_and_full_precision_leaves_pass_through(dtype):
    params = {"low": jnp.linspace(-1, 1, 6, dtype=dtype), "full": jnp.linspace(0, 1, 3)}
    grads = {"low": jnp.full((6,), 0.25, dtype), "full": jnp.full((3,), -0.5)}
    tx, plain = with_master_weights(optix.adamw(0.1)), optix.adamw(0.1)
    state = tx.init(params)
    assert state.master["full"] is None and state.master["low"].dtype == jnp.float32
    updates, new_state = tx.update(grads, state, params)
    assert new_state.inner_state[0].mu["low"].dtype == jnp.float32
    assert updates["low"].dtype == jnp.float32
    plain_updates, plain_state = plain.update(grads, plain.init(params), params)
    assert_trees_equal(updates["full"], plain_updates["full"])
    assert_trees_equal(new_state.inner_state[0].nu["full"], plain_state[0].nu["full"])
    # the low-precision leaf moves by the float32 step, rounded once
    wide = jax.tree.map(lambda x: x.astype(jnp.float32), (params, grads))
    wide_updates, _ = plain.update(wide[1], plain.init(wide[0]), wide[0])
    master = params["low"].astype(jnp.float32) + wide_updates["low"]
    assert_trees_equal(new_state.master["low"], master)
    new_params = optix.apply_updates(params, updates)
    assert_trees_equal(new_params["low"], master.astype(dtype))


def test_float32_params_give_the_inner_numbers():
    params = {"w": jnp.linspace(-1, 1, 6)}
    tx = with_master_weights(optix.adam(0.1))
    state = tx.init(params)
    assert state.master == {"w": None}
    ours, _ = tx.update({"w": jnp.ones(6)}, state, params)
    theirs, _ = optix.adam(0.1).update({"w": jnp.ones(6)}, optix.adam(0.1).init(params))
    assert_trees_equal(ours, theirs)


def test_wrapper_contract():
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "frozen": None, "b": jnp.zeros(3)}
    grads = {"w": jnp.ones((2, 3), jnp.bfloat16), "frozen": None, "b": jnp.ones(3)}
    new_params, state = check_wrapper_contract(with_master_weights, optix.adam(0.1), params, grads)
    assert not np.array_equal(new_params["w"], params["w"])
    assert state.master["frozen"] is None and state.master["b"] is None


def test_checkpoint_round_trip():
    tx = with_master_weights(optix.adam(0.1))
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2)}
    grads = {"w": jnp.full((3,), 0.5, jnp.bfloat16), "b": jnp.ones(2)}
    _, state = tx.update(grads, tx.init(params), params)
    restored = from_bytes(abstract_state(tx, params), to_bytes(state))
    assert isinstance(restored, MasterWeightsState) and restored.master["b"] is None
    assert_trees_equal(restored, state)


def test_misuse_is_explained():
    tx = with_master_weights(optix.sgd(0.1))
    state = tx.init({"w": jnp.ones(2, jnp.bfloat16)})
    with pytest.raises(ValueError, match="with_master_weights: update needs params"):
        tx.update({"w": jnp.ones(2, jnp.bfloat16)}, state)
    with pytest.raises(TypeError, match="master_dtype must be a floating dtype"):
        with_master_weights(optix.sgd(0.1), jnp.int32)
