"""Hinge and perceptron losses against Optax, torch.nn.functional.multi_margin_loss and
float64 NumPy formulas."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from optix import losses
from optix.losses import margin

NAMES = ["hinge_loss", "perceptron_loss", "multiclass_hinge_loss", "multiclass_perceptron_loss"]
MULTICLASS = {"multiclass_hinge_loss": 1.0, "multiclass_perceptron_loss": 0.0}  # name -> margin


# Compiled once per shape: most calls use scores [8, 5].
JIT = {name: jax.jit(getattr(losses, name)) for name in NAMES}
GRAD = {name: jax.jit(jax.grad(lambda s, y, f=JIT[name]: jnp.sum(f(s, y)))) for name in NAMES}


def optax_call(name, *args):
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return jax.jit(getattr(optax.losses, name))(*args)


def random_scores(seed, spread=3.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(8, 5)) * spread + shift).astype(np.float32), rng.integers(0, 5, 8)


def np_multiclass(scores, labels, gap):
    """float64 max_k (s[k] - s[y] + gap * [k != y]), row by row."""
    s = np.asarray(scores, np.float64)
    one_hot = np.arange(s.shape[-1]) == np.asarray(labels)[..., None]
    s_label = np.take_along_axis(s, np.asarray(labels)[..., None], -1)
    return np.max(np.where(one_hot, 0.0, s - s_label + gap), axis=-1)


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        ours = inspect.signature(getattr(margin, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert getattr(losses, name) is getattr(margin, name)
        assert "Checked against" in getattr(margin, name).__doc__


# Optax's own cases: scalar and batched, binary and multiclass.


@pytest.mark.parametrize("name, gap", [("hinge_loss", 1.0), ("perceptron_loss", 0.0)])
def test_binary_cases_from_optax(name, gap):
    labels = np.array([1.0, 0.0], np.float32)
    signed = 2 * labels - 1
    scores = np.array([10.0, 20.0], np.float32)
    expected = np.maximum(0, gap - scores * signed)  # [0, 20 + gap]
    np.testing.assert_array_equal(JIT[name](scores[0], signed[0]), expected[0])
    np.testing.assert_array_equal(JIT[name](scores, signed), expected)
    np.testing.assert_array_equal(JIT[name](scores, signed), optax_call(name, scores, signed))
    assert expected[1] > 0


@pytest.mark.parametrize("name", MULTICLASS)
def test_multiclass_cases_from_optax(name):
    scores = np.array([[10.0, 3.0], [11.0, -2.0]], np.float32)
    labels = np.array([1, 0])
    expected = np_multiclass(scores, labels, MULTICLASS[name])  # [8 or 7, 0]
    np.testing.assert_array_equal(JIT[name](scores[0], labels[0]), expected[0])
    np.testing.assert_array_equal(JIT[name](scores, labels), expected)
    np.testing.assert_array_equal(JIT[name](scores, labels), optax_call(name, scores, labels))


def test_perceptron_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="perceptron_loss: targets must have the shape"):
        losses.perceptron_loss(jnp.ones(3), jnp.ones(2))


@pytest.mark.parametrize("name", MULTICLASS)
def test_multiclass_matches_optax_and_float64_on_random_batches(name):
    for seed in range(3):
        scores, labels = random_scores(seed)
        ours = np.asarray(JIT[name](scores, labels))
        exact = np_multiclass(scores, labels, MULTICLASS[name])
        np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ours, optax_call(name, scores, labels), rtol=1e-6, atol=1e-6)
        theirs = jax.grad(lambda s: jnp.sum(optax_call(name, s, labels)))(scores)
        np.testing.assert_allclose(GRAD[name](scores, labels), theirs, atol=1e-6)
    # Leading axes: [2, 4] rows, and labels broadcast against the scores.
    fn = getattr(losses, name)
    np.testing.assert_array_equal(
        fn(scores.reshape(2, 4, 5), labels.reshape(2, 4)), ours.reshape(2, 4)
    )
    np.testing.assert_array_equal(
        fn(scores[:1], labels), JIT[name](np.repeat(scores[:1], 8, 0), labels)
    )


def test_hinge_losses_match_torch_multi_margin_loss():
    """With two classes torch's multi_margin_loss (sum over k != y, divided by the class
    count) has one term: it is half the Crammer-Singer hinge, and half the binary hinge
    of s = x[1] - x[0]."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(8, 2)) * 2).astype(np.float32)
    y = rng.integers(0, 2, size=8)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    theirs = F.multi_margin_loss(xt, torch.tensor(y), reduction="none")
    theirs.sum().backward()
    ours = JIT["multiclass_hinge_loss"](x, y)
    np.testing.assert_allclose(ours, 2 * theirs.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(GRAD["multiclass_hinge_loss"](x, y), 2 * xt.grad.numpy(), atol=1e-6)
    binary = JIT["hinge_loss"](x[:, 1] - x[:, 0], np.float32(2 * y - 1))
    np.testing.assert_allclose(binary, 2 * theirs.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert (ours > 0).any() and (ours == 0).any()


def test_extreme_and_masked_scores():
    """Scores near 1e4 keep their gaps (Optax adds the margin first); -inf classes never
    win; the gradient is finite and zero on them."""
    scores = np.array([[1e4, 1e4 + 0.25, -np.inf, -1e4], [-np.inf, 3.0, -np.inf, 2.5]], np.float32)
    labels = np.array([1, 3])
    for name, gap in MULTICLASS.items():
        np.testing.assert_array_equal(JIT[name](scores, labels), np_multiclass(scores, labels, gap))
        grad = np.asarray(GRAD[name](scores, labels))
        assert np.isfinite(grad).all() and grad[0, 2] == 0 and grad[1, 0] == 0
    np.testing.assert_array_equal(JIT["multiclass_hinge_loss"](scores, labels), [0.75, 1.5])
    # A label outside the classes compares every score with 0, as Optax's one-hot does.
    finite = np.float32([[1.0, -2.0, 0.5]])
    for name in MULTICLASS:
        np.testing.assert_array_equal(
            JIT[name](finite, np.array([5])), optax_call(name, finite, np.array([5]))
        )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_computed_in_float32(dtype):
    scores, labels = random_scores(1, spread=40.0)
    scores = jnp.asarray(scores, dtype)
    for name, gap in MULTICLASS.items():
        out = JIT[name](scores, labels)
        assert out.dtype == dtype
        exact = np_multiclass(np.asarray(scores, np.float64), labels, gap)
        np.testing.assert_array_equal(out, jnp.asarray(exact, dtype))  # rounded once
    t = jnp.asarray(np.sign(np.random.default_rng(1).normal(size=(8, 5))), dtype)
    for name, gap in [("hinge_loss", 1.0), ("perceptron_loss", 0.0)]:
        out = JIT[name](scores, t)
        assert out.dtype == dtype
        exact = np.maximum(0, gap - np.asarray(scores, np.float64) * np.asarray(t, np.float64))
        np.testing.assert_array_equal(out, jnp.asarray(exact, dtype))


def test_float32_is_within_1e6_of_float64():
    s32, labels = random_scores(2, spread=5.0, shift=100.0)
    t = np.sign(np.random.default_rng(2).normal(size=(8, 5))).astype(np.float32)
    ours = {name: JIT[name](s32, labels) for name in MULTICLASS}
    ours_binary = {name: JIT[name](s32 - 100, t) for name in ["hinge_loss", "perceptron_loss"]}
    with jax.enable_x64(True):
        for name, out in ours.items():
            exact = JIT[name](s32.astype(np.float64), labels)
            assert out.dtype == jnp.float32 and exact.dtype == jnp.float64
            np.testing.assert_allclose(out, exact, rtol=1e-6, atol=1e-6)
        for name, out in ours_binary.items():
            exact = JIT[name](s32.astype(np.float64) - 100, t.astype(np.float64))
            np.testing.assert_allclose(out, exact, rtol=1e-6, atol=1e-6)
