"""KL divergences against Optax, PyTorch, SciPy and float64 formulas."""

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
from optix.losses import divergences

NAMES = [
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "generalized_kl_divergence",
    "convex_kl_divergence",
]
KL = jax.jit(losses.kl_divergence, static_argnames="axis")
KL_LOG = jax.jit(losses.kl_divergence_with_log_targets, static_argnames="axis")
GKL = jax.jit(losses.generalized_kl_divergence, static_argnames="axis")
FNS = {
    "kl_divergence": KL,
    "kl_divergence_with_log_targets": KL_LOG,
    "generalized_kl_divergence": GKL,
}
# Optax's cases: log-probabilities of P, probabilities of Q, KL(Q || P) per row.
LOG_PS = np.array(
    [
        [-2.9957, -3.5066, -3.9120, -1.2040, -0.6931, -2.3026],
        [-1.6094, -1.6094, -1.6094, -2.3026, -1.8971, -1.8971],
    ]
)
QS = np.array([[0.2, 0.2, 0.2, 0.1, 0.15, 0.15], [0.05, 0.03, 0.02, 0.3, 0.5, 0.0]])


def optax_call(name, *args, **kwargs):
    static = ("axis",) if "axis" in kwargs else ()
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return jax.jit(getattr(optax.losses, name), static_argnames=static)(*args, **kwargs)


def targets_for(name, q):
    """The targets as ``name`` takes them: log-probabilities (log 0 = -inf) or not."""
    with np.errstate(divide="ignore"):
        return np.log(q) if name == "kl_divergence_with_log_targets" else q


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        ours = inspect.signature(getattr(divergences, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert getattr(losses, name) is getattr(divergences, name)
        assert name in losses.__all__


def test_optax_values():
    np.testing.assert_allclose(KL(LOG_PS[0], QS[0]), 0.8875577, atol=1e-4)
    np.testing.assert_allclose(KL(LOG_PS, QS), [0.8875577, 0.7592807], atol=1e-4)
    np.testing.assert_allclose(KL_LOG(LOG_PS[0], LOG_PS[1]), 0.8875625, atol=1e-4)
    np.testing.assert_allclose(KL_LOG(LOG_PS, LOG_PS[::-1]), [0.8875625, 0.7187436], atol=1e-4)
    # The generalized divergence of distributions summing to ~1 is the divergence plus
    # sum(p) - sum(q).
    shift = np.exp(LOG_PS).sum(-1) - QS.sum(-1)
    np.testing.assert_allclose(GKL(LOG_PS, QS), KL(LOG_PS, QS) + shift, rtol=1e-6)


def test_convex_kl_divergence_is_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="use generalized_kl_divergence"):
        x = losses.convex_kl_divergence(LOG_PS[0], QS[0])
    np.testing.assert_allclose(x, GKL(LOG_PS[0], QS[0]), rtol=1e-7)


@pytest.mark.parametrize("name", list(FNS))
def test_where_equals_dropping_entries_and_axis_equals_moving_it_last(name):
    rng = np.random.default_rng(0)
    fn = FNS[name]
    x = rng.normal(size=10).astype(np.float32)
    q = targets_for(name, rng.dirichlet(np.ones(10))).astype(np.float32)
    keep = rng.integers(2, size=10).astype(bool)
    np.testing.assert_allclose(fn(x, q, where=keep), fn(x[keep], q[keep]), rtol=1e-6)
    x = rng.normal(size=(4, 5, 6)).astype(np.float32)
    q = targets_for(name, rng.dirichlet(np.ones(5), size=(4, 6))).astype(np.float32)
    q = np.moveaxis(q, -1, 1)
    np.testing.assert_allclose(
        fn(x, q, axis=1), fn(np.moveaxis(x, 1, -1), np.moveaxis(q, 1, -1)), rtol=1e-6
    )


def test_float64_matches_torch_scipy_and_optax(x64):
    rng = np.random.default_rng(1)
    log_p = scipy.special.log_softmax(rng.normal(size=(5, 7)) * 2, -1)
    q = rng.dirichlet(np.ones(7), size=5)
    q[0, :3] = 0.0  # 0 log 0 = 0
    tp, tq = torch.from_numpy(log_p), torch.from_numpy(q)
    kl = KL(log_p, q)
    np.testing.assert_allclose(kl, F.kl_div(tp, tq, reduction="none").sum(-1), rtol=1e-12)
    np.testing.assert_allclose(kl, scipy.special.rel_entr(q, np.exp(log_p)).sum(-1), rtol=1e-12)
    log_q = np.log(q[1:])
    np.testing.assert_allclose(
        KL_LOG(log_p[1:], log_q),
        F.kl_div(tp[1:], torch.from_numpy(log_q), reduction="none", log_target=True).sum(-1),
        rtol=1e-12,
    )
    unnormalized = q * rng.uniform(0.5, 2.0, size=q.shape)
    np.testing.assert_allclose(
        GKL(log_p, unnormalized),
        scipy.special.kl_div(unnormalized, np.exp(log_p)).sum(-1),
        rtol=1e-12,
    )
    keep = rng.random((5, 7)) < 0.7
    for name, fn in FNS.items():
        t = targets_for(name, q[1:])
        for kwargs in ({}, {"where": keep[1:]}, {"axis": None}):
            theirs = optax_call(name, log_p[1:], t, **kwargs)
            np.testing.assert_allclose(fn(log_p[1:], t, **kwargs), theirs, rtol=1e-12)


def test_gradients(x64):
    """d/dlog_p = -q (KL) and p - q (generalized); d/dq = log(q) - log_p (+ 1 for KL)."""
    rng = np.random.default_rng(2)
    log_p = np.log(rng.dirichlet(np.ones(6), size=3))
    q = rng.dirichlet(np.ones(6), size=3) * 1.5
    grad = jax.jit(jax.grad(lambda a, b, f: f(a, b).sum(), (0, 1)), static_argnums=2)
    g_p, g_q = grad(log_p, q, losses.kl_divergence)
    np.testing.assert_allclose(g_p, -q, rtol=1e-14)
    np.testing.assert_allclose(g_q, np.log(q) - log_p + 1, rtol=1e-12)
    g_p, g_q = grad(log_p, q, losses.generalized_kl_divergence)
    np.testing.assert_allclose(g_p, np.exp(log_p) - q, rtol=1e-12)
    np.testing.assert_allclose(g_q, np.log(q) - log_p, rtol=1e-12)
    g_p, g_q = grad(log_p, np.log(q), losses.kl_divergence_with_log_targets)
    np.testing.assert_allclose(g_p, -q, rtol=1e-14)
    np.testing.assert_allclose(g_q, q * (np.log(q) - log_p + 1), rtol=1e-12)


def test_zero_targets_and_masked_predictions_are_finite():
    """A target of 0 against a log-prediction of -inf contributes 0, with finite
    derivatives; a positive target there gives +inf."""
    log_p = np.float32([[-np.inf, -0.1, -2.4], [-np.inf, -1e4, 0.0]])
    q = np.float32([[0.0, 0.6, 0.4], [0.0, 0.0, 1.0]])
    q64, lp64 = q[0, 1:].astype(np.float64), log_p[0, 1:].astype(np.float64)
    expected = [np.sum(q64 * (np.log(q64) - lp64)), 0.0]
    keep = np.isfinite(log_p)
    for name, fn in FNS.items():
        t = targets_for(name, q)
        for kwargs in ({}, {"where": keep}):
            value = fn(log_p, t, **kwargs)
            if name != "generalized_kl_divergence":
                np.testing.assert_allclose(value, expected, rtol=1e-6)
            grads = jax.grad(lambda a, b, f=fn, k=kwargs: f(a, b, **k).sum(), (0, 1))(log_p, t)
            for grad in (value, *grads):
                assert np.all(np.isfinite(grad)), (name, grad)
        assert fn(log_p[0], targets_for(name, np.float32([0.5, 0.5, 0.0]))) == np.inf


def test_float32_within_1e6_of_float64():
    rng = np.random.default_rng(3)
    log_p = scipy.special.log_softmax(rng.normal(size=(16, 12)) * 4, -1)
    q = rng.dirichlet(np.ones(12) * 0.5, size=16)
    for name, fn in FNS.items():
        t = targets_for(name, q)
        with jax.enable_x64(True):
            exact = np.asarray(fn(log_p, t))
        np.testing.assert_allclose(
            fn(log_p.astype(np.float32), t.astype(np.float32)), exact, rtol=1e-6, err_msg=name
        )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_reduced_in_float32(dtype):
    rng = np.random.default_rng(4)
    log_p = jnp.asarray(scipy.special.log_softmax(rng.normal(size=(4, 300)), -1), dtype)
    q = rng.dirichlet(np.ones(300), size=4)
    for name, fn in FNS.items():
        t = jnp.asarray(targets_for(name, q), dtype)
        out = fn(log_p, t)
        assert out.dtype == dtype
        wide = fn(log_p.astype(jnp.float32), t.astype(jnp.float32))
        np.testing.assert_array_equal(out, wide.astype(dtype))


def test_result_dtypes_match_optax():
    x16 = jnp.asarray(LOG_PS, jnp.bfloat16)
    for name in NAMES[:3]:
        for x, y in ((x16, QS), (LOG_PS, QS.astype(jnp.bfloat16)), (x16, x16)):
            ours = jax.eval_shape(getattr(losses, name), x, y)
            with jax.numpy_dtype_promotion("standard"):
                theirs = jax.eval_shape(getattr(optax.losses, name), x, y)
            assert ours.dtype == theirs.dtype, name


def test_argument_errors():
    with pytest.raises(TypeError, match=r"kl_divergence: targets must have a floating dtype"):
        losses.kl_divergence(LOG_PS, np.array([[0, 1, 0, 0, 0, 0]] * 2))
    with pytest.raises(TypeError, match=r"log_targets: log_targets must have a floating dtype"):
        losses.kl_divergence_with_log_targets(LOG_PS, np.zeros((2, 6), np.int32))
