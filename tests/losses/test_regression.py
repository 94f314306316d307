"""Regression losses against Optax, PyTorch, SciPy and float64 NumPy formulas."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.spatial.distance
import torch
import torch.nn.functional as F

from optix import losses
from optix.losses import regression
from tests.losses.compiled import ours, theirs

NAMES = [
    "squared_error",
    "l2_loss",
    "huber_loss",
    "log_cosh",
    "cosine_similarity",
    "cosine_distance",
]
ELEMENTWISE = ["squared_error", "l2_loss", "huber_loss", "log_cosh"]
YS = np.array([-2.0, -1.0, 0.5, 1.0], np.float32)
TS = np.array([-1.5, 0.0, -1.0, 1.0], np.float32)


def np_log_cosh(x):
    """float64 log(cosh(x)) via expm1 (cosh(x) - 1 = expm1(|x|)**2 / (2 exp(|x|)))."""
    a = np.abs(np.asarray(x, np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        near = np.log1p(np.expm1(a) ** 2 / (2 * np.exp(a)))
    return np.where(a < 300, near, a - np.log(2.0))


def np_huber(e, delta):
    return np.where(np.abs(e) <= delta, 0.5 * e**2, delta * (np.abs(e) - 0.5 * delta))


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        mine = inspect.signature(getattr(regression, name)).parameters
        optaxs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in mine.values()] == [
            (p.name, p.kind, p.default) for p in optaxs.values()
        ], name
        assert getattr(losses, name) is getattr(regression, name)


# Optax's own cases: scalar and batched values, shape mismatch.


@pytest.mark.parametrize("name, scale", [("squared_error", 1.0), ("l2_loss", 0.5)])
def test_squared_error_and_l2_values(name, scale):
    fn = ours(name)
    expected = scale * (TS - YS) ** 2
    np.testing.assert_allclose(fn(YS[0], TS[0]), expected[0])
    np.testing.assert_allclose(fn(YS, TS), expected)
    np.testing.assert_allclose(fn(YS), scale * YS**2)  # targets=None means zeros
    np.testing.assert_array_equal(fn(YS, TS), theirs(name, YS, TS))
    with pytest.raises(ValueError, match=rf"{name}: targets must have the shape"):
        getattr(losses, name)(YS, TS[:, None])


def test_mse_matches_torch():
    p, t = np.random.default_rng(0).normal(size=(2, 3, 7))
    mine = ours("squared_error")(np.float32(p), np.float32(t))
    torchs = F.mse_loss(torch.tensor(p), torch.tensor(t), reduction="none").numpy()
    np.testing.assert_allclose(mine, torchs, rtol=2e-6)


def test_huber_values_from_optax():
    ys = np.array([-2.0, 0.5, 0.0, 0.5, 2.0, 4.0, 132.0], np.float32)
    ts = np.array([0.0, -0.5, 0.0, 1.0, 1.0, 2.0, 0.3], np.float32)
    expected = np.array([1.5, 0.5, 0.0, 0.125, 0.5, 1.5, 131.2])
    fn = ours("huber_loss")
    np.testing.assert_allclose(fn(ys[0], ts[0], delta=1.0), expected[0])
    np.testing.assert_allclose(fn(ys, ts, delta=1.0), expected, rtol=1e-6)


def test_huber_matches_torch_huber_and_smooth_l1():
    rng = np.random.default_rng(1)
    p, t = rng.normal(size=(2, 64)) * 3
    value_and_grad = jax.jit(
        jax.vmap(
            jax.value_and_grad(lambda x, y, d: losses.huber_loss(x, y, delta=d)),
            in_axes=(0, 0, None),
        )
    )
    for delta in [0.1, 1.0, 3.5]:
        tp = torch.tensor(p, requires_grad=True)
        torchs = F.huber_loss(tp, torch.tensor(t), delta=delta, reduction="none")
        smooth = F.smooth_l1_loss(torch.tensor(p), torch.tensor(t), beta=delta, reduction="none")
        torchs.sum().backward()
        with jax.enable_x64(True):
            mine, grad = value_and_grad(p, t, delta)
            np.testing.assert_allclose(mine, torchs.detach().numpy(), rtol=1e-14)
            np.testing.assert_allclose(mine / delta, smooth.numpy(), rtol=1e-14)
            np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-14)
            np.testing.assert_allclose(grad, np.clip(p - t, -delta, delta), rtol=1e-14)
            np.testing.assert_allclose(mine, theirs("huber_loss", p, t, delta=delta), rtol=1e-14)


def test_log_cosh_values_from_optax():
    ys = np.array([500, -2.0, -1.0, 0.5, 1.0], np.float32)
    ts = np.array([-200, -1.5, 0.0, -1, 1.0], np.float32)
    expected = [699.3068, 0.12011445, 0.4337809, 0.85544014, 0.0]
    expected_ys_only = [499.30685, 1.3250027, 0.4337809, 0.12011451, 0.43378082]
    fn = ours("log_cosh")
    np.testing.assert_allclose(fn(ys[0], ts[0]), expected[0], atol=1e-5)
    np.testing.assert_allclose(fn(ys, ts), expected, atol=1e-5)
    np.testing.assert_allclose(fn(ys[0]), expected_ys_only[0], atol=1e-5)
    np.testing.assert_allclose(fn(ys), expected_ys_only, atol=1e-5)


def test_log_cosh_is_exact_in_float32_and_stable_far_out():
    x = np.float32([0.0, 1e-15, 1e-6, 1e-3, 0.3, 1.999, 2.0, 2.001, 15.0, 80.0, 1e4, 1e30])
    x = np.concatenate([x, -x])
    values = ours("log_cosh")(x)
    np.testing.assert_allclose(values, np_log_cosh(x), rtol=1e-6)
    # Optax's logaddexp(e, -e) - log(2) keeps no digit of a 1e-4 error's 5e-9.
    assert float(theirs("log_cosh", np.float32(1e-4))) != pytest.approx(5e-9, rel=1e-3)
    grads = jax.jit(jax.vmap(jax.grad(losses.log_cosh)))
    np.testing.assert_allclose(grads(x), np.tanh(x.astype(np.float64)), rtol=1e-6, atol=1e-30)
    second = jax.jit(jax.vmap(jax.grad(jax.grad(losses.log_cosh))))(np.float32([0.0, 0.5, 1e4]))
    np.testing.assert_allclose(second, [1.0, 1 - np.tanh(0.5) ** 2, 0.0], rtol=1e-6)


def test_elementwise_float32_within_1e6_of_float64():
    rng = np.random.default_rng(2)
    p, t = rng.normal(size=(2, 256)) * rng.choice([1e-3, 1.0, 30.0], size=(2, 256))
    p32, t32 = np.float32(p), np.float32(t)
    e = p32.astype(np.float64) - t32.astype(np.float64)
    references = {
        "squared_error": e**2,
        "l2_loss": 0.5 * e**2,
        "huber_loss": np_huber(e, 1.0),
        "log_cosh": np_log_cosh(e),
    }
    for name, reference in references.items():
        with jax.enable_x64(True):
            wide = ours(name)(np.float64(p32), np.float64(t32))
            assert wide.dtype == jnp.float64
        narrow = ours(name)(p32, t32)
        assert narrow.dtype == jnp.float32
        np.testing.assert_allclose(wide, reference, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(narrow, reference, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_keeps_dtype_and_rounds_once(dtype):
    p = jnp.asarray([0.3, -1.7, 4.2, 0.01], dtype)
    t = jnp.asarray([0.1, 0.6, -2.2, 0.0], dtype)
    for name in ELEMENTWISE:
        out = ours(name)(p, t)
        assert out.dtype == dtype
        expected = ours(name)(p.astype(jnp.float32), t.astype(jnp.float32))
        np.testing.assert_array_equal(out, expected.astype(dtype), err_msg=name)
    cys, cts = jnp.asarray(CYS, dtype), jnp.asarray(CTS, dtype)
    out = ours("cosine_similarity")(cys, cts)
    assert out.dtype == dtype
    expected = ours("cosine_similarity")(cys.astype(jnp.float32), cts.astype(jnp.float32))
    np.testing.assert_array_equal(out, expected.astype(dtype))


# Cosine similarity and distance.

CYS = np.array([[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]], np.float32)
CTS = np.array([[0.0, 1.2, 0.2], [1.0, -0.3, 0.0]], np.float32)


def test_cosine_values_from_optax_and_scipy():
    expected = np.array([0.9358251989, 1.0464068465])
    scipy_values = [scipy.spatial.distance.cosine(a, b) for a, b in zip(CYS, CTS, strict=True)]
    np.testing.assert_allclose(scipy_values, expected, rtol=1e-6)
    distance, similarity = ours("cosine_distance"), ours("cosine_similarity")
    np.testing.assert_allclose(distance(CYS[0], CTS[0]), expected[0], rtol=1e-6)
    np.testing.assert_allclose(similarity(CYS[0], CTS[0]), 1 - expected[0], rtol=1e-5)
    np.testing.assert_allclose(distance(CYS, CTS), expected, rtol=1e-6)
    np.testing.assert_allclose(similarity(CYS, CTS), 1 - expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance"])
def test_cosine_where_equals_dropping_entries(name):
    rng = np.random.default_rng(6)
    for size in [5, 10]:
        p, t = rng.normal(size=(2, size))
        mask = rng.integers(2, size=size).astype(bool)
        mask[:2] = True
        with jax.enable_x64(True):
            masked = ours(name)(p, t, where=mask)
            np.testing.assert_allclose(masked, ours(name)(p[mask], t[mask]), rtol=1e-14)
            np.testing.assert_allclose(masked, theirs(name, p, t, where=mask), rtol=1e-14)


def test_cosine_axis_matches_optax_and_moveaxis():
    p, t = np.random.default_rng(3).normal(size=(2, 4, 5, 6))
    with jax.enable_x64(True):
        for axis in [0, 1, 2, (0, 2), None]:
            mine = ours("cosine_similarity")(p, t, axis=axis)
            np.testing.assert_allclose(
                mine, theirs("cosine_similarity", p, t, axis=axis), rtol=1e-13, atol=1e-15
            )
            if isinstance(axis, int):
                moved = ours("cosine_similarity")(
                    np.moveaxis(p, axis, -1), np.moveaxis(t, axis, -1)
                )
                np.testing.assert_allclose(mine, moved, rtol=1e-13, atol=1e-15)


def test_cosine_matches_torch_with_eps():
    """torch's eps floors each norm; optix's (Optax's) epsilon floors each squared norm."""
    rng = np.random.default_rng(4)
    p, t = rng.normal(size=(2, 8, 5)) * rng.choice([0.01, 1.0], size=(2, 8, 1))
    p[0] = 0.0
    for eps in [1e-8, 0.5, 3.0]:
        torchs = F.cosine_similarity(torch.tensor(p), torch.tensor(t), dim=-1, eps=eps).numpy()
        with jax.enable_x64(True):
            mine = ours("cosine_similarity")(p, t, epsilon=eps**2)
        np.testing.assert_allclose(mine, torchs, rtol=1e-12, atol=1e-15)
        narrow = ours("cosine_similarity")(np.float32(p), np.float32(t), epsilon=eps**2)
        np.testing.assert_allclose(narrow, torchs, rtol=1e-6, atol=1e-7)


def test_cosine_extreme_magnitudes_and_zero_vectors():
    direction = np.float32([[3.0, -4.0, 0.0]])
    other = np.float32([[1.0, 1.0, 1.0]])
    reference = (3.0 - 4.0) / (5.0 * np.sqrt(3.0))
    similarity = ours("cosine_similarity")
    scales = np.float32([1e-30, 1e-20, 1.0, 1e20, 1e30])[:, None]
    np.testing.assert_allclose(similarity(direction * scales, other), reference, rtol=1e-6)
    zero = np.zeros((1, 3), np.float32)
    assert np.isnan(similarity(zero, other))  # direction undefined, as in Optax
    assert float(similarity(zero, other, epsilon=1e-12)[0]) == 0.0
    grads = jax.jit(
        jax.grad(lambda a, b, eps: losses.cosine_distance(a, b, epsilon=eps).sum(), (0, 1))
    )
    for a, eps in [(zero, 1e-12), (direction * np.float32(1e30), 0.0)]:
        for g in grads(a, other, eps):
            assert np.all(np.isfinite(g))


def test_cosine_float32_within_1e6_of_float64():
    rng = np.random.default_rng(5)
    p, t = rng.normal(size=(2, 32, 16))
    t = t + 2.0 * p  # similarities away from 0, where a relative bound is meaningful
    p64, t64 = np.float64(np.float32(p)), np.float64(np.float32(t))
    with jax.enable_x64(True):
        wide = np.asarray(ours("cosine_distance")(p64, t64))
    reference = [scipy.spatial.distance.cosine(a, b) for a, b in zip(p64, t64, strict=True)]
    np.testing.assert_allclose(wide, reference, rtol=1e-12)
    narrow = ours("cosine_similarity")(np.float32(p), np.float32(t))
    np.testing.assert_allclose(narrow, 1 - wide, rtol=1e-6)


def test_argument_errors():
    with pytest.raises(TypeError, match="squared_error: predictions must have a floating"):
        losses.squared_error(np.arange(3))
    with pytest.raises(TypeError, match="cosine_distance: targets must have a floating"):
        losses.cosine_distance(YS, np.arange(4))
    with pytest.raises(ValueError, match=r"huber_loss: delta must be finite and >= 0"):
        losses.huber_loss(YS, TS, delta=-1.0)
    with pytest.raises(ValueError, match=r"cosine_similarity: epsilon must be"):
        losses.cosine_similarity(YS, TS, epsilon=-1e-3)
    # Traced hyperparameters pass through.
    np.testing.assert_allclose(
        ours("huber_loss")(YS, TS, delta=0.5), np_huber(np.float64(YS) - TS, 0.5), rtol=1e-6
    )
