"""hvp, hessian_diag, fisher_diag: the exact Hessian (jax.hessian, float64) and Optax."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from optix import second_order

# Jitted once per input signature: one compiled program instead of many eager ops.
hvp, hessian_diag, fisher_diag = (
    jax.jit(f, static_argnums=0)
    for f in (second_order.hvp, second_order.hessian_diag, second_order.fisher_diag)
)


def loss(params, inputs, targets):
    """A small two-layer network's squared error: curvature in every block."""
    hidden = jnp.tanh(inputs @ params["w1"] + params["b1"][None])
    return 0.5 * jnp.sum((hidden @ params["w2"] - targets) ** 2)


def problem(dtype):
    rng = np.random.default_rng(0)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype)
    params = {"w1": normal(3, 4), "b1": normal(4), "w2": normal(4, 2)}
    return params, normal(5, 3), normal(5, 2)


@jax.jit
def exact_hessian(params, inputs, targets):
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda f: loss(unravel(f), inputs, targets))(flat)


def optax_quietly(fn, *args):
    """Optax's function, jitted; Optax 0.2.8 warns that these functions are deprecated."""
    with warnings.catch_warnings(), jax.numpy_dtype_promotion("standard"):
        warnings.simplefilter("ignore", DeprecationWarning)
        return jax.jit(fn, static_argnums=0)(*args)


def test_hvp_is_the_hessian_times_v(x64):
    params, inputs, targets = problem(jnp.float64)
    v = jnp.linspace(-1.0, 1.0, ravel_pytree(params)[0].size, dtype=jnp.float64)
    got = hvp(loss, v, params, inputs, targets)
    assert jax.tree.structure(got) == jax.tree.structure(params)
    expected = exact_hessian(params, inputs, targets) @ v
    np.testing.assert_allclose(ravel_pytree(got)[0], expected, rtol=1e-12, atol=1e-12)


def test_hessian_diag_is_the_diagonal_of_the_hessian(x64):
    params, inputs, targets = problem(jnp.float64)
    got = hessian_diag(loss, params, inputs, targets)
    expected = np.diag(exact_hessian(params, inputs, targets))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_fisher_diag_is_the_squared_gradient(x64):
    params, inputs, targets = problem(jnp.float64)
    expected = ravel_pytree(jax.jit(jax.grad(loss))(params, inputs, targets))[0] ** 2
    np.testing.assert_allclose(fisher_diag(loss, params, inputs, targets), expected, rtol=1e-12)


def test_all_three_match_optax_in_float32():
    params, inputs, targets = problem(jnp.float32)
    v = jnp.arange(ravel_pytree(params)[0].size, dtype=jnp.float32) / 10
    pairs = [
        (hvp(loss, v, params, inputs, targets),
         optax_quietly(optax.second_order.hvp, loss, v, params, inputs, targets)),
        (hessian_diag(loss, params, inputs, targets),
         optax_quietly(optax.second_order.hessian_diag, loss, params, inputs, targets)),
        (fisher_diag(loss, params, inputs, targets),
         optax_quietly(optax.second_order.fisher_diag, loss, params, inputs, targets)),
    ]  # fmt: skip
    for ours, theirs in pairs:
        assert jax.tree.structure(ours) == jax.tree.structure(theirs)
        close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        jax.tree.map(close, ours, theirs)


def test_optix_does_not_warn():
    params, inputs, targets = problem(jnp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second_order.fisher_diag(loss, params, inputs, targets)


def test_hvp_keeps_the_params_dtype():
    dtype = jnp.bfloat16
    params, inputs, targets = problem(dtype)
    v = jnp.ones(ravel_pytree(params)[0].size, dtype)
    assert ravel_pytree(hvp(loss, v, params, inputs, targets))[0].dtype == dtype


def test_names_and_signatures_are_optax_s():
    import inspect

    assert set(second_order.__all__) == {
        n for n in dir(optax.second_order) if not n.startswith("_")
    }
    for name in second_order.__all__:
        ours = inspect.signature(getattr(second_order, name)).parameters
        theirs = inspect.signature(getattr(optax.second_order, name)).parameters
        assert list(ours) == list(theirs), name
