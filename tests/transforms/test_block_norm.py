"""scale_by_param_block_norm against optax.scale_by_param_block_norm and NumPy's norm."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.core import EmptyState
from optix.transforms.block_norm import scale_by_param_block_norm

PARAMS = {
    "w": np.asarray([[1.0, -2.0, 0.5], [0.5, 3.0, -0.1]]),
    "c": np.arange(24.0).reshape(2, 3, 4) / 10 - 1,
    "b": np.asarray([1e-5, -2e-5]),
    "s": np.asarray(0.0),
}
UPDATES = {
    "w": np.asarray([[4.0, -1.0, 2.0], [0.0, 3.0, 1.0]]),
    "c": np.ones((2, 3, 4)),
    "b": np.asarray([0.1, -0.2]),
    "s": np.asarray(-7.0),
}


@pytest.mark.parametrize("min_scale", [1e-3, 0.5, 0.0])
def test_matches_optax_and_numpy(min_scale, x64):
    params, updates = jax.tree.map(jnp.asarray, (PARAMS, UPDATES))
    tx, reference = scale_by_param_block_norm(min_scale), optax.scale_by_param_block_norm(min_scale)
    actual, state = jax.jit(tx.update)(updates, tx.init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = reference.update(updates, reference.init(params), params)
    for k, p in PARAMS.items():
        factor = max(np.linalg.norm(p.ravel()), min_scale)
        np.testing.assert_allclose(actual[k], UPDATES[k] * factor, rtol=1e-14)
        np.testing.assert_allclose(actual[k], expected[k], rtol=1e-14)
    assert state == tx.init(params) == EmptyState()


def test_low_precision_updates_keep_their_dtype_and_the_factor_is_float32():
    params = {"w": jnp.full((4,), 300.0, jnp.bfloat16)}
    updates = {"w": jnp.ones(4, jnp.bfloat16)}
    out, _ = scale_by_param_block_norm().update(updates, None, params)
    assert out["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(out["w"], np.full(4, 600.0, np.float32))


def test_gradient_is_finite_at_zero_params():
    def scaled(p):
        out, _ = scale_by_param_block_norm(0.0).update({"w": jnp.ones(3)}, None, {"w": p})
        return jnp.sum(out["w"])

    np.testing.assert_array_equal(jax.grad(scaled)(jnp.zeros(3)), np.zeros(3))
    p = jnp.asarray([3.0, 4.0, 0.0])
    np.testing.assert_allclose(jax.grad(scaled)(p), 3 * p / 5, rtol=1e-6)


def test_complex_updates_are_scaled_by_the_modulus_norm():
    params = {"z": jnp.asarray([3 + 4j, 0j], jnp.complex64)}
    updates = {"z": jnp.asarray([1 - 1j, 2j], jnp.complex64)}
    out, _ = scale_by_param_block_norm().update(updates, None, params)
    assert out["z"].dtype == jnp.complex64
    np.testing.assert_allclose(out["z"], 5 * np.asarray(updates["z"]), rtol=1e-6)


def test_needs_params_and_checks_min_scale():
    with pytest.raises(ValueError, match="scale_by_param_block_norm"):
        scale_by_param_block_norm().update({"w": jnp.ones(2)}, None)
    with pytest.raises(ValueError, match=r"scale_by_param_block_norm: min_scale must be"):
        scale_by_param_block_norm(-1.0)
