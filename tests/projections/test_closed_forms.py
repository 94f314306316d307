"""Closed forms: each projection on inputs whose nearest point is known by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix import projections as P

pytestmark = pytest.mark.usefixtures("x64")

X = np.asarray([0.5, 2.1, -3.5])


def assert_tree_equal(actual, expected, rtol=0.0):
    """Same structure and values; lists in ``expected`` stand for arrays."""
    expected = jax.tree.map(np.asarray, expected, is_leaf=lambda v: isinstance(v, list))
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=rtol, atol=0), actual, expected)


def test_non_negative_orthant_on_arrays_and_nested_trees():
    np.testing.assert_array_equal(P.projection_non_negative(X), [0.5, 2.1, 0.0])
    tree = (-1.0, {"k1": 1.0, "k2": (-2.0, 1.0)}, None)
    assert_tree_equal(P.projection_non_negative(tree), (0.0, {"k1": 1.0, "k2": (0.0, 1.0)}, None))


def test_box_with_scalar_array_and_tree_bounds():
    expected = [0.5, 2.0, 0.0]
    np.testing.assert_array_equal(P.projection_box(X, 0.0, 2.0), expected)
    np.testing.assert_array_equal(P.projection_box(X, np.zeros(3), np.full(3, 2.0)), expected)
    tree = (-1.0, {"k1": 2.5, "k2": (2.0, 3.0)}, 3.0)
    lower = (0.0, {"k1": 0.0, "k2": (2.5, 0.0)}, -np.inf)
    upper = (2.0, {"k1": 2.0, "k2": (2.5, 2.0)}, np.inf)
    assert_tree_equal(
        P.projection_box(tree, lower, upper), (0.0, {"k1": 2.0, "k2": (2.5, 2.0)}, 3.0)
    )
    # A scalar or a tree prefix as bound broadcasts over the subtrees (Optax needs full trees).
    assert_tree_equal(
        P.projection_box({"a": X, "b": (X, None)}, 0.0, {"a": 1.0, "b": 2.0}),
        {"a": [0.5, 1.0, 0.0], "b": (expected, None)},
    )


def test_hypercube_default_scalar_array_and_tree_scales():
    x = np.asarray([-1.0, 2.0, 0.5])
    np.testing.assert_array_equal(P.projection_hypercube(x), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(P.projection_hypercube(x, 0.8), [0.0, 0.8, 0.5])
    np.testing.assert_array_equal(P.projection_hypercube(x, np.full(3, 0.8)), [0.0, 0.8, 0.5])
    assert_tree_equal(P.projection_hypercube({"a": x, "b": x}, {"a": 0.4, "b": 3.0}),
                      {"a": [0.0, 0.4, 0.4], "b": [0.0, 2.0, 0.5]})  # fmt: skip


def test_linf_ball():
    np.testing.assert_array_equal(P.projection_linf_ball(X), [0.5, 1.0, -1.0])
    assert_tree_equal(P.projection_linf_ball({"a": X, "b": 4.0}, 2.0),
                      {"a": [0.5, 2.0, -2.0], "b": 2.0})  # fmt: skip


@pytest.mark.parametrize(
    "x, scale, expected",
    [
        (X, 1.0, [0.0, 1.0, 0.0]),
        ([1.0, 2.0], 1.0, [0.0, 1.0]),  # tau = (3 - 1) / 2
        ([2.0, 2.0, 0.0], 1.0, [0.5, 0.5, 0.0]),  # ties share
        ([0.2, 0.3, 0.5], 1.0, [0.2, 0.3, 0.5]),  # already inside
        ([0.0, 0.0, 0.0, 0.0], 2.0, [0.5, 0.5, 0.5, 0.5]),
        ([0.0, 0.0, -np.inf], 0.8, [0.4, 0.4, 0.0]),
        ([1.0, 2.0, -3.0], 0.0, [0.0, 0.0, 0.0]),  # the simplex of sum 0 is {0}
        ([10.0, 9.0, -5.0], 4.0, [2.5, 1.5, 0.0]),  # tau = (19 - 4) / 2
    ],
)
def test_simplex_known_cases(x, scale, expected):
    np.testing.assert_allclose(P.projection_simplex(jnp.asarray(x), scale), expected, rtol=1e-15)


def test_simplex_on_a_tree_and_under_shifts(x64):
    tree = {"w": jnp.asarray([2.5, 3.2]), "b": jnp.asarray(0.5)}  # tau = (5.7 - 1) / 2
    result = P.projection_simplex(tree)
    np.testing.assert_allclose(result["w"], [0.15, 0.85], rtol=1e-14)
    assert float(result["b"]) == 0.0
    # Adding a constant to every entry moves tau by the same constant.
    x = jnp.asarray([0.3, -1.2, 2.0, 0.7])
    np.testing.assert_allclose(P.projection_simplex(x + 5.0), P.projection_simplex(x), rtol=1e-14)


def test_l1_ball_and_sphere(x64):
    x = jnp.asarray([2.0, -2.0, 0.5])  # |x| sorted 2, 2, .5: rho = 2, tau = 1.5
    np.testing.assert_allclose(P.projection_l1_ball(x), [0.5, -0.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(P.projection_l1_sphere(x), [0.5, -0.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(P.projection_l1_ball(jnp.asarray([3.0, -1.0])), [1.0, 0.0])
    inside = jnp.asarray([0.25, -0.125, 0.0])
    np.testing.assert_array_equal(P.projection_l1_ball(inside), inside)
    # On the sphere, inside points move out by the same amount on every entry, zeros
    # included (tau = (0.375 - 1) / 3); Optax leaves zeros at 0 and misses the sphere.
    t = 0.625 / 3
    expected = [0.25 + t, -0.125 - t, t]
    np.testing.assert_allclose(P.projection_l1_sphere(inside), expected, rtol=1e-14)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.projections.projection_l1_sphere(inside)
    assert float(jnp.sum(jnp.abs(theirs))) < 0.9
    np.testing.assert_allclose(P.projection_l1_sphere(jnp.zeros(4), 2.0), [0.5] * 4)


def test_l2_ball_and_sphere(x64):
    x = {"a": jnp.asarray([3.0]), "b": jnp.asarray(4.0)}
    assert_tree_equal(P.projection_l2_ball(x), {"a": [0.6], "b": 0.8}, rtol=1e-15)
    assert_tree_equal(P.projection_l2_sphere(x, 10.0), {"a": [6.0], "b": 8.0}, rtol=1e-15)
    assert_tree_equal(P.projection_l2_ball(x, 5.0), x)  # on the boundary: unchanged
    inside = jnp.asarray([0.1, -0.3, 0.2])
    np.testing.assert_array_equal(P.projection_l2_ball(inside), inside)
    np.testing.assert_array_equal(P.projection_l2_ball(jnp.zeros(3), 0.0), jnp.zeros(3))
    np.testing.assert_allclose(P.projection_l2_ball(inside, 0.0), jnp.zeros(3))
    np.testing.assert_allclose(P.projection_l2_sphere(jnp.zeros(4), 3.0), [1.5] * 4)


def test_vector_hyperplane_and_halfspace(x64):
    x, a = (1.0, 2.0), (3.0, 4.0)
    assert_tree_equal(P.projection_vector(x, a), (33 / 25, 44 / 25), rtol=1e-15)
    assert_tree_equal(P.projection_hyperplane(x, a, 5.0), (7 / 25, 26 / 25), rtol=1e-15)
    assert_tree_equal(P.projection_halfspace(x, a, 5.0), (7 / 25, 26 / 25), rtol=1e-15)
    assert_tree_equal(P.projection_halfspace((1.0, -2.0), a, 5.0), (1.0, -2.0))
    # a = 0: the line is {0}; the hyperplane and halfspace with b = 0 are everything.
    assert_tree_equal(P.projection_vector(x, (0.0, 0.0)), (0.0, 0.0))
    assert_tree_equal(P.projection_hyperplane(x, (0.0, 0.0), 0.0), x)
    assert_tree_equal(P.projection_halfspace(x, (0.0, 0.0), 1.0), x)
