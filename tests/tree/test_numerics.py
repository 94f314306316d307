"""safe_norm, safe_root_mean_squares and scale_gradient against Optax's and NumPy's
values, with the derivatives they promise (finite, 0 where the floor wins, scaled)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.tree.numerics import safe_norm, safe_root_mean_squares, scale_gradient

ORDS = [None, np.inf, -np.inf, "fro", "nuc", 0, 1, 2, -2, -1.5, 1.5]


def _valid(ord, axis):
    """The combinations jnp.linalg.norm accepts on a matrix (as in Optax's test)."""
    return not (
        (ord == 0 and axis is None)
        or (isinstance(ord, float) and axis is None)
        or (isinstance(ord, str) and axis is not None)
    )


# keepdims only reshapes: it is tried with a vector norm and a matrix norm.
COMBOS = [(o, a, False) for o, a in itertools.product(ORDS, [None, 0, 1]) if _valid(o, a)]
COMBOS += [(None, None, True), (2, 1, True), ("nuc", None, True)]
X = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)


# Each order once (over the whole matrix where it may, else along an axis), and keepdims.
ONE_PER_ORD = list({c[0]: c for c in reversed(COMBOS)}.values())


def test_safe_norm_value_is_the_floored_norm_of_numpy_and_optax():
    for ord, axis, keepdims in [*ONE_PER_ORD, *COMBOS[-3:], (2, 0, False), (1, 1, False)]:
        norm = np.linalg.norm(X.astype(np.float64), ord, axis, keepdims)
        floor = float(np.median(norm))  # the floor wins for some entries, not all
        expected = np.maximum(norm, floor)
        ours = safe_norm(X, floor, ord, axis, keepdims)
        np.testing.assert_allclose(ours, expected, rtol=2e-6, err_msg=f"{ord} {axis}")
        theirs = optax.safe_norm(X, floor, ord, axis, keepdims)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
        assert ours.shape == expected.shape and ours.dtype == jnp.float32


def test_safe_norm_gradient_is_zero_at_zero():
    """Optax's case: the Jacobian at x = 0 is 0, with a zero and a positive floor."""
    zeros = jnp.zeros((3, 4), jnp.float32)
    for ord, axis, keepdims in ONE_PER_ORD:

        def both_floors(x, ord=ord, axis=axis, keepdims=keepdims):
            return [safe_norm(x, floor, ord, axis, keepdims) for floor in (0.0, 3.0)]

        jacobians = jax.jacfwd(both_floors)(zeros)
        for jacobian in jacobians:
            np.testing.assert_array_equal(jacobian, np.zeros_like(jacobian))


@pytest.mark.parametrize("axis", [None, 1])
def test_safe_norm_gradient_above_the_floor_is_the_norms(axis):
    floor = 1e-3
    ours = jax.jacrev(lambda x: safe_norm(x, floor, axis=axis))(X)
    plain = jax.jacrev(lambda x: jnp.linalg.norm(x, axis=axis))(X)
    np.testing.assert_allclose(ours, plain, rtol=1e-6)
    # Rows under the floor get a zero gradient: x / |x| elsewhere.
    x = X.copy()
    x[1] = 0.0
    grad = jax.grad(lambda x: jnp.sum(safe_norm(x, 0.5, axis=1)))(x)
    np.testing.assert_array_equal(grad[1], np.zeros(4))
    np.testing.assert_allclose(grad[0], x[0] / np.linalg.norm(x[0]), rtol=1e-6)


def test_safe_root_mean_squares():
    x = X.ravel()
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    for floor in (0.0, rms / 2, 2 * rms):
        np.testing.assert_allclose(safe_root_mean_squares(x, floor), max(rms, floor), rtol=1e-6)
        np.testing.assert_allclose(
            safe_root_mean_squares(x, floor), optax.safe_root_mean_squares(x, floor), rtol=1e-6
        )
    # Optax's case: the gradient at 0 is 0, with a zero and a positive floor.
    for floor in (0.0, 3.0):
        np.testing.assert_array_equal(jax.grad(safe_root_mean_squares)(jnp.float32(0.0), floor), 0)
    grad = jax.grad(safe_root_mean_squares)(jnp.asarray(x), 0.0)
    np.testing.assert_allclose(grad, x / (x.size * rms), rtol=1e-5)
    # Complex x: the rms of |x|.
    z = jnp.asarray([3 + 4j, 0j], jnp.complex64)
    np.testing.assert_allclose(safe_root_mean_squares(z, 0.0), np.sqrt(12.5), rtol=1e-6)


@pytest.mark.parametrize("scale", [-0.5, 0.0, 0.5, 1.0, 2.0])
def test_scale_gradient_scales_derivatives_only(scale):
    """Optax's case: a pytree of Python floats, gradient of a sum of squares."""
    inputs = {"a": -1.0, "b": {"c": (2.0,), "d": 0.0}}

    def fn(inputs):
        return sum(x**2 for x in jax.tree.leaves(scale_gradient(inputs, scale)))

    grads = jax.grad(fn)(inputs)
    jax.tree.map(lambda x, g: np.testing.assert_array_equal(g, 2 * x * scale), inputs, grads)
    assert fn(inputs) == 5.0
    ours = jax.grad(fn)(inputs)
    theirs = jax.grad(lambda i: sum(x**2 for x in jax.tree.leaves(optax.scale_gradient(i, scale))))
    jax.tree.map(np.testing.assert_array_equal, ours, theirs(inputs))


def test_scale_gradient_forward_mode_traced_scale_and_integers():
    x = jnp.asarray([1.0, -2.0])
    jacobian = jax.jacfwd(lambda x: scale_gradient(x, 0.25))(x)
    np.testing.assert_array_equal(jacobian, 0.25 * np.eye(2))

    @jax.jit
    def grad_with(scale):
        return jax.grad(lambda x: jnp.sum(scale_gradient(x, scale) ** 2))(x)

    np.testing.assert_array_equal(grad_with(jnp.float32(3.0)), 6.0 * np.asarray(x))
    # The scale gets no derivative; integer leaves pass through.
    assert jax.grad(lambda s: jnp.sum(scale_gradient(x, s)))(2.0) == 0.0
    tree = {"f": x, "i": jnp.arange(3)}
    out = jax.grad(lambda t: jnp.sum(scale_gradient(t, -1.0)["f"]), allow_int=True)(tree)
    np.testing.assert_array_equal(out["f"], [-1.0, -1.0])
