"""Sigmoid binary cross entropy and focal loss against Optax, PyTorch and float64 formulas."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special
import torch
import torch.nn.functional as F

from optix import losses
from optix.losses import sigmoid

NAMES = ["sigmoid_binary_cross_entropy", "sigmoid_focal_loss"]
BCE = jax.jit(losses.sigmoid_binary_cross_entropy)
FOCAL = jax.jit(losses.sigmoid_focal_loss)
# Optax's focal-loss cases.
YS = np.array([[2.0, 0.1, -2.0], [0.3, -0.1, 1.2]], np.float32)
TS = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], np.float32)


def logit(p):
    return np.log(p / (1 - p)).astype(np.float32)


def optax_call(name, *args, **kwargs):
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return jax.jit(getattr(optax.losses, name))(*args, **kwargs)


def np_bce(x, y):
    """float64: y * softplus(-x) + (1 - y) * softplus(x)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        ours = inspect.signature(getattr(sigmoid, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert getattr(losses, name) is getattr(sigmoid, name)
        assert name in losses.__all__


@pytest.mark.parametrize(
    ("preds", "labels", "expected"),
    [  # Optax's cases: mean over two elements, one of them with a logit of +-1e9.
        ([-1e9, -1e-9], [1.0, 0.0], 5e8),
        ([-1e9, -1e-9], [0.0, 1.0], 0.3465736),
        ([1e9, 1e-9], [1.0, 0.0], 0.3465736),
        ([1e9, 1e-9], [0.0, 1.0], 5e8),
        ([-1e9, 1e-9], [1.0, 0.0], 5e8),
        ([-1e9, 1e-9], [0.0, 1.0], 0.3465736),
        ([1e9, -1e-9], [1.0, 0.0], 0.3465736),
        ([1e9, -1e-9], [0.0, 1.0], 5e8),
        ([0.0, 0.0], [1.0, 0.0], 0.6931472),
        ([0.0, 0.0], [0.0, 1.0], 0.6931472),
    ],
)
def test_binary_cross_entropy_optax_cases(preds, labels, expected):
    loss = BCE(np.float32(preds), np.float32(labels))
    np.testing.assert_allclose(jnp.mean(loss), expected, rtol=1e-6, atol=1e-6)


def test_binary_cross_entropy_matches_torch_and_optax(x64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5)) * 6
    y = np.where(rng.random((6, 5)) < 0.5, rng.random((6, 5)), rng.integers(2, size=(6, 5)))
    expected = F.binary_cross_entropy_with_logits(
        torch.from_numpy(x), torch.from_numpy(y), reduction="none"
    ).numpy()
    # torch computes max(x, 0) - x * y + log1p(exp(-|x|)): rounding of the size of x.
    np.testing.assert_allclose(BCE(x, y), expected, rtol=1e-12, atol=1e-15 * np.abs(x).max())
    np.testing.assert_allclose(BCE(x, y), optax_call(NAMES[0], x, y), rtol=1e-12)
    np.testing.assert_allclose(BCE(x, y), np_bce(x, y), rtol=1e-12)


def np_focal(x, y, gamma, alpha=None):
    """float64 straight from the paper: ce * (1 - p_t)**gamma, times alpha_t (with
    1 - p = sigmoid(-x), not 1 - sigmoid(x), which would round away small values)."""
    x = np.asarray(x, np.float64)
    loss = np_bce(x, y) * ((1 - y) * scipy.special.expit(x) + y * scipy.special.expit(-x)) ** gamma
    return loss if alpha is None else (alpha * y + (1 - alpha) * (1 - y)) * loss


def test_focal_loss_matches_formula_and_optax(x64):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5)) * 4
    y = np.where(rng.random((4, 5)) < 0.5, rng.random((4, 5)), rng.integers(2, size=(4, 5)))
    for gamma, alpha in ((0.0, None), (0.5, 0.25), (2.0, None), (3.5, 1.0)):
        ours = FOCAL(x, y, alpha=alpha, gamma=gamma)
        np.testing.assert_allclose(ours, np_focal(x, y, gamma, alpha), rtol=1e-12)
        theirs = optax_call(NAMES[1], x, y, alpha=alpha, gamma=gamma)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_focal_loss_optax_cases():
    ce = BCE(YS, TS)
    np.testing.assert_allclose(FOCAL(YS, TS, gamma=0.0), ce, rtol=2e-5)
    p = 1 / (1 + np.exp(-YS))
    p_t = p * TS + (1 - p) * (1 - TS)
    np.testing.assert_allclose(FOCAL(YS, TS, gamma=2.0) / ce, (1 - p_t) ** 2, rtol=2e-5)
    np.testing.assert_allclose(FOCAL(YS, TS, gamma=0.0, alpha=1.0), ce * TS, rtol=2e-5)
    assert np.all(FOCAL(YS, TS, alpha=0.0)[TS == 1] == 0) and np.all(ce[TS == 1] > 0)
    assert np.all(FOCAL(YS, TS, alpha=1.0)[TS == 0] == 0) and np.all(ce[TS == 0] > 0)
    ones = np.ones(4, np.float32)
    for probs, alpha, factor in (
        ([0.9, 0.98, 0.3, 0.99], 0.5, 2.0),
        ([0.1, 0.02, 0.09, 0.15], None, 1.0),
    ):
        x = logit(np.array(probs))
        ratio = BCE(x, ones) / FOCAL(x, ones, gamma=2.0, alpha=alpha)
        expected = factor / (1 - 1 / (1 + np.exp(-x.astype(np.float64)))) ** 2
        np.testing.assert_allclose(ratio, expected, rtol=2e-5)


def test_float32_within_1e6_of_float64():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(8, 16)) * 12).astype(np.float32)
    y = rng.random((8, 16)).astype(np.float32)
    y[:4] = np.round(y[:4])
    for fn, kwargs in ((BCE, {}), (FOCAL, {"gamma": 2.0}), (FOCAL, {"gamma": 0.5, "alpha": 0.3})):
        exact = np_focal(x, y, **kwargs) if kwargs else np_bce(x, y)
        ok = exact > 1e-30  # below that float32 underflows (exactly like any float32 code)
        np.testing.assert_allclose(np.asarray(fn(x, y, **kwargs))[ok], exact[ok], rtol=1e-6)


def test_extreme_and_infinite_logits():
    """Finite losses have finite gradients and Hessians; an infinite logit on the right
    side gives loss 0, on the wrong side +inf (never NaN)."""
    xs = np.float32([np.inf, -np.inf, 1e4, -1e4, 100, -100, 75, -50, 0.5, 0])
    ys = np.float32([0, 0.1, 0.5, 0.9, 1])
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    right_side = ((x == -np.inf) & (y == 0)) | ((x == np.inf) & (y == 1))

    @jax.jit
    def derivatives(x, y, gamma):
        fns = [BCE, lambda a, b: FOCAL(a, b, gamma=gamma, alpha=0.25)]
        return [
            (f(x, y), *jax.vmap(jax.grad(f, (0, 1)))(x, y), jax.vmap(jax.hessian(f))(x, y))
            for f in fns
        ]

    for gamma in (0.0, 0.5, 2.0):
        for value, *derivs in derivatives(x, y, gamma):
            assert not np.any(np.isnan(value))
            finite = np.isfinite(value)
            assert np.array_equal(finite, np.isfinite(x) | right_side)
            for d in derivs:
                assert np.all(np.isfinite(np.asarray(d)[finite]))
    np.testing.assert_array_equal(BCE(np.float32([np.inf, -np.inf]), np.float32([1, 0])), 0)
    np.testing.assert_array_equal(FOCAL(np.float32([np.inf, -np.inf]), np.float32([1, 0])), 0)
    np.testing.assert_allclose(BCE(np.float32([-1e4, 1e4]), np.float32([1, 0])), 1e4)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_computed_in_float32(dtype):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=64) * 4, dtype)
    y = jnp.asarray(rng.random(64), dtype)
    for fn in (BCE, FOCAL):
        out = fn(x, y)
        assert out.dtype == dtype
        np.testing.assert_array_equal(
            out, fn(x.astype(jnp.float32), y.astype(jnp.float32)).astype(dtype)
        )


def test_result_dtypes_match_optax():
    x16, y16 = jnp.asarray(YS, jnp.bfloat16), jnp.asarray(TS, jnp.bfloat16)
    for name in NAMES:
        for x, y in ((x16, TS), (YS, y16), (x16, y16)):
            ours = jax.eval_shape(getattr(losses, name), x, y)
            with jax.numpy_dtype_promotion("standard"):
                theirs = jax.eval_shape(getattr(optax.losses, name), x, y)
            assert ours.dtype == theirs.dtype, name


def test_argument_errors():
    with pytest.raises(TypeError, match=r"sigmoid_binary_cross_entropy: logits must have a float"):
        losses.sigmoid_binary_cross_entropy(np.array([1, 2]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"sigmoid_focal_loss: alpha must be in \[0, 1\], got"):
        losses.sigmoid_focal_loss(YS, TS, alpha=1.5)
