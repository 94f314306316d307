"""Optax's own masking and freezing cases (optax/transforms/{_masking,_freezing}_test.py),
run on optix: masks as trees, prefixes and functions, nested masks, map_params through a
mask, callable pytrees as masks, and freeze / selective_transform on flat and nested trees.
"""

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.transforms.masking import MaskedNode, MaskedState, masked

BUILDERS = {"sgd": lambda: optix.sgd(1.0), "stateful_sgd": lambda: optix.sgd(1.0, momentum=0.0)}
MASK = {"a": True, "b": [False, True], "c": {"d": True, "e": (False, True)}}
PARAMS = jax.tree.map(jnp.asarray, {"a": 1.0, "b": [2.0, 3.0], "c": {"d": 4.0, "e": (5.0, 6.0)}})


def negate_where(mask, updates):
    return jax.tree.map(lambda m, u: jax.tree.map(jnp.negative, u) if m else u, mask, updates)


def assert_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), a, b)


@pytest.mark.parametrize("use_fn", [False, True], ids=["tree", "function"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_masked_sgd_negates_only_the_selected_updates(name, use_fn):
    tx = masked(BUILDERS[name](), (lambda _: MASK) if use_fn else MASK)
    update = jax.jit(tx.update)
    state = jax.jit(tx.init)(PARAMS)
    mapped = optix.tree.map_params(tx.init, lambda v: v, state)
    assert jax.tree.structure(mapped) == jax.tree.structure(state)
    updates = jax.tree.map(lambda x: x / 10.0, PARAMS)
    expected = negate_where(MASK, updates)
    updates, state = update(updates, state, PARAMS)
    assert_close(updates, expected)
    updates, _ = update(updates, state)  # again, with no params
    assert_close(updates, negate_where(MASK, expected))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_mask_that_is_a_prefix_of_the_updates(name):
    mask = {"a": True, "b": False, "c": {"d": False, "e": True}}
    params = jax.tree.map(
        jnp.asarray, {"a": 1.0, "b": {"f": 2.0}, "c": {"d": 3.0, "e": ([4.0, 5.0], 6.0)}}
    )
    tx = masked(BUILDERS[name](), mask)
    update = jax.jit(tx.update)
    updates = jax.tree.map(lambda x: x / 10.0, params)
    expected = negate_where(mask, updates)
    updates, state = update(updates, jax.jit(tx.init)(params), params)
    assert_close(updates, expected)
    updates, _ = update(updates, state)
    assert_close(updates, negate_where(mask, expected))


def test_masked_weight_decay_uses_the_current_params():
    tx = masked(optix.add_decayed_weights(0.1), MASK)
    update = jax.jit(tx.update)
    decay = lambda u, p: jax.tree.map(lambda m, u, p: u + 0.1 * p if m else u, MASK, u, p)
    params, updates = PARAMS, jax.tree.map(lambda x: x / 10.0, PARAMS)
    state = jax.jit(tx.init)(params)
    for _ in range(2):
        expected = decay(updates, params)
        updates, state = update(updates, state, params)
        assert_close(updates, expected)
        params = optix.apply_updates(params, updates)


@pytest.mark.parametrize("container", [list, tuple, dict])
def test_an_empty_tree(container):
    tx = masked(optix.sgd(1.0), container())
    assert tx.update(container(), tx.init(container()))[0] == container()


@pytest.mark.parametrize("use_fn", [False, True], ids=["tree", "function"])
@pytest.mark.parametrize("extra_in_mask", [False, True], ids=["params_extra", "mask_extra"])
def test_a_mask_with_another_structure_is_an_error(extra_in_mask, use_fn):
    mask, params = copy.deepcopy(MASK), dict(PARAMS, c=dict(PARAMS["c"]))
    if extra_in_mask:
        mask["c"]["extra"] = True
    else:
        params["c"]["extra"] = jnp.asarray(7.0)
    with pytest.raises(ValueError, match="extra"):
        masked(optix.sgd(1.0), (lambda _: mask) if use_fn else mask).init(params)


def test_a_mask_function_of_the_params_shapes():
    params = {"a": jnp.ones((1, 2)), "b": (jnp.ones((1,)), np.ones((1, 2, 3)))}
    tx = masked(optix.add_decayed_weights(0.1), lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    grads = jax.tree.map(lambda x: x * 2, params)
    updates, _ = jax.jit(tx.update)(grads, jax.jit(tx.init)(params), params)
    np.testing.assert_allclose(updates["a"], 2.1 * np.ones((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(updates["b"][0], 2.0 * np.ones(1))
    np.testing.assert_allclose(updates["b"][1], 2.1 * np.ones((1, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_nested_masks_select_their_intersection(name):
    params = {f"linear_{i}": {"w": jnp.zeros((1, i)), "b": jnp.zeros(i)} for i in (1, 2, 3)}
    params["linear_3"]["w"] = jnp.zeros((2, 3))
    inner_mask = jax.tree.map(lambda _: True, params)
    inner_mask["linear_2"] = False
    tx = masked(
        masked(BUILDERS[name](), inner_mask), lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
    )
    updates = jax.tree.map(jnp.ones_like, params)
    expected = copy.deepcopy(updates)
    expected["linear_1"]["w"] = -expected["linear_1"]["w"]
    expected["linear_3"]["w"] = -expected["linear_3"]["w"]
    out, _ = jax.jit(tx.update)(updates, jax.jit(tx.init)(params), params)
    assert_close(out, expected)


def test_the_masked_state_holds_masked_nodes_where_the_mask_is_false():
    params = {
        "a": [jnp.ones(1), (jnp.ones(2), jnp.ones(3))],
        "b": {"c": jnp.ones(4), "d": jnp.ones(5)},
    }
    tx = masked(optix.sgd(1.0, momentum=0.0), {"a": [True, (True, False)], "b": False})
    trace = jax.jit(tx.init)(params).inner_state[0].trace
    expected = {"a": [jnp.zeros(1), (jnp.zeros(2), MaskedNode())], "b": MaskedNode()}
    assert jax.tree.structure(trace) == jax.tree.structure(expected)


def test_map_params_through_a_mask_as_on_the_inner_state():
    params = {
        "a": {"b": (jnp.zeros((1, 2)), jnp.zeros((2, 2)))},
        "c": {"d": jnp.zeros((1, 2)), "e": (jnp.zeros((1, 2)), jnp.zeros((1, 2)))},
    }
    axes = {"a": {"b": (1, 2)}, "c": {"d": 1, "e": (1, 2)}}
    mask = {"a": {"b": (True, False)}, "c": {"d": True, "e": (False, True)}}
    expected = {
        "a": {"b": (jnp.ones((1, 2)), jnp.zeros((2, 2)))},
        "c": {"d": jnp.ones((1, 2)), "e": (jnp.ones((1, 2)), jnp.ones((1, 2)))},
    }

    inner = optix.GradientTransformation(
        lambda p: {"count": 1, "params": p, "params_copy": p}, lambda u, s, p=None: (u, s)
    )
    tx = masked(inner, mask)
    bump = lambda v: v + 1 if v.shape[0] == 1 else v
    for t in (inner, tx):
        got = optix.tree.map_params(t, bump, t.init(params))
        assert jax.tree.structure(got) == jax.tree.structure(t.init(expected))
        jax.tree.map(np.testing.assert_array_equal, got, t.init(expected))
    # Sharding axes for the selected leaves, None elsewhere and for the count.
    new_state = optix.tree.map_params(
        tx,
        lambda p, axis: None if isinstance(p, MaskedNode) else axis,
        tx.init(params),
        axes,
        is_leaf=lambda v: isinstance(v, MaskedNode),
        transform_non_params=lambda v: None,
    )
    assert isinstance(new_state, MaskedState)
    assert new_state.inner_state["count"] is None
    selected = {"a": {"b": (1, None)}, "c": {"d": 1, "e": (None, 2)}}
    assert new_state.inner_state["params"] == selected == new_state.inner_state["params_copy"]


@dataclasses.dataclass
class CallableModule:
    """A pytree that is also callable, like an Equinox module."""

    w: jax.Array

    def __call__(self, x):
        return self.w.dot(x)


jax.tree_util.register_pytree_node(
    CallableModule, lambda m: ((m.w,), None), lambda _, c: CallableModule(*c)
)


def test_a_callable_pytree_mask_is_a_mask_not_a_function():
    module = CallableModule(jnp.array([1.0, 2.0, 3.0]))
    tx = masked(optix.sgd(1.0), CallableModule(False))
    out, _ = tx.update(module, tx.init(module))
    assert isinstance(out, CallableModule)
    np.testing.assert_array_equal(out.w, module.w)


# _freezing_test.py

FLAT = {"a": np.zeros(1), "b": np.ones(2)}
FLAT_GRADS = {"a": np.array([1.0]), "b": np.array([2.0, 3.0])}
NESTED = {
    "layer1": [np.zeros((2, 3)), {"bias": np.ones(3)}],
    "layer2": {"w": np.full((4, 2), 2.0), "b": np.full(4, -1.0)},
    "misc": (np.array(5.0),),
}
NESTED_GRADS = {
    "layer1": [np.full((2, 3), 1.0), {"bias": np.full(3, 2.0)}],
    "layer2": {"w": np.full((4, 2), 3.0), "b": np.full(4, 4.0)},
    "misc": (np.array(1.0),),
}
NESTED_MASKS = {
    "none": {
        "layer1": [False, {"bias": False}],
        "layer2": {"w": False, "b": False},
        "misc": (False,),
    },
    "l1_0": {
        "layer1": [True, {"bias": False}],
        "layer2": {"w": False, "b": False},
        "misc": (False,),
    },
    "l2_w": {
        "layer1": [False, {"bias": False}],
        "layer2": {"w": True, "b": False},
        "misc": (False,),
    },
    "l2": {"layer1": [False, {"bias": False}], "layer2": {"w": True, "b": True}, "misc": (False,)},
    "all": {"layer1": [True, {"bias": True}], "layer2": {"w": True, "b": True}, "misc": (True,)},
}
CASES = [
    (FLAT, FLAT_GRADS, mask)
    for mask in (
        {"a": True, "b": False},
        {"a": False, "b": True},
        True,
        False,
        np.array(False),
        np.array(True),
    )
] + [(NESTED, NESTED_GRADS, mask) for mask in NESTED_MASKS.values()]
CASES.append(
    (
        {"a": 1.0, "b": {"c": 2.0, "d": 3.0}},
        {"a": 10.0, "b": {"c": 20.0, "d": 30.0}},
        {"a": False, "b": True},
    )
)


def frozen_where(mask, tree, frozen, free):
    """``frozen(leaf)`` under True mask entries (a prefix of ``tree``), ``free(leaf)`` elsewhere."""
    return jax.tree.map(lambda m, t: jax.tree.map(frozen if bool(m) else free, t), mask, tree)


@pytest.mark.parametrize(("params", "grads", "mask"), CASES)
def test_freeze_zeroes_the_frozen_updates_and_keeps_an_empty_state(params, grads, mask):
    tx = optix.freeze(mask)
    state = tx.init(params)
    updates, new_state = tx.update(jax.tree.map(jnp.asarray, grads), state, params)
    assert_close(updates, frozen_where(mask, grads, np.zeros_like, lambda g: g))
    assert new_state == state and state.inner_state == optix.EmptyState()


@pytest.mark.parametrize(("params", "grads", "mask"), CASES)
def test_selective_transform_moves_only_the_free_params(params, grads, mask):
    tx = optix.selective_transform(optix.sgd(1.0), freeze_mask=mask)
    params = jax.tree.map(jnp.asarray, params)
    updates, _ = tx.update(jax.tree.map(jnp.asarray, grads), tx.init(params), params)
    moved = jax.tree.map(
        lambda m, p, g: jax.tree.map(lambda p, g: p if bool(m) else p - g, p, g),
        mask,
        params,
        grads,
    )
    assert_close(optix.apply_updates(params, updates), moved)


@pytest.mark.parametrize(
    "build", [optix.freeze, lambda m: optix.selective_transform(optix.sgd(1.0), freeze_mask=m)]
)
def test_a_mask_missing_a_leaf_is_an_error(build):
    tx = build({"a": True})
    with pytest.raises(ValueError, match="'b'"):
        tx.update(FLAT_GRADS, tx.init(FLAT), FLAT)
