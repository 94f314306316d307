"""Hutchinson's estimator: Optax's numbers for the same seed, and the exact diagonal in
expectation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.second_order.hutchinson import HutchinsonState, hutchinson_estimator_diag_hessian


def objective(params):
    return jnp.sum(jnp.sin(params["w"]) ** 2) + jnp.sum(params["w"][:, 0] * params["b"]) ** 2


PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "b": jnp.array([0.5, -0.2, 1.0])}


def run(tx, steps=3, standard=False):
    step = jax.jit(lambda p, s: tx.update(p, s, p, obj_fn=objective))
    state, out = tx.init(PARAMS), []
    for _ in range(steps):
        with jax.numpy_dtype_promotion("standard" if standard else "strict"):
            u, state = step(PARAMS, state)
        out.append(u)
    return out, state


@pytest.mark.parametrize("seed", [None, jax.random.PRNGKey(3), jax.random.key(3)])
def test_same_seed_gives_optax_estimates(seed):
    ours, state = run(hutchinson_estimator_diag_hessian(seed))
    theirs, their_state = run(optax.contrib.hutchinson_estimator_diag_hessian(seed), standard=True)
    for a, b in zip(ours, theirs, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, b)
    assert isinstance(state, HutchinsonState) and type(their_state).__name__ == "HutchinsonState"
    assert state.key.dtype == their_state.key.dtype
    key_data = jax.random.key_data
    np.testing.assert_array_equal(key_data(state.key), key_data(their_state.key))


def test_an_int_seed_is_a_raw_key():
    a, _ = run(hutchinson_estimator_diag_hessian(3), steps=1)
    b, _ = run(hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3)), steps=1)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_mean_of_estimates_is_the_exact_diagonal():
    """E[z * Hz] = diag(H); entry i has variance sum_{j != i} H_ij**2 (checked at 5 std)."""
    a = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    h = a @ a.T
    f = lambda p: 0.5 * p @ h @ p
    tx, n = hutchinson_estimator_diag_hessian(), 4000

    def estimate(key):
        u, _ = tx.update(None, HutchinsonState(key), jnp.ones(6), obj_fn=f)
        return u

    samples = jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.PRNGKey(1), n))
    std = np.sqrt((np.sum(np.square(h), axis=1) - np.square(np.diag(h))) / n)
    assert np.all(np.abs(np.mean(samples, axis=0) - np.diag(h)) < 5 * std)
    # and the spread is the predicted one, so the signs really are random
    np.testing.assert_allclose(np.std(samples, axis=0) / np.sqrt(n), std, rtol=0.1)


def test_mixed_dtype_params_keep_their_dtypes():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    f = lambda p: jnp.sum(p["a"].astype(jnp.float32) ** 2) + jnp.sum(p["b"] ** 3)
    tx = hutchinson_estimator_diag_hessian()
    u, _ = tx.update(params, tx.init(params), params, obj_fn=f)
    assert u["a"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
    # z_i**2 = 1: a separable objective's estimate is its exact diagonal.
    np.testing.assert_array_equal(u["a"], 2.0)
    np.testing.assert_array_equal(u["b"], 6.0)


def test_missing_params_or_objective_is_explained():
    tx = hutchinson_estimator_diag_hessian()
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(PARAMS, state, obj_fn=objective)
    with pytest.raises(ValueError, match="obj_fn"):
        tx.update(PARAMS, state, PARAMS)
    with pytest.raises(TypeError, match="random_seed must be"):
        hutchinson_estimator_diag_hessian("0")
