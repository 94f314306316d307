"""Sparsemax losses against Optax, jax.nn.sparse_plus and the float64 closed form of
Martins & Astudillo (2016)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix import losses
from optix.losses import sparsemax

NAMES = ["sparsemax_loss", "multiclass_sparsemax_loss"]
# Compiled once per shape; most tests use scores [8, 6].
BINARY = jax.jit(losses.sparsemax_loss)
BINARY_GRAD = jax.jit(jax.grad(lambda x, y: jnp.sum(losses.sparsemax_loss(x, y))))
MULTI = jax.jit(losses.multiclass_sparsemax_loss)
MULTI_GRAD = jax.jit(jax.grad(lambda s, y: jnp.sum(losses.multiclass_sparsemax_loss(s, y))))


def optax_call(name, *args):
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return jax.jit(getattr(optax.losses, name))(*args)


def np_sparsemax(z):
    """float64 sparsemax of one vector, by sorting (Martins & Astudillo, Algorithm 1)."""
    z = np.asarray(z, np.float64)
    u = np.sort(z[np.isfinite(z)])[::-1]
    k = np.arange(1, u.size + 1)
    support = 1 + k * u > np.cumsum(u)
    rho = k[support][-1]
    tau = (np.cumsum(u)[rho - 1] - 1) / rho
    return np.maximum(z - tau, 0), tau


def np_loss(z, y):
    """float64 loss, the paper's Eq. (16): -z[y] + (sum_{j in S} z_j**2 - tau**2) / 2 + 1/2."""
    z = np.asarray(z, np.float64)
    p, tau = np_sparsemax(z)
    support = p > 0
    return -z[y] + 0.5 * np.sum(z[support] ** 2 - tau**2) + 0.5


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        ours = inspect.signature(getattr(sparsemax, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert getattr(losses, name) is getattr(sparsemax, name)
        assert "Checked against" in getattr(sparsemax, name).__doc__


# Optax's own cases: binary (scalar, batched), multiclass zero loss and gradient.


def np_binary(label, logit):
    z = -(2 * label - 1) * logit
    return 0.0 if z <= -1 else z if z >= 1 else (z + 1) ** 2 / 4


def test_binary_cases_from_optax():
    labels, logits = np.array([1, 0]), np.array([10.0, 20.0], np.float32)
    np.testing.assert_allclose(BINARY(logits[0], labels[0]), np_binary(1, 10.0))
    np.testing.assert_allclose(BINARY(logits, labels), [np_binary(1, 10.0), np_binary(0, 20.0)])
    np.testing.assert_array_equal(BINARY(logits, labels), [0.0, 20.0])


def test_binary_is_sparse_plus_with_sparse_sigmoid_gradient():
    x = np.linspace(-3, 3, 61, dtype=np.float32)
    for label in (0, 1):
        y = np.full_like(x, label)
        ours = BINARY(x, y)
        np.testing.assert_allclose(ours, [np_binary(label, v) for v in x], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(ours, optax_call("sparsemax_loss", x, y))
        np.testing.assert_allclose(BINARY_GRAD(x, y), jax.nn.sparse_sigmoid(x) - y, atol=1e-7)
    # Infinite logits: finite loss where it should be, finite derivatives everywhere.
    x = np.float32([np.inf, -np.inf, 1e30, -1e30])
    y = np.float32([1, 0, 1, 1])
    np.testing.assert_array_equal(BINARY(x, y), np.float32([0, 0, 0, 1e30]))
    np.testing.assert_array_equal(BINARY_GRAD(x, y), [0, 0, 0, -1])


def test_multiclass_zero_loss_and_gradient_from_optax():
    labels = np.array([1, 0, 2])
    scores = np.float32([[0.0, 1e5, 0.0], [1e5, 0.0, 0.0], [0.0, 0.0, 1e5]])
    np.testing.assert_array_equal(MULTI(scores, labels), [0.0, 0.0, 0.0])
    with jax.numpy_dtype_promotion("standard"):
        p = jax.vmap(optax.projections.projection_simplex)(scores)
    np.testing.assert_allclose(MULTI_GRAD(scores, labels), p - jax.nn.one_hot(labels, 3), atol=1e-7)


def random_scores(seed, spread=2.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(8, 6)) * spread).astype(np.float32), rng.integers(0, 6, size=8)


def test_multiclass_matches_optax_and_the_closed_form():
    for seed in range(4):
        scores, labels = random_scores(seed)
        ours = MULTI(scores, labels)
        exact = [np_loss(s, y) for s, y in zip(scores, labels, strict=True)]
        np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(
            ours, optax_call("multiclass_sparsemax_loss", scores, labels), rtol=1e-5, atol=1e-6
        )
        p = np.stack([np_sparsemax(s)[0] for s in scores])
        np.testing.assert_allclose(MULTI_GRAD(scores, labels), p - np.eye(6)[labels], atol=1e-6)
        assert (ours >= 0).all() and (np.asarray(ours) > 0.01).mean() > 0.5


def test_multiclass_batch_axes_and_broadcast():
    scores, labels = random_scores(1)
    ours = losses.multiclass_sparsemax_loss(scores.reshape(2, 4, 6), labels.reshape(2, 4))
    assert ours.shape == (2, 4)
    np.testing.assert_array_equal(ours.reshape(8), MULTI(scores, labels))
    np.testing.assert_array_equal(MULTI(scores[3], labels[3]), ours[0, 3])
    same = np.broadcast_to(scores[0], (8, 6))  # one score vector, eight labels
    np.testing.assert_array_equal(
        losses.multiclass_sparsemax_loss(scores[:1], labels), MULTI(same, labels)
    )


def test_masked_and_shifted_scores():
    """-inf classes drop out (the closed form on the other classes, zero gradient
    there); a shift by 1e4 changes nothing; a label on a masked class costs inf."""
    scores, labels = random_scores(2)
    scores[:, [1, 4]] = -np.inf
    labels = np.where(np.isin(labels, [1, 4]), labels + 1, labels)
    keep = [0, 2, 3, 5]
    rank = {k: i for i, k in enumerate(keep)}
    exact = [np_loss(s[keep], rank[y]) for s, y in zip(scores, labels, strict=True)]
    np.testing.assert_allclose(MULTI(scores, labels), exact, rtol=1e-6, atol=1e-7)
    grad = MULTI_GRAD(scores, labels)
    assert np.isfinite(grad).all() and (grad[:, [1, 4]] == 0).all()
    shifted = MULTI(scores + np.float32(1e4), labels)
    np.testing.assert_allclose(shifted, exact, atol=2e-3)  # 1e4's float32 spacing is 1e-3
    labels[0] = 1
    assert MULTI(scores, labels)[0] == np.inf


def test_near_one_hot_has_no_cancellation():
    """p close to e_y: the loss is ~eps**2; computed as <p, s - s_y> + (1 - |p|**2) / 2 in
    float32 (Optax) it loses digits (1e-2 relative at eps = 1e-3); here it keeps float64's."""
    eps = np.float32([1e-2, 1e-3, 3e-4])
    scores = np.stack([np.zeros(3, np.float32), 2 * eps - 1], axis=1)  # p = [1 - eps, eps]
    labels = np.zeros(3, int)
    ours = MULTI(scores, labels)
    with jax.enable_x64(True):
        exact = np.asarray(MULTI(scores.astype(np.float64), labels))
    np.testing.assert_allclose(exact, [np_loss(s, 0) for s in scores], rtol=1e-9)
    np.testing.assert_allclose(ours, exact, rtol=1e-6)


def test_float32_is_within_1e6_of_float64():
    for seed in range(4):
        s32, labels = random_scores(10 + seed, spread=3.0)
        ours, ours_binary = MULTI(s32, labels), BINARY(s32 / 2, labels[:, None] % 2)
        with jax.enable_x64(True):
            exact = MULTI(s32.astype(np.float64), labels)
            exact_binary = BINARY(s32.astype(np.float64) / 2, labels[:, None] % 2)
            assert exact.dtype == jnp.float64
        assert ours.dtype == jnp.float32
        np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ours_binary, exact_binary, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_computed_in_float32(dtype):
    scores, labels = random_scores(4)
    half = jnp.asarray(scores, dtype)
    out = MULTI(half, labels)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, MULTI(half.astype(jnp.float32), labels).astype(dtype))
    out = BINARY(half, labels[:, None] % 2)
    assert out.dtype == dtype
    wide = BINARY(half.astype(jnp.float32), labels[:, None] % 2)
    np.testing.assert_array_equal(out, wide.astype(dtype))
