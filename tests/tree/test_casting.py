"""Casting, tree dtypes and random trees, against ``optax.tree_utils``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix.tree as ot

otu = optax.tree_utils

TREE = {"a": {"b": jnp.array([1.5, 2.25], jnp.float32)}, "c": jnp.array(3.0, jnp.float32)}


def test_cast() -> None:
    got = ot.cast(TREE, jnp.bfloat16)
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(got))
    np.testing.assert_array_equal(np.asarray(got["a"]["b"], np.float32), [1.5, 2.25])
    assert jax.tree.map(lambda a, b: a.dtype == b.dtype, got, otu.tree_cast(TREE, jnp.bfloat16))
    assert ot.cast(TREE, None) is TREE
    assert ot.cast({"n": None, "x": 2.0}, jnp.int32) == {"n": None, "x": 2}


def test_cast_like() -> None:
    other = {"a": {"b": jnp.zeros(2, jnp.float16)}, "c": np.int32(0)}
    got = ot.cast_like(TREE, other)
    assert got["a"]["b"].dtype == jnp.float16 and got["c"].dtype == jnp.int32
    assert int(got["c"]) == 3
    want = otu.tree_cast_like(TREE, other)
    assert jax.tree.leaves(jax.tree.map(lambda a, b: a.dtype == b.dtype, got, want)) == [True] * 2
    # A leaf of other_tree without a dtype leaves the matching leaf as it is.
    got = ot.cast_like({"x": jnp.ones(2, jnp.int32)}, {"x": "no dtype"})
    assert got["x"].dtype == jnp.int32


MIXED = {"h": jnp.ones(2, jnp.bfloat16), "f": jnp.ones(2, jnp.float32), "i": jnp.ones(1, jnp.int8)}


def test_dtype_of_uniform_and_empty_trees() -> None:
    assert ot.dtype(TREE) == jnp.float32 == otu.tree_dtype(TREE)
    assert ot.dtype({}) == otu.tree_dtype({}) == jnp.float32
    assert ot.dtype({"k": jnp.ones(2, jnp.int8), "n": None}) == jnp.int8


@pytest.mark.parametrize(
    ("handler", "want"), [("promote", jnp.float32), ("highest", jnp.float32), ("lowest", jnp.int8)]
)
def test_dtype_with_mixed_handlers(handler: str, want: jnp.dtype) -> None:
    assert ot.dtype(MIXED, handler) == want
    with jax.numpy_dtype_promotion("standard"):
        assert otu.tree_dtype(MIXED, handler) == want


def test_dtype_errors() -> None:
    with pytest.raises(ValueError, match=r"(?s)dtype float32.*\['h'\]: bfloat16.*\['i'\]: int8"):
        ot.dtype(MIXED)
    halves = {"a": jnp.ones(1, jnp.bfloat16), "b": jnp.ones(1, jnp.float16)}
    with pytest.raises(ValueError, match="Cannot order dtypes bfloat16 and float16"):
        ot.dtype(halves, "highest")
    assert ot.dtype(halves, "promote") == jnp.float32
    assert ot.dtype({"a": jnp.ones(1, jnp.int32), "b": jnp.ones(1, jnp.uint32)}, "promote") == (
        jnp.int32
    )
    with pytest.raises(ValueError, match="Invalid mixed_dtype_handler='widest'"):
        ot.dtype(MIXED, "widest")


def test_split_key_like() -> None:
    key = jax.random.key(3)
    keys = ot.split_key_like(key, {"a": jnp.ones(2), "b": (jnp.ones(3), None)})
    assert jax.tree.structure(keys) == jax.tree.structure({"a": 0, "b": (0, None)})
    want = jax.random.split(key, 2)
    got = jax.tree.leaves(keys)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(jax.random.key_data(g), jax.random.key_data(w))
    theirs = jax.tree.leaves(otu.tree_split_key_like(key, {"a": jnp.ones(2), "b": (jnp.ones(3),)}))
    for g, t in zip(got, theirs, strict=True):
        np.testing.assert_array_equal(jax.random.key_data(g), jax.random.key_data(t))


def test_random_like() -> None:
    target = {"w": jnp.zeros((2, 3), jnp.bfloat16), "b": jnp.zeros(4, jnp.float32)}
    key = jax.random.key(0)
    got = ot.random_like(key, target)
    want = otu.tree_random_like(key, target)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(np.asarray(g, np.float32), np.asarray(w, np.float32))
    keys = jax.tree.leaves(ot.split_key_like(key, target))
    np.testing.assert_array_equal(got["b"], jax.random.normal(keys[0], (4,), jnp.float32))
    uniform = ot.random_like(key, target, jax.random.uniform, dtype=jnp.float32)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(uniform))
    assert bool(ot.min(uniform) >= 0.0) and bool(ot.max(uniform) < 1.0)
    # Samplers without an out_sharding parameter are called with three arguments.
    ones = ot.random_like(key, target, lambda k, shape, dtype: jnp.ones(shape, dtype))
    assert ot.sum(ot.cast(ones, jnp.float32)) == 10.0


def test_unwrap_random_key_data() -> None:
    key = jax.random.key(5)
    tree = {"k": key, "x": jnp.ones(2), "raw": jax.random.PRNGKey(1)}
    got = ot.unwrap_random_key_data(tree)
    np.testing.assert_array_equal(got["k"], jax.random.key_data(key))
    assert got["k"].dtype == jnp.uint32 and got["x"] is tree["x"] and got["raw"] is tree["raw"]
    want = otu.tree_unwrap_random_key_data(tree)
    np.testing.assert_array_equal(got["k"], want["k"])
