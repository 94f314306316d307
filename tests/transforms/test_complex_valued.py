"""split_real_and_imaginary: a complex parameter is optimized as its two real parts, and
Optax's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.block_rms import scale_by_param_block_rms
from optix.transforms.complex_valued import SplitRealAndImaginaryState, split_real_and_imaginary


def loss_complex(z):
    return jnp.sum(jnp.real(jnp.conj(z) * z) + jnp.real(z) ** 3)


def loss_real(params):
    x, y = params
    return loss_complex(jax.lax.complex(x, y))


def step(loss, tx, params, state):
    loss_value, grads = jax.value_and_grad(loss)(params)
    grads = jax.tree.map(jnp.conj, grads)  # JAX's complex gradient is the conjugate one
    updates, state = jax.jit(tx.update)(grads, state, params)
    return loss_value, grads, optix.apply_updates(params, updates), state


X = jnp.array([[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])
Y = jnp.array([[0.5, -0.5, 0.0], [0.1, 0.3, -0.2]])


@pytest.mark.parametrize(
    "make", [lambda: optix.scale_by_adam(), scale_by_param_block_rms], ids=["adam", "block_rms"]
)
def test_complex_parameter_moves_as_its_real_pair(make):
    tx = make()
    complex_tx = split_real_and_imaginary(tx)
    xy, z = (X, Y), jax.lax.complex(X, Y)
    state, complex_state = tx.init(xy), complex_tx.init(z)
    assert isinstance(complex_state, SplitRealAndImaginaryState)
    for _ in range(3):
        loss, (gx, gy), xy, state = step(loss_real, tx, xy, state)
        loss_z, gz, z, complex_state = step(loss_complex, complex_tx, z, complex_state)
        np.testing.assert_allclose(loss_z, loss, rtol=1e-6)
        np.testing.assert_allclose(gz, jax.lax.complex(gx, gy), rtol=1e-6)
        np.testing.assert_allclose(z, jax.lax.complex(*xy), rtol=1e-6)


def test_matches_optax_and_passes_real_leaves():
    params = {"z": jax.lax.complex(X, Y), "r": X}
    grads = jax.tree.map(lambda p: 0.3 * p + 0.1, params)
    ours = split_real_and_imaginary(optix.scale_by_adam())
    theirs = optax.contrib.split_real_and_imaginary(optax.scale_by_adam())
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        u_ours, s_ours = ours.update(grads, s_ours, params)
        with jax.numpy_dtype_promotion("standard"):
            u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
        # Optax's float32 Adam bias correction is off by ~6e-6 (1 - 0.999 in float32);
        # optix's is exact to float32: the split itself adds no difference.
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5), u_ours, u_theirs)
    assert u_ours["z"].dtype == jnp.complex64 and u_ours["r"].dtype == jnp.float32
    # the inner state holds a (real, imaginary) pair per complex leaf, as Optax's does
    mu = s_ours.inner_state.mu["z"]
    assert type(mu).__name__ == type(s_theirs.inner_state.mu["z"]).__name__
    assert mu._fields == ("real", "imaginary")


def test_extra_arguments_reach_the_inner_transformation():
    seen = {}

    def update(updates, state, params=None, *, value):
        seen["value"] = value
        return updates, state

    tx = split_real_and_imaginary(optix.GradientTransformation(lambda p: (), update))
    z = jax.lax.complex(X, Y)
    out, _ = tx.update(z, tx.init(z), z, value=3.0, other="ignored")
    assert seen == {"value": 3.0}
    np.testing.assert_array_equal(out, z)
