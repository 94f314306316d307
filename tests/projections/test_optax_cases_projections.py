"""Optax's own projection cases (optax/projections/_projections_test.py), run on optix with
the values Optax asserts. Its Jacobian, vmap and gradient-at-zero cases are in
test_parity.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix import projections as proj

ARRAY_1D = jnp.array([0.5, 2.1, -3.5])
DATA = {
    "array_1d": ARRAY_1D,
    "array_2d": jnp.array([[0.5, 2.1, -3.5], [1.0, 2.0, 3.0]]),
    "tree": (ARRAY_1D, ARRAY_1D),
}
BALLS = {
    "l1": (proj.projection_l1_ball, functools.partial(optix.tree.norm, ord=1)),
    "l2": (proj.projection_l2_ball, optix.tree.norm),
    "linf": (proj.projection_linf_ball, functools.partial(optix.tree.norm, ord="inf")),
}


def assert_tree_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    jax.tree.map(np.testing.assert_array_equal, actual, expected)


def test_non_negative_box_and_hypercube():
    x = jnp.array([-1.0, 2.0, 3.0])
    np.testing.assert_array_equal(proj.projection_non_negative(x), [0.0, 2.0, 3.0])
    assert_tree_equal(proj.projection_non_negative((x, x)), (jnp.array([0.0, 2, 3]),) * 2)
    tree = (-1.0, {"k1": 1.0, "k2": (1.0, 1.0)}, 1.0)
    assert_tree_equal(proj.projection_non_negative(tree), (0.0, {"k1": 1.0, "k2": (1.0, 1.0)}, 1.0))
    expected = jnp.array([0.0, 2.0, 2.0])
    np.testing.assert_array_equal(proj.projection_box(x, 0.0, 2.0), expected)
    np.testing.assert_array_equal(proj.projection_box(x, jnp.zeros(3), jnp.full(3, 2.0)), expected)
    assert_tree_equal(proj.projection_box((x, x), (0.0, 0.0), (2.0, 2.0)), (expected, expected))
    tree = (-1.0, {"k1": 2.0, "k2": (2.0, 3.0)}, 3.0)
    lower = (0.0, {"k1": 0.0, "k2": (0.0, 0.0)}, 0.0)
    upper = (2.0, {"k1": 2.0, "k2": (2.0, 2.0)}, 2.0)
    assert_tree_equal(
        proj.projection_box(tree, lower, upper), (0.0, {"k1": 2.0, "k2": (2.0, 2.0)}, 2.0)
    )
    x = jnp.array([-1.0, 2.0, 0.5])
    np.testing.assert_array_equal(proj.projection_hypercube(x), [0.0, 1.0, 0.5])
    expected = jnp.array([0.0, 0.8, 0.5])
    np.testing.assert_array_equal(proj.projection_hypercube(x, 0.8), expected)
    np.testing.assert_array_equal(proj.projection_hypercube(x, jnp.full(3, 0.8)), expected)


@pytest.mark.parametrize("scale", [1.0, 0.8])
def test_simplex_sums_to_the_scale(scale):
    x = np.random.RandomState(0).randn(50).astype(np.float32)
    p = proj.projection_simplex(x, scale)
    np.testing.assert_allclose(jnp.sum(p), scale, rtol=1e-5)
    assert bool(jnp.all(p >= 0)) and bool(jnp.all(p <= scale))
    tree = proj.projection_simplex({"w": jnp.array([2.5, 3.2]), "b": 0.5}, scale)
    np.testing.assert_allclose(optix.tree.sum(tree), scale, rtol=1e-5)
    p = proj.projection_simplex(jnp.array([0.0, 0.0, -jnp.inf]), scale)
    np.testing.assert_allclose(p, [scale / 2, scale / 2, 0.0], rtol=1e-6)


@pytest.mark.parametrize("key", sorted(DATA))
def test_spheres_and_balls(key):
    x = DATA[key]
    for scale in (1.0, 3.21):
        np.testing.assert_allclose(
            optix.tree.norm(proj.projection_l1_sphere(x, scale), ord=1), scale, rtol=1e-5
        )
        np.testing.assert_allclose(
            optix.tree.norm(proj.projection_l2_sphere(x, scale)), scale, rtol=1e-5
        )
    for name, (project, norm) in BALLS.items():
        radius = norm(x)
        for inside in (2 * radius, radius):
            jax.tree.map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), project(x, inside), x
            )
        np.testing.assert_allclose(
            norm(project(x, radius / 2)), radius / 2, rtol=1e-5, err_msg=name
        )


def test_vector_hyperplane_and_halfspace():
    x, a = (1.0, 2.0), (3.0, 4.0)
    assert bool(optix.tree.allclose(proj.projection_vector(x, a), (33 / 25, 44 / 25)))
    assert bool(optix.tree.allclose(proj.projection_hyperplane(x, a, 5.0), (7 / 25, 26 / 25)))
    assert bool(optix.tree.allclose(proj.projection_halfspace(x, a, 5.0), (7 / 25, 26 / 25)))
    assert bool(optix.tree.allclose(proj.projection_halfspace((1.0, -2.0), a, 5.0), (1.0, -2.0)))
