"""keep_params_nonnegative and zero_nans: Optax's numbers and state, and their laws."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms import constraints
from optix.transforms.constraints import (
    NonNegativeParamsState,
    ZeroNansState,
    keep_params_nonnegative,
    zero_nans,
)
from tests.transforms.basics import check_basics

PARAMS = {"w": np.asarray([[0.0, 1.0, 2.0], [0.5, 3.0, 0.1]]), "s": np.asarray(0.2)}
UPDATES = {"w": np.asarray([[-1.0, -0.5, -2.5], [0.1, -3.0, -0.1]]), "s": np.asarray(-0.3)}
NAN_UPDATES = {
    "w": np.asarray([[np.nan, 1.0, np.inf], [-np.inf, np.nan, 0.0]], np.float32),
    "s": np.asarray(2.0, np.float32),
    "i": np.asarray([1, 2, 3], np.int32),
}


def cast_floats(tree, dtype):
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in tree.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name, updates, params",
    [("keep_params_nonnegative", UPDATES, PARAMS), ("zero_nans", NAN_UPDATES, NAN_UPDATES)],
    ids=["keep_params_nonnegative", "zero_nans"],
)
def test_matches_optax(name, updates, params, dtype):
    updates, params = cast_floats(updates, dtype), cast_floats(params, dtype)
    with jax.enable_x64(dtype == np.float64):
        tx, reference = getattr(constraints, name)(), getattr(optax, name)()
        ours, state = tx.update(updates, tx.init(params), params)
        with jax.numpy_dtype_promotion("standard"):
            theirs, their_state = reference.update(updates, reference.init(params), params)
    assert type(state).__name__ == type(their_state).__name__
    assert state._fields == their_state._fields
    assert jax.tree.structure(tuple(state)) == jax.tree.structure(tuple(their_state))
    jax.tree.map(np.testing.assert_array_equal, (ours, tuple(state)), (theirs, tuple(their_state)))
    for k in updates:
        assert ours[k].dtype == updates[k].dtype


def test_zero_nans_flags_each_leaf_and_starts_false():
    tx = zero_nans()
    state = tx.init(NAN_UPDATES)
    assert state == ZeroNansState({"w": False, "s": False, "i": False})
    assert all(x.dtype == jnp.bool_ and x.shape == () for x in jax.tree.leaves(state))
    out, state = tx.update(NAN_UPDATES, state)
    assert jax.tree.map(bool, state.found_nan) == {"w": True, "s": False, "i": False}
    np.testing.assert_array_equal(out["w"], [[0.0, 1.0, np.inf], [-np.inf, 0.0, 0.0]])
    _, state = tx.update(jax.tree.map(np.nan_to_num, NAN_UPDATES), state)
    assert not any(jax.tree.leaves(jax.tree.map(bool, state.found_nan)))


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float16, np.float64]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
        elements={"allow_nan": True, "allow_infinity": True},
    )
)
def test_zero_nans_replaces_exactly_the_nans(x):
    with jax.enable_x64(x.dtype == np.float64):
        out, state = zero_nans().update({"x": x}, zero_nans().init({"x": x}))
    out = np.asarray(out["x"])
    assert out.dtype == x.dtype
    nan = np.isnan(x)
    np.testing.assert_array_equal(out[nan], 0)
    np.testing.assert_array_equal(out[~nan], x[~nan])
    assert bool(state.found_nan["x"]) == bool(nan.any())


finite = st.floats(-1e3, 1e3, allow_subnormal=False, width=32)


@settings(max_examples=200, deadline=None)
@given(st.data(), hnp.array_shapes(min_dims=0, max_dims=2, max_side=5))
def test_nonnegative_params_stay_nonnegative(data, shape):
    """From p >= 0, p + u >= 0; updates that keep p >= 0 pass unchanged."""
    p = data.draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1e3, width=32)))
    g = data.draw(hnp.arrays(np.float32, shape, elements=finite))
    tx = keep_params_nonnegative()
    u, state = tx.update({"p": g}, tx.init({"p": p}), {"p": p})
    assert state == NonNegativeParamsState()
    new = np.asarray(optix.apply_updates({"p": p}, u)["p"])
    assert np.all(new >= 0)
    fine = p + g >= 0
    np.testing.assert_array_equal(np.asarray(u["p"])[fine], g[fine])
    np.testing.assert_array_equal(new[~fine], 0)


def test_keep_params_nonnegative_needs_params_and_moves_negative_params_to_zero():
    tx = keep_params_nonnegative()
    with pytest.raises(ValueError, match="keep_params_nonnegative needs the current params"):
        tx.update(UPDATES, tx.init(PARAMS))
    params = {"x": jnp.asarray([-1.0, -1.0, 2.0])}
    updates, _ = tx.update({"x": jnp.asarray([0.5, 3.0, -1.0])}, (), params)
    np.testing.assert_array_equal(optix.apply_updates(params, updates)["x"], [0.0, 2.0, 1.0])


def test_keep_params_nonnegative_last_in_a_chain():
    tx = optix.chain(optix.sgd(1.0), keep_params_nonnegative())
    params = {"x": jnp.asarray([0.5, 2.0])}
    updates, _ = tx.update({"x": jnp.asarray([1.0, 1.0])}, tx.init(params), params)
    np.testing.assert_array_equal(optix.apply_updates(params, updates)["x"], [0.0, 1.0])


@pytest.mark.parametrize(
    "tx", [keep_params_nonnegative(), zero_nans()], ids=["keep_params_nonnegative", "zero_nans"]
)
def test_building_block_basics(tx):
    check_basics(tx)
