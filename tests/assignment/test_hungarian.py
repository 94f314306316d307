"""hungarian_algorithm and base_hungarian_algorithm: SciPy's optimum, Optax's pairs and order.

Matrices go through ``jax.vmap`` in batches, so each shape compiles once and every test
also exercises the batched loops.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

from optix import assignment
from optix.assignment import base_hungarian_algorithm, hungarian_algorithm

FNS = {
    "hungarian_algorithm": hungarian_algorithm,
    "base_hungarian_algorithm": base_hungarian_algorithm,
}
BATCHED = {name: jax.jit(jax.vmap(fn)) for name, fn in FNS.items()}
OPTAX = {name: jax.jit(jax.vmap(getattr(optax.assignment, name))) for name in FNS}
SHAPES = [(1, 4), (4, 1), (3, 8), (16, 16)]


def optimum(cost):
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return cost[rows, cols].sum(), set(zip(rows.tolist(), cols.tolist()))


def check_assignment(cost, i, j):
    """A valid assignment: min(n, m) pairs, each row and each column at most once."""
    i, j = np.asarray(i), np.asarray(j)
    k = min(cost.shape)
    assert i.shape == j.shape == (k,)
    assert jnp.issubdtype(i.dtype, jnp.integer) and jnp.issubdtype(j.dtype, jnp.integer)
    assert ((i >= 0) & (i < cost.shape[0])).all() and ((j >= 0) & (j < cost.shape[1])).all()
    assert len(set(i.tolist())) == len(set(j.tolist())) == k
    return i, j


def check_order(name, shape, i, j):
    """Optax's order: by row for the base algorithm; by column (square), by row from the
    last (wide) or by column from the last (tall) for the other."""
    n, m = shape
    if name == "base_hungarian_algorithm":
        assert (np.diff(i) > 0).all()
        if n <= m:
            np.testing.assert_array_equal(i, np.arange(n))
    elif n == m:
        np.testing.assert_array_equal(j, np.arange(m))
    elif n < m:
        np.testing.assert_array_equal(i, np.arange(n)[::-1])
    else:
        np.testing.assert_array_equal(j, np.arange(m)[::-1])


def test_exports_match_optax():
    assert sorted(assignment.__all__) == sorted(
        n for n in dir(optax.assignment) if not n.startswith("_")
    )
    for name in assignment.__all__:
        ours = inspect.signature(getattr(assignment, name)).parameters
        theirs = inspect.signature(getattr(optax.assignment, name)).parameters
        assert list(ours) == list(theirs)


@pytest.mark.parametrize("shape", SHAPES)
def test_float64_optimum_is_scipys(shape, x64):
    """Random normal costs have one optimum: the same pairs as SciPy's, by row."""
    costs = np.random.default_rng(shape[0] * 31 + shape[1]).normal(size=(12, *shape))
    i_batch, j_batch = BATCHED["base_hungarian_algorithm"](costs)
    for cost, i, j in zip(costs, i_batch, j_batch):
        i, j = check_assignment(cost, i, j)
        best, pairs = optimum(cost)
        assert set(zip(i.tolist(), j.tolist())) == pairs
        np.testing.assert_allclose(cost[i, j].sum(), best, rtol=1e-13)
        check_order("base_hungarian_algorithm", shape, i, j)


def ties(shape):
    """Small integer costs, with many optimal assignments each."""
    costs = np.random.default_rng(3).integers(0, 4, size=(12, *shape)).astype(np.float32)
    costs[0] = 0  # all equal
    costs[1] = 7
    costs[2] = np.arange(shape[1])  # every row the same
    costs[3] = np.arange(shape[0])[:, None]  # every column the same
    return costs


@pytest.mark.parametrize(
    "name, shape",
    [("hungarian_algorithm", s) for s in [(5, 5), (3, 8), (8, 3)]]
    + [("base_hungarian_algorithm", (8, 3))],
)
def test_float32_equals_optax_and_scipy(name, shape):
    """float32: Optax's outputs entry for entry and SciPy's pairs (in float64 on the same
    values); on costs with ties, SciPy's optimal cost exactly."""
    costs = np.random.default_rng(7).normal(size=(12, *shape)).astype(np.float32)
    ours = BATCHED[name](costs)
    theirs = OPTAX[name](costs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    for cost, i, j in zip(costs, *ours):
        i, j = check_assignment(cost, i, j)
        assert set(zip(i.tolist(), j.tolist())) == optimum(cost.astype(np.float64))[1]
        check_order(name, shape, i, j)
    tied = ties(shape)
    for cost, i, j in zip(tied, *BATCHED[name](tied)):
        i, j = check_assignment(cost, i, j)
        assert cost[i, j].sum() == optimum(cost)[0]
        check_order(name, shape, i, j)


def test_large_costs_are_exact_in_float64(x64):
    """Costs near 1e12 with unit differences: every bit of the potentials matters."""
    rng = np.random.default_rng(5)
    costs = 1e12 + rng.integers(0, 1000, size=(12, 16, 16)).astype(np.float64)
    i_batch, j_batch = BATCHED["base_hungarian_algorithm"](costs)
    for cost, i, j in zip(costs, i_batch, j_batch):
        i, j = check_assignment(cost, i, j)
        rows, cols = scipy.optimize.linear_sum_assignment(cost)
        assert (cost[i, j] - 1e12).sum() == (cost[rows, cols] - 1e12).sum()


def test_forbidden_pairs_marked_inf_are_avoided(x64):
    """An inf cost is a forbidden pair, as in SciPy, when a finite assignment exists."""
    rng = np.random.default_rng(9)
    costs = rng.normal(size=(12, 3, 8))
    costs[rng.random(costs.shape) < 0.4] = np.inf
    costs[:, np.arange(3), np.arange(3)] = rng.normal(size=(12, 3))  # keeps each feasible
    i_batch, j_batch = BATCHED["base_hungarian_algorithm"](costs)
    for cost, i, j in zip(costs, i_batch, j_batch):
        i, j = check_assignment(cost, i, j)
        np.testing.assert_allclose(cost[i, j].sum(), optimum(cost)[0], rtol=1e-13)


def test_narrow_and_integer_dtypes():
    """bf16 and f16 are solved in float32, integers and bools in the default float."""
    base = np.random.default_rng(1).integers(0, 3, size=(5, 5))
    dtypes = [jnp.bfloat16, np.float16, np.int8, np.int32, np.bool_]
    results = jax.jit(lambda cs: [hungarian_algorithm(c) for c in cs])(
        [base.astype(d) for d in dtypes]
    )
    for dtype, (i, j) in zip(dtypes, results):
        cost = base.astype(dtype).astype(np.float64)
        i, j = check_assignment(cost, i, j)
        assert cost[i, j].sum() == optimum(cost)[0], dtype


@pytest.mark.parametrize("name", FNS)
def test_documented_examples(name):
    fn = jax.jit(FNS[name])
    cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    i, j = fn(cost)
    assert int(cost[i, j].sum()) == 15
    wide = jnp.array(
        [
            [90, 80, 75, 70],
            [35, 85, 55, 65],
            [125, 95, 90, 95],
            [45, 110, 95, 115],
            [50, 100, 90, 100],
        ]
    )
    i, j = fn(wide)
    assert int(wide[i, j].sum()) == 265
    if name == "base_hungarian_algorithm":
        np.testing.assert_array_equal(fn(cost), ([0, 1, 3], [0, 2, 1]))
        np.testing.assert_array_equal((i, j), ([0, 1, 2, 3], [3, 2, 1, 0]))


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (4, 0)])
def test_empty_matrices(name, shape):
    i, j = FNS[name](jnp.zeros(shape))
    assert i.shape == j.shape == (0,)
    assert jnp.issubdtype(i.dtype, jnp.integer) and jnp.issubdtype(j.dtype, jnp.integer)
    i, j = jax.vmap(FNS[name])(jnp.zeros((3, *shape)))
    assert i.shape == j.shape == (3, 0)


@pytest.mark.parametrize("name", FNS)
def test_jit_and_empty_batch(name):
    """Optax's jit case (20 x 30) gives the optimum; a batch of none gives shape (0, k)."""
    cost = np.random.default_rng(0).normal(size=(20, 30)).astype(np.float32)
    i, j = check_assignment(cost, *jax.jit(FNS[name])(cost))
    assert set(zip(i.tolist(), j.tolist())) == optimum(cost.astype(np.float64))[1]
    i, j = BATCHED[name](jnp.zeros((0, 5, 5)))
    assert i.shape == j.shape == (0, 5)


def test_rejects_arrays_that_are_not_matrices():
    with pytest.raises(ValueError, match=r"hungarian_algorithm: cost_matrix must be a 2-D"):
        hungarian_algorithm(jnp.zeros(3))
