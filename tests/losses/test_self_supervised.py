"""NT-Xent and triplet margin losses against Optax, PyTorch and float64 NumPy."""

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
from optix.losses import self_supervised
from tests.losses.compiled import ours, theirs

YS = np.array(
    [[-1.9540, 1.0780], [0.2380, -0.5703], [1.8745, -0.0195], [-0.6719, -1.9210]], np.float32
)
YS_ZERO_ROW = np.concatenate([np.zeros((1, 2), np.float32), YS[1:]])
PAIRS = np.array([0, 0, 1, 1])
TRIPLE = np.array([0, 0, 0, 1])


NTXENT = ours("ntxent")
NTXENT_GRAD = jax.jit(jax.grad(losses.ntxent))
TRIPLET = ours("triplet_margin_loss")


def np_ntxent(embeddings, labels, temperature, eps):
    """float64 transliteration of SimCLR's loss, one positive pair at a time."""
    e = np.asarray(embeddings, np.float64)
    u = e / np.sqrt(np.maximum((e**2).sum(-1, keepdims=True), eps))
    s = u @ u.T / temperature
    terms = []
    for i in range(len(e)):
        negatives = [s[i, k] for k in range(len(e)) if labels[k] != labels[i]]
        for j in range(len(e)):
            if j != i and labels[j] == labels[i]:
                terms.append(scipy.special.logsumexp([s[i, j], *negatives]) - s[i, j])
    return np.mean(terms) if terms else 0.0


def test_signatures_and_exports_match_optax():
    for name in ["ntxent", "triplet_margin_loss"]:
        mine = inspect.signature(getattr(self_supervised, name)).parameters
        optaxs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in mine.values()] == [
            (p.name, p.kind, p.default) for p in optaxs.values()
        ], name
        assert getattr(losses, name) is getattr(self_supervised, name)


def test_ntxent_values_from_optax():
    fn = NTXENT
    np.testing.assert_allclose(fn(YS, PAIRS), 14.01032, atol=1e-4)
    np.testing.assert_allclose(fn(YS, TRIPLE), 8.968544, atol=1e-4)
    np.testing.assert_allclose(fn(YS_ZERO_ROW, PAIRS), 9.2889, atol=1e-4)


@pytest.mark.parametrize("temperature", [0.07, 1.0, 0.005])
def test_ntxent_matches_numpy_and_optax(temperature):
    rng = np.random.default_rng(0)
    e = np.float32(rng.normal(size=(8, 5)))
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    eps = float(np.finfo(np.float32).eps)
    reference = np_ntxent(e, labels, temperature, eps)
    mine = NTXENT(e, labels, temperature)
    np.testing.assert_allclose(mine, reference, rtol=1e-6)
    np.testing.assert_allclose(
        mine, theirs("ntxent", e, jnp.asarray(labels), temperature), rtol=2e-5
    )
    with jax.enable_x64(True):
        # float64 inputs floor norms at float64's epsilon; no row is that small here.
        wide = float(NTXENT(np.float64(e), labels, temperature))
    assert wide == pytest.approx(reference, rel=1e-12)


def test_ntxent_edge_batches_and_gradients():
    g = NTXENT_GRAD(YS_ZERO_ROW, PAIRS)  # a zero embedding: finite loss, finite gradient
    assert np.all(np.isfinite(g))
    same = np.zeros(4, int)  # one class: no negatives, every loss is -log(1) = 0
    assert float(NTXENT(YS, same)) == 0.0
    np.testing.assert_array_equal(NTXENT_GRAD(YS, same), 0.0)
    distinct = np.arange(4)  # no positive pair: 0 (Optax: NaN)
    assert float(NTXENT(YS, distinct)) == 0.0
    assert np.isnan(theirs("ntxent", YS, jnp.asarray(distinct)))
    np.testing.assert_array_equal(NTXENT_GRAD(YS, distinct), 0.0)
    # One sample: nothing to compare.
    assert float(NTXENT(YS[:1], PAIRS[:1])) == 0.0
    # Large embeddings keep their direction.
    np.testing.assert_allclose(NTXENT(YS * np.float32(1e25), PAIRS), NTXENT(YS, PAIRS), rtol=1e-6)


def test_ntxent_gradient_matches_numpy_finite_differences():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(6, 3))
    labels = np.array([0, 0, 1, 1, 2, 2])
    with jax.enable_x64(True):
        g = np.asarray(NTXENT_GRAD(e, labels, 0.5))
    h = 1e-6
    eps = float(np.finfo(np.float64).eps)
    for i, j in [(0, 0), (3, 1), (5, 2)]:
        step = np.zeros_like(e)
        step[i, j] = h
        numeric = np_ntxent(e + step, labels, 0.5, eps) - np_ntxent(e - step, labels, 0.5, eps)
        assert g[i, j] == pytest.approx(numeric / (2 * h), rel=1e-6, abs=1e-9)


def test_ntxent_low_precision_and_errors():
    out = NTXENT(jnp.bfloat16(YS), PAIRS)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.float32(out), 14.01032, rtol=2e-2)
    with pytest.raises(ValueError, match="ntxent: labels must have the leading dimension"):
        losses.ntxent(YS, PAIRS[:3])
    with pytest.raises(ValueError, match="ntxent: temperature must be > 0"):
        losses.ntxent(YS, PAIRS, temperature=0.0)
    with pytest.raises(TypeError, match="ntxent: embeddings must have a floating dtype"):
        losses.ntxent(np.arange(8).reshape(4, 2), PAIRS)


# Triplet margin loss.

ONES, ZEROS, TWOS = np.ones((2, 2)), np.zeros((2, 2)), 2 * np.ones((2, 2))


@pytest.mark.parametrize("anchor, positive", [(ONES, ZEROS), (ZEROS, ONES)])
def test_triplet_values_from_optax(anchor, positive):
    def handmade(a, p, n, margin=1.0, eps=1e-6):
        ap = np.sqrt(np.sum((a - p) ** 2, -1) + eps)
        an = np.sqrt(np.sum((a - n) ** 2, -1) + eps)
        return np.maximum(ap - an + margin, 0)

    mine = TRIPLET(anchor, positive, TWOS)
    np.testing.assert_allclose(mine, handmade(anchor, positive, TWOS), rtol=1e-6)
    np.testing.assert_allclose(
        mine, theirs("triplet_margin_loss", anchor, positive, TWOS), rtol=1e-6
    )


def test_triplet_vmap_and_axis():
    single = TRIPLET(ONES, ZEROS, TWOS)
    batched = jax.jit(jax.vmap(losses.triplet_margin_loss))(ONES[None], ZEROS[None], TWOS[None])
    np.testing.assert_allclose(batched.ravel(), single.ravel(), rtol=1e-6)
    rng = np.random.default_rng(2)
    a, p, n = np.float32(rng.normal(size=(3, 4, 6)))
    np.testing.assert_allclose(TRIPLET(a, p, n, axis=0), TRIPLET(a.T, p.T, n.T), rtol=1e-6)


@pytest.mark.parametrize("norm_degree, margin", [(1, 0.5), (2, 2.0), (3, 0.5), (1.5, 2.0)])
def test_triplet_matches_torch(norm_degree, margin):
    """At eps = 0 (torch adds eps to differences, Optax and optix inside the root)."""
    rng = np.random.default_rng(3)
    a, p, n = rng.normal(size=(3, 16, 5))
    p[0] = a[0]  # zero distance: torch's subgradient 0
    ta = torch.tensor(a, requires_grad=True)
    torchs = F.triplet_margin_loss(
        ta,
        torch.tensor(p),
        torch.tensor(n),
        margin=margin,
        p=norm_degree,
        eps=0.0,
        reduction="none",
    )
    torchs.sum().backward()
    torchs = torchs.detach().numpy()

    def loss(x, p, n):
        return losses.triplet_margin_loss(x, p, n, norm_degree=norm_degree, margin=margin, eps=0)

    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(loss)))
    with jax.enable_x64(True):
        mine, g = value_and_grad(a, p, n)
        np.testing.assert_allclose(mine, torchs, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g, ta.grad.numpy(), rtol=1e-12, atol=1e-14)
    narrow, _ = value_and_grad(*(np.float32(x) for x in (a, p, n)))
    np.testing.assert_allclose(narrow, torchs, rtol=1e-5, atol=1e-6)


def test_triplet_matches_optax_with_eps_and_even_degree():
    rng = np.random.default_rng(4)
    a, p, n = rng.normal(size=(3, 16, 5))
    for kwargs in [{}, {"norm_degree": 4, "eps": 1e-3, "margin": 3.0}]:
        with jax.enable_x64(True):
            np.testing.assert_allclose(
                TRIPLET(a, p, n, **kwargs),
                theirs("triplet_margin_loss", a, p, n, **kwargs),
                rtol=1e-13,
            )


def test_triplet_extreme_magnitudes_and_precision():
    rng = np.random.default_rng(5)
    a, p, n = rng.normal(size=(3, 32, 8))

    def loss(a, p, n, margin):
        return losses.triplet_margin_loss(a, p, n, margin=margin, eps=0.0)

    loss_jit = jax.jit(loss)
    grad_jit = jax.jit(jax.grad(lambda *xs: loss(*xs).sum()))
    with jax.enable_x64(True):
        wide = np.asarray(loss_jit(a, p, n, 10.0))
    a32, p32, n32 = np.float32(a), np.float32(p), np.float32(n)
    np.testing.assert_allclose(loss_jit(a32, p32, n32, 10.0), wide, rtol=1e-6)
    for scale in [1e-25, 1e25]:
        s = np.float32(scale)
        out = loss_jit(a32 * s, p32 * s, n32 * s, 10.0 * s)
        np.testing.assert_allclose(out / s, wide, rtol=1e-5)
        assert np.all(np.isfinite(grad_jit(a32 * s, p32 * s, n32 * s, 1.0 * s)))
    out = TRIPLET(jnp.bfloat16(a), jnp.bfloat16(p), jnp.bfloat16(n))
    assert out.dtype == jnp.bfloat16


def test_triplet_argument_errors():
    with pytest.raises(ValueError, match="triplet_margin_loss: norm_degree must be > 0"):
        losses.triplet_margin_loss(ONES, ZEROS, TWOS, norm_degree=0)
    with pytest.raises(ValueError, match="triplet_margin_loss: eps must be finite and >= 0"):
        losses.triplet_margin_loss(ONES, ZEROS, TWOS, eps=-1.0)
    with pytest.raises(TypeError, match="triplet_margin_loss: negatives must have a floating"):
        losses.triplet_margin_loss(ONES, ZEROS, np.ones((2, 2), int))
