"""The contract: chain, named_chain, stateless helpers, apply_updates and friends."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix


def recorder(seen: list):
    """A transformation that records the extra args it receives and adds 1."""

    def update(updates, state, params=None, **extra_args):
        seen.append(dict(extra_args))
        return jax.tree.map(lambda u: u + 1.0, updates), state

    return optix.GradientTransformation(optix.init_empty_state, update)


def test_one_transformation_type():
    assert optix.GradientTransformationExtraArgs is optix.GradientTransformation
    assert isinstance(optix.adam(0.1), optix.GradientTransformationExtraArgs)


def test_chain_forwards_extra_args_to_every_member_and_applies_in_order():
    seen = []
    tx = optix.chain(recorder(seen), optix.scale(2.0), recorder(seen))
    updates, state = tx.update({"w": jnp.zeros(2)}, tx.init({"w": jnp.zeros(2)}), value=3.0)
    np.testing.assert_array_equal(updates["w"], [3.0, 3.0])
    assert seen == [{"value": 3.0}, {"value": 3.0}]
    assert state == (optix.EmptyState(), optix.EmptyState(), optix.EmptyState())


def test_chain_adapts_members_without_extra_args():
    def update(updates, state, params=None):
        return updates, state

    tx = optix.chain(optix.GradientTransformation(optix.init_empty_state, update))
    updates, _ = tx.update({"w": jnp.ones(1)}, tx.init({"w": jnp.ones(1)}), value=1.0)
    np.testing.assert_array_equal(updates["w"], [1.0])


def test_chain_rejects_a_foreign_state():
    tx = optix.chain(optix.scale(1.0), optix.scale(2.0))
    with pytest.raises(ValueError, match="expected a tuple of 2 member states, got 1 entries"):
        tx.update({"w": jnp.ones(1)}, (optix.EmptyState(),))


def test_named_chain_keys_state_by_name():
    tx = optix.named_chain(("momentum", optix.trace(0.5)), ("lr", optix.scale(-0.1)))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    assert set(state) == {"momentum", "lr"}
    updates, state = tx.update({"w": jnp.ones(2)}, state)
    np.testing.assert_allclose(updates["w"], [-0.1, -0.1])
    np.testing.assert_allclose(state["momentum"].trace["w"], [1.0, 1.0])
    with pytest.raises(ValueError, match="names must be unique"):
        optix.named_chain(("a", optix.identity()), ("a", optix.identity()))


def test_identity_set_to_zero_and_stateless():
    g = {"w": jnp.asarray([1.0, -2.0])}
    assert optix.identity().update(g, optix.EmptyState())[0] is g
    np.testing.assert_array_equal(optix.set_to_zero().update(g, optix.EmptyState())[0]["w"], [0, 0])
    double = optix.stateless(lambda u, p: jax.tree.map(lambda x: 2 * x, u))
    np.testing.assert_array_equal(double.update(g, optix.EmptyState())[0]["w"], [2.0, -4.0])
    add_param = optix.stateless_with_tree_map(lambda u, p: u + p)
    out, _ = add_param.update(g, optix.EmptyState(), {"w": jnp.asarray([1.0, 1.0])})
    np.testing.assert_array_equal(out["w"], [2.0, -1.0])


def test_apply_updates_casts_back_and_passes_none():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": None, "c": jnp.zeros(1, jnp.float32)}
    updates = {"a": jnp.full(2, 0.5, jnp.float32), "b": None, "c": jnp.ones(1, jnp.float32)}
    out = optix.apply_updates(params, updates)
    assert out["a"].dtype == jnp.bfloat16 and out["b"] is None
    np.testing.assert_array_equal(out["a"].astype(jnp.float32), [1.5, 1.5])


def test_apply_updates_names_both_structures_on_mismatch():
    with pytest.raises(ValueError, match="params and updates must have the same tree structure"):
        optix.apply_updates({"a": jnp.ones(1)}, {"b": jnp.ones(1)})


def test_incremental_and_periodic_updates_match_optax():
    new, old = {"w": jnp.asarray([1.0, 2.0])}, {"w": jnp.asarray([3.0, 5.0])}
    np.testing.assert_allclose(
        optix.incremental_update(new, old, 0.25)["w"], optax.incremental_update(new, old, 0.25)["w"]
    )
    for step in range(4):
        np.testing.assert_array_equal(
            optix.periodic_update(new, old, jnp.asarray(step), 2)["w"],
            optax.periodic_update(new, old, jnp.asarray(step), 2)["w"],
        )


def test_safe_increment_saturates():
    top = jnp.asarray(jnp.iinfo(jnp.int32).max, jnp.int32)
    assert int(optix.safe_increment(top)) == int(top)
    assert int(optix.safe_increment(jnp.asarray(4, jnp.int32))) == 5


@settings(deadline=None, max_examples=25)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=5))
def test_chain_with_identity_equals_the_transformation(values):
    g = {"w": jnp.asarray(values, jnp.float32)}
    params = {"w": jnp.zeros(len(values), jnp.float32)}
    tx = optix.adam(0.1)
    alone, _ = tx.update(g, tx.init(params), params)
    chained = optix.chain(tx, optix.identity())
    both, _ = chained.update(g, chained.init(params), params)
    np.testing.assert_array_equal(alone["w"], both["w"])


@settings(deadline=None, max_examples=25)
# Subnormal floats are left out: XLA on CPU flushes them to zero in p + 0.
@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False, width=32),
        min_size=1,
        max_size=5,
    )
)
def test_apply_zero_updates_is_identity(values):
    params = {"w": jnp.asarray(values, jnp.float32)}
    out = optix.apply_updates(params, jax.tree.map(jnp.zeros_like, params))
    np.testing.assert_array_equal(out["w"], params["w"])
