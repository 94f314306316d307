"""Restore targets: abstract_state and as_abstract, with and without shardings."""

import jax
import jax.numpy as jnp
import pytest

import optix
from optix.serialization import abstract_state, as_abstract
from tests.serialization.common import make_params

DEVICE = jax.sharding.SingleDeviceSharding(jax.devices()[0])
MESH = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
REPLICATED = jax.sharding.NamedSharding(MESH, jax.sharding.PartitionSpec())


def layout(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def shardings_of(tree):
    return [x.sharding for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("abstract_params", [False, True], ids=["live", "abstract"])
def test_abstract_state_is_the_state_without_values(abstract_params):
    tx = optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(0.1, mu_dtype=jnp.bfloat16))
    params = make_params()
    given = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    state = abstract_state(tx, given if abstract_params else params)
    assert layout(state) == layout(tx.init(params))
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(state))
    assert isinstance(state[1][0], optix.ScaleByAdamState)


def test_one_sharding_places_every_leaf():
    state = abstract_state(optix.adam(0.1), make_params(), shardings=REPLICATED)
    assert shardings_of(state) == [REPLICATED] * 7


def test_a_prefix_tree_of_shardings_places_whole_subtrees():
    scheduled = optix.adam(optix.linear_schedule(0.1, 0.01, 10))  # a count in state[1]
    state = abstract_state(scheduled, make_params(), shardings=(REPLICATED, None))
    assert shardings_of(state[0]) == [REPLICATED] * 7
    assert state[1].count.sharding is None


def test_a_function_of_the_abstract_state_gives_the_shardings():
    def rule(abstract):
        return jax.tree.map(lambda x: DEVICE if x.ndim else REPLICATED, abstract)

    state = abstract_state(optix.adam(0.1), make_params(), shardings=rule)
    assert [s == DEVICE for s in shardings_of(state)] == [
        x.ndim > 0 for x in jax.tree.leaves(state)
    ]


def test_shardings_of_another_shape_are_rejected_with_both_structures():
    with pytest.raises(
        ValueError, match=r"abstract_state: shardings must be .*\n  state: .*\n  shardings:"
    ):
        abstract_state(optix.adam(0.1), make_params(), shardings=(REPLICATED, None, None))


def test_as_abstract_keeps_chosen_placements_only():
    tree = {
        "committed": jax.device_put(jnp.ones(2), DEVICE),
        "default": jnp.ones(3),
        "step": 3,
        "abstract": jax.ShapeDtypeStruct((4,), jnp.bfloat16, sharding=REPLICATED),
    }
    abstract = as_abstract(tree)
    assert abstract["committed"].sharding == DEVICE
    assert abstract["default"].sharding is None
    assert abstract["abstract"].sharding == REPLICATED
    assert (abstract["step"].dtype, abstract["step"].weak_type) == (jnp.int32, True)
    assert shardings_of(as_abstract(tree, REPLICATED)) == [REPLICATED] * 4
