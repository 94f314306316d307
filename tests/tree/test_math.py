"""Leafwise arithmetic and reductions, against NumPy and ``optax.tree_utils``."""

from typing import Any, NamedTuple

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix.tree as ot

otu = optax.tree_utils


class Pair(NamedTuple):
    x: Any
    y: Any


def _trees(seed: int) -> list[Any]:
    """A dict with a None leaf, nested tuples, and a NamedTuple, all float32."""
    rng = np.random.default_rng(seed)

    def r(*shape: int) -> jax.Array:
        return jnp.asarray(rng.normal(size=shape), jnp.float32)

    return [
        {"a": r(3), "b": {"c": r(2, 2), "d": None}},
        (r(4), (r(), r(2, 3))),
        Pair(x=r(5), y={"z": r(1, 2)}),
    ]


def _flat(tree: Any) -> np.ndarray:
    """All entries of all leaves as one float64 (or complex128) NumPy vector."""
    leaves = [
        np.asarray(x).astype(np.result_type(np.asarray(x), np.float64)).ravel()
        for x in jax.tree.leaves(tree)
    ]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def _assert_trees_close(got: Any, want: Any, rtol: float = 1e-6, atol: float = 0.0) -> None:
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert jnp.asarray(g).dtype == jnp.asarray(w).dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


X, Y, Z = _trees(0), _trees(1), _trees(2)
CASES = [pytest.param(x, y, z, id=type(x).__name__) for x, y, z in zip(X, Y, Z, strict=True)]


@pytest.mark.parametrize(("x", "y", "z"), CASES)
def test_binary_ops_match_numpy_and_optax(x: Any, y: Any, z: Any) -> None:
    for ours, theirs, numpy_op in [
        (ot.sub, otu.tree_sub, np.subtract),
        (ot.mul, otu.tree_mul, np.multiply),
        (ot.div, otu.tree_div, np.divide),
    ]:
        got = ours(x, y)
        np.testing.assert_allclose(_flat(got), numpy_op(_flat(x), _flat(y)), rtol=1e-6)
        _assert_trees_close(got, theirs(x, y))
    got = ot.add(x, y, z)
    np.testing.assert_allclose(_flat(got), _flat(x) + _flat(y) + _flat(z), rtol=1e-6, atol=1e-6)
    _assert_trees_close(got, otu.tree_add(x, y, z))


@pytest.mark.parametrize(("x", "y", "z"), CASES)
def test_scale_add_scale_where(x: Any, y: Any, z: Any) -> None:
    got = ot.scale(-2.5, x)
    np.testing.assert_allclose(_flat(got), -2.5 * _flat(x), rtol=1e-6)
    _assert_trees_close(got, otu.tree_scale(-2.5, x))
    got = ot.add_scale(x, 0.3, y)
    np.testing.assert_allclose(_flat(got), _flat(x) + 0.3 * _flat(y), rtol=1e-5, atol=1e-6)
    _assert_trees_close(got, otu.tree_add_scale(x, 0.3, y))
    for condition in (True, False):
        want = _flat(x) if condition else _flat(y)
        np.testing.assert_array_equal(_flat(ot.where(condition, x, y)), want)
        _assert_trees_close(ot.where(condition, x, y), otu.tree_where(condition, x, y))


def test_scale_keeps_leaf_dtype_for_array_scalars() -> None:
    tree = {"h": jnp.array([1.5, -2.0], jnp.bfloat16), "f": jnp.array([3.0], jnp.float32)}
    got = ot.scale(jnp.float32(0.5), tree)
    assert got["h"].dtype == jnp.bfloat16 and got["f"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(got["h"], np.float32), [0.75, -1.0])
    got = ot.add_scale(tree, jnp.float32(2.0), tree)
    assert got["h"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got["h"], np.float32), [4.5, -6.0])
    np.testing.assert_array_equal(got["f"], [9.0])


def test_none_leaves_pass_through() -> None:
    m = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
    x = {"a": None, "b": jnp.array(1.0)}
    got = ot.add_scale(x, 2.0, m)
    assert got["a"] is None
    np.testing.assert_allclose(got["b"], 7.0)
    assert ot.add_scale(None, 1.0, m) is None
    assert ot.scale(2.0, {"a": None})["a"] is None
    assert ot.zeros_like({"a": None, "b": jnp.ones(2)})["a"] is None


@pytest.mark.parametrize("x", X, ids=lambda x: type(x).__name__)
def test_conj_real_on_complex_leaves(x: Any) -> None:
    cplx = jax.tree.map(lambda v: jax.lax.complex(v, 2 * v), x)
    np.testing.assert_allclose(_flat(ot.conj(cplx)), np.conj(_flat(cplx)), rtol=1e-6)
    np.testing.assert_allclose(_flat(ot.real(cplx)), _flat(x), rtol=1e-6)
    _assert_trees_close(ot.conj(cplx), otu.tree_conj(cplx))
    _assert_trees_close(ot.real(cplx), otu.tree_real(cplx))


@pytest.mark.parametrize("x", X, ids=lambda x: type(x).__name__)
def test_clip(x: Any) -> None:
    for low, high in [(-0.5, 0.5), (None, 0.2), (-0.1, None), (None, None)]:
        got = ot.clip(x, low, high)
        np.testing.assert_array_equal(_flat(got), np.clip(_flat(x), low, high).astype(np.float32))
        _assert_trees_close(got, otu.tree_clip(x, low, high))
    bf16 = jnp.array([-3.0, 0.25, 3.0], jnp.bfloat16)
    got = ot.clip(bf16, jnp.float32(-1.0), jnp.float32(1.0))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got, np.float32), [-1.0, 0.25, 1.0])


@pytest.mark.parametrize("x", X, ids=lambda x: type(x).__name__)
def test_constructors(x: Any) -> None:
    for ours, theirs, fill in [
        (ot.zeros_like, otu.tree_zeros_like, 0.0),
        (ot.ones_like, otu.tree_ones_like, 1.0),
    ]:
        got = ours(x)
        np.testing.assert_array_equal(_flat(got), np.full(_flat(x).shape, fill))
        _assert_trees_close(got, theirs(x))
        _assert_trees_close(ours(x, jnp.int32), theirs(x, jnp.int32))
    got = ot.full_like(x, 7.0, dtype=jnp.bfloat16)
    assert {leaf.dtype for leaf in jax.tree.leaves(got)} == {jnp.dtype(jnp.bfloat16)}
    np.testing.assert_array_equal(_flat(got), np.full(_flat(x).shape, 7.0))
    _assert_trees_close(got, otu.tree_full_like(x, 7.0, dtype=jnp.bfloat16))
    got = ot.batch_shape(x, (2, 3))
    for g, leaf in zip(jax.tree.leaves(got), jax.tree.leaves(x), strict=True):
        assert g.shape == (2, 3, *leaf.shape)
        np.testing.assert_array_equal(g[1, 2], leaf)
    _assert_trees_close(got, otu.tree_batch_shape(x, (2, 3)))


@pytest.mark.parametrize(("x", "y", "z"), CASES)
def test_reductions_match_numpy_and_optax(x: Any, y: Any, z: Any) -> None:
    flat_x, flat_y = _flat(x), _flat(y)
    np.testing.assert_allclose(ot.sum(x), flat_x.sum(), rtol=1e-5)
    np.testing.assert_allclose(ot.sum(x, associative_reduction=True), flat_x.sum(), rtol=1e-5)
    np.testing.assert_allclose(ot.sum(x), otu.tree_sum(x), rtol=1e-6)
    assert ot.max(x) == flat_x.max() == otu.tree_max(x)
    assert ot.min(x) == flat_x.min() == otu.tree_min(x)
    assert ot.size(x) == flat_x.size == otu.tree_size(x)
    np.testing.assert_allclose(ot.vdot(x, y), flat_x @ flat_y, rtol=1e-5)
    np.testing.assert_allclose(ot.vdot(x, y), otu.tree_vdot(x, y), rtol=1e-6)
    for order, numpy_norm in [(None, 2), (2, 2), (1, 1), (jnp.inf, np.inf), ("inf", np.inf)]:
        want = np.linalg.norm(flat_x, numpy_norm)
        np.testing.assert_allclose(ot.norm(x, order), want, rtol=1e-6)
        np.testing.assert_allclose(ot.norm(x, order, squared=True), want**2, rtol=1e-6)
        theirs = otu.tree_norm(x, order)
        np.testing.assert_allclose(ot.norm(x, order), theirs, rtol=1e-6)
        assert ot.norm(x, order).dtype == theirs.dtype == jnp.float32


def test_complex_vdot_and_norm() -> None:
    x = {"a": jnp.array([1 + 2j, 3 - 1j], jnp.complex64), "b": jnp.array(2j, jnp.complex64)}
    y = {"a": jnp.array([0.5 - 1j, 2 + 0j], jnp.complex64), "b": jnp.array(1 + 1j, jnp.complex64)}
    np.testing.assert_allclose(ot.vdot(x, y), np.vdot(_flat(x), _flat(y)), rtol=1e-6)
    np.testing.assert_allclose(ot.vdot(x, y), otu.tree_vdot(x, y), rtol=1e-6)
    np.testing.assert_allclose(ot.norm(x), np.linalg.norm(_flat(x)), rtol=1e-6)
    np.testing.assert_allclose(ot.norm(x, 1), np.abs(_flat(x)).sum(), rtol=1e-6)
    assert ot.norm(x).dtype == jnp.float32


MIXED = {
    "w": jnp.array([[1.0, -2.0], [0.5, 4.0]], jnp.float32),
    "h": jnp.array([3.0, -6.0], jnp.bfloat16),
    "n": jnp.array([1, 2, -9], jnp.int32),
}


def test_reductions_on_mixed_dtypes_promote() -> None:
    flat = _flat(MIXED)
    assert ot.sum(MIXED).dtype == jnp.float32
    np.testing.assert_allclose(ot.sum(MIXED), flat.sum())
    np.testing.assert_allclose(ot.norm(MIXED), np.linalg.norm(flat), rtol=1e-6)
    np.testing.assert_allclose(ot.norm(MIXED, 1), np.abs(flat).sum(), rtol=1e-6)
    assert ot.norm(MIXED, "infinity") == 9.0
    assert ot.max(MIXED) == 4.0 and ot.min(MIXED) == -9.0
    np.testing.assert_allclose(ot.vdot(MIXED, MIXED), flat @ flat, rtol=1e-6)
    with jax.numpy_dtype_promotion("standard"):
        np.testing.assert_allclose(ot.sum(MIXED), otu.tree_sum(MIXED))
        np.testing.assert_allclose(ot.norm(MIXED), otu.tree_norm(MIXED), rtol=1e-6)
        np.testing.assert_allclose(ot.vdot(MIXED, MIXED), otu.tree_vdot(MIXED, MIXED))


def test_integer_reductions_stay_integer() -> None:
    tree = {"a": jnp.array([3, -7], jnp.int32), "b": jnp.array(5, jnp.int32)}
    assert ot.max(tree) == 5 and ot.max(tree).dtype == jnp.int32
    assert ot.min(tree) == -7 and ot.sum(tree) == 1
    np.testing.assert_allclose(ot.norm(tree), np.sqrt(83.0), rtol=1e-6)


@pytest.mark.parametrize("tree", [{}, (), [], None, {"k": [None, [None]]}], ids=repr)
def test_empty_trees(tree: Any) -> None:
    assert ot.sum(tree) == 0 and ot.vdot(tree, tree) == 0 and ot.size(tree) == 0
    for order in (None, 1, jnp.inf):
        assert ot.norm(tree, order) == 0.0
    assert ot.max(tree) == -jnp.inf and ot.min(tree) == jnp.inf
    assert ot.sum(tree) == otu.tree_sum(tree) and ot.max(tree) == otu.tree_max(tree)


def test_max_min_skip_empty_leaves() -> None:
    tree = [jnp.ones([2, 3]), jnp.zeros([4, 0, 5]), -3.0]
    assert ot.max(tree) == 1.0 and ot.min(tree) == -3.0
    assert ot.norm(tree, jnp.inf) == 3.0


def test_norm_rejects_unknown_order() -> None:
    with pytest.raises(ValueError, match="Unsupported ord: 3"):
        ot.norm({"a": jnp.ones(2)}, 3)


def test_allclose() -> None:
    x = X[0]
    assert bool(ot.allclose(x, x))
    assert bool(ot.allclose(x, ot.add_scale(x, 1e-7, ot.ones_like(x))))
    assert not bool(ot.allclose(x, ot.add_scale(x, 1e-3, ot.ones_like(x))))
    assert bool(ot.allclose(x, ot.add_scale(x, 1e-3, ot.ones_like(x)), atol=1e-2))
    nan = {"a": jnp.array([jnp.nan, 1.0])}
    assert not bool(ot.allclose(nan, nan)) and bool(ot.allclose(nan, nan, equal_nan=True))
    assert bool(ot.allclose(1, 1 + 1e-7)) and not bool(ot.allclose(1, 2))
    assert bool(ot.allclose(jnp.array([1.5], jnp.bfloat16), jnp.array([1.5], jnp.float32)))
    assert bool(ot.allclose(x, x)) == bool(otu.tree_allclose(x, x))


floats = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
leaves = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), elements=floats
)
trees = st.recursive(
    leaves | st.none(),
    lambda kids: (
        st.lists(kids, max_size=3).map(tuple)
        | st.dictionaries(st.sampled_from("abc"), kids, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=40, deadline=None)
@given(trees)
def test_adding_the_negation_gives_zero(tree: Any) -> None:
    tree = jax.tree.map(jnp.asarray, tree)
    zero = ot.add(tree, ot.scale(-1, tree))
    np.testing.assert_array_equal(_flat(zero), np.zeros(ot.size(tree)))
    assert jax.tree.structure(zero) == jax.tree.structure(tree)


@settings(max_examples=40, deadline=None)
@given(trees)
def test_squared_norm_is_self_inner_product(tree: Any) -> None:
    tree = jax.tree.map(jnp.asarray, tree)
    sq = float(np.sum(_flat(tree) ** 2))
    np.testing.assert_allclose(ot.norm(tree) ** 2, ot.vdot(tree, tree), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ot.norm(tree, squared=True), sq, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(trees, st.floats(-4, 4, width=32))
def test_sum_is_linear(tree: Any, factor: float) -> None:
    tree = jax.tree.map(jnp.asarray, tree)
    want = factor * float(np.sum(_flat(tree)))
    np.testing.assert_allclose(ot.sum(ot.scale(factor, tree)), want, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(
        ot.sum(tree, associative_reduction=True), ot.sum(tree), rtol=1e-5, atol=1e-3
    )
