"""make_fenchel_young_loss against Optax, SciPy's logsumexp and optix's own closed-form
losses (perceptron, sparsemax) that are Fenchel-Young losses."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special
from jax.scipy.special import logsumexp

from optix import losses
from optix.losses import fenchel_young

RNG = np.random.default_rng(0)
THETA_TRUE = RNG.uniform(size=(8, 5)).astype(np.float32)
THETA = RNG.uniform(size=(8, 5)).astype(np.float32)
FY_LSE = jax.jit(losses.make_fenchel_young_loss(logsumexp))


def test_signature_and_export_match_optax():
    ours = inspect.signature(fenchel_young.make_fenchel_young_loss).parameters
    theirs = inspect.signature(optax.losses.make_fenchel_young_loss).parameters
    assert list(ours) == list(theirs) == ["max_fun"]
    assert losses.make_fenchel_young_loss is fenchel_young.make_fenchel_young_loss
    assert "Checked against" in fenchel_young.make_fenchel_young_loss.__doc__


def test_logsumexp_case_from_optax():
    """Gradient softmax(theta) - y; with one-hot y the loss is the softmax cross entropy;
    vmapped and batched calls agree."""
    y_true = jax.nn.softmax(THETA_TRUE)
    grad = jax.vmap(jax.grad(FY_LSE))(THETA, y_true)
    np.testing.assert_allclose(grad, jax.nn.softmax(THETA) - y_true, atol=1e-7)
    labels = np.argmax(THETA_TRUE, axis=-1)
    one_hot = np.eye(5, dtype=np.float32)[labels]
    loss = jax.vmap(FY_LSE)(THETA, one_hot)
    exact = scipy.special.logsumexp(THETA.astype(np.float64), axis=-1) - THETA[np.arange(8), labels]
    np.testing.assert_allclose(loss, exact, rtol=1e-6)
    np.testing.assert_array_equal(FY_LSE(THETA, one_hot), loss)
    theirs = optax.losses.make_fenchel_young_loss(logsumexp)(THETA, one_hot)
    np.testing.assert_allclose(loss, theirs, rtol=1e-6)


def test_is_perceptron_and_sparsemax_loss_for_their_max_functions():
    labels = np.argmax(THETA_TRUE, axis=-1)
    one_hot = np.eye(5, dtype=np.float32)[labels]
    fy_max = losses.make_fenchel_young_loss(jnp.max)
    perceptron = losses.multiclass_perceptron_loss(THETA, labels)
    np.testing.assert_allclose(fy_max(THETA, one_hot), perceptron, atol=1e-7)

    def gini_conjugate(s):  # max_{p in simplex} <p, s> - (|p|**2 - 1) / 2
        p = optax.projections.projection_simplex(s)
        return jnp.dot(p, s) + (1 - jnp.dot(p, p)) / 2

    with jax.numpy_dtype_promotion("standard"):
        fy_gini = jax.jit(losses.make_fenchel_young_loss(gini_conjugate))(THETA * 3, one_hot)
    np.testing.assert_allclose(
        fy_gini, losses.multiclass_sparsemax_loss(THETA * 3, labels), rtol=1e-5, atol=1e-6
    )


def test_extra_arguments_reach_max_fun():
    def scaled_lse(s, gamma, *, shift=0.0):  # gamma * logsumexp(s / gamma) + shift
        return gamma * logsumexp(s / gamma) + shift

    y = np.eye(5, dtype=np.float32)[np.arange(8) % 5]
    fy = losses.make_fenchel_young_loss(scaled_lse)
    out = fy(THETA, y, 0.5, shift=2.0)
    exact = 0.5 * scipy.special.logsumexp(THETA / 0.5, axis=-1) + 2.0 - np.sum(THETA * y, -1)
    np.testing.assert_allclose(out, exact, rtol=1e-6)
    # Optax's jnp.vectorize drops keyword arguments and refuses positional ones.
    theirs = optax.losses.make_fenchel_young_loss(lambda s: scaled_lse(s, 0.5, shift=2.0))
    np.testing.assert_allclose(out, theirs(THETA, y), rtol=1e-6)


def test_masked_classes_and_batch_broadcast():
    """A target of 0 on a -inf score adds 0 (Optax's vdot can give NaN); the gradient is
    finite; one score vector against a batch of targets broadcasts."""
    scores = THETA.copy()
    scores[:, 0] = -np.inf
    y = np.eye(5, dtype=np.float32)[1 + np.arange(8) % 4]
    value, grad = jax.value_and_grad(lambda s: jnp.sum(FY_LSE(s, y)))(scores)
    exact = scipy.special.logsumexp(scores[:, 1:], axis=-1) - np.sum(scores[:, 1:] * y[:, 1:], -1)
    np.testing.assert_allclose(value, exact.sum(), rtol=1e-6)
    assert np.isfinite(grad).all() and (grad[:, 0] == 0).all()
    with jax.numpy_rank_promotion("allow"):
        batch = FY_LSE(THETA[0], y)
    assert batch.shape == (8,)
    np.testing.assert_allclose(batch, FY_LSE(np.broadcast_to(THETA[0], (8, 5)), y), rtol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_inner_product_in_float32(dtype):
    s = jnp.asarray(RNG.normal(size=(4, 64)) * 30, dtype)
    y = jnp.asarray(RNG.dirichlet(np.ones(64), size=4), dtype)
    out = FY_LSE(s, y)
    assert out.dtype == dtype
    wide = logsumexp(s, axis=-1).astype(jnp.float32) - jnp.sum(
        s.astype(jnp.float32) * y.astype(jnp.float32), -1
    )
    np.testing.assert_array_equal(out, wide.astype(dtype))


def test_float32_is_within_1e6_of_float64(x64):
    s = RNG.normal(size=(16, 9)) * 4
    y = RNG.dirichlet(np.ones(9), size=16)
    ours = FY_LSE(jnp.asarray(s, jnp.float32), jnp.asarray(y, jnp.float32))
    exact = FY_LSE(
        jnp.asarray(s, jnp.float32).astype(jnp.float64),
        jnp.asarray(y, jnp.float32).astype(jnp.float64),
    )
    assert ours.dtype == jnp.float32 and exact.dtype == jnp.float64
    np.testing.assert_allclose(ours, exact, rtol=1e-6)
