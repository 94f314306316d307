"""ranking_softmax_loss against Optax and float64 NumPy formulas."""

import inspect
from math import exp, log

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special

from optix import losses
from optix.losses import ranking
from tests.losses.compiled import ours, theirs

SCORES = jnp.asarray([0.0, 3.0, 1.0, 2.0])
LABELS = jnp.asarray([0.0, 0.0, 1.0, 1.0])
NORM = exp(0.0) + exp(3.0) + exp(1.0) + exp(2.0)


RANK = ours("ranking_softmax_loss")
GRAD = jax.jit(jax.grad(losses.ranking_softmax_loss), static_argnames="reduce_fn")


def np_loss(scores, labels, where=None):
    """float64 per-list loss: -sum(y * log_softmax(s)) over the valid items."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels, np.float64)
    valid = np.ones(s.shape, bool) if where is None else np.asarray(where)
    with np.errstate(invalid="ignore"):  # a list without valid items reads 0
        log_p = s - scipy.special.logsumexp(np.where(valid, s, -np.inf), axis=-1, keepdims=True)
        return -np.sum(np.where(valid, y * log_p, 0.0), axis=-1)


def test_signature_and_export_match_optax():
    mine = inspect.signature(ranking.ranking_softmax_loss).parameters
    optaxs = inspect.signature(optax.losses.ranking_softmax_loss).parameters
    assert [(p.name, p.kind, p.default) for p in mine.values()] == [
        (p.name, p.kind, p.default) for p in optaxs.values()
    ]
    assert losses.ranking_softmax_loss is ranking.ranking_softmax_loss


def test_module_example():
    scores, labels = jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])
    assert f"{RANK(scores, labels):.3f}" == "1.408"
    scores = jnp.array([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]])
    labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    where = jnp.array([[True, True, False], [True, True, True]])
    assert f"{RANK(scores, labels, where=where):.3f}" == "0.497"
    grads = GRAD(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(grads, [-0.755, 0.09, 0.665], atol=5e-4)


# Optax's cases.


def test_values_plain_extreme_zero_and_weighted():
    fn = RANK
    expected = -(log(exp(2.0) / NORM) + log(exp(1.0) / NORM))
    np.testing.assert_allclose(fn(SCORES, LABELS, reduce_fn=jnp.sum), expected, rtol=1e-6)
    extreme = jnp.asarray([0.0, -2.1e26, 3.4e37, 42.0])
    total = 0.0 + -2.1e26 + 3.4e37 + 42.0
    expected = -((-2.1e26 - total) + (3.4e37 - total))
    value = fn(extreme, jnp.asarray([0.0, 1.0, 1.0, 0.0]), reduce_fn=jnp.sum)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert float(fn(SCORES, jnp.zeros(4), reduce_fn=jnp.sum)) == 0.0
    weighted = fn(
        jnp.asarray([0.0, 3.0, 2.0, 1.0]),
        LABELS,
        weights=jnp.asarray([1.0, 1, 2, 1]),
        reduce_fn=jnp.sum,
    )
    expected = -(2.0 * log(exp(2.0) / NORM) + log(exp(1.0) / NORM))
    np.testing.assert_allclose(weighted, expected, rtol=1e-6)


def test_vmap_reductions_and_unreduced():
    scores = jnp.asarray([[0.0, 3.0, 1.0, 2.0], [3.0, 1.0, 4.0, 2.0]])
    labels = jnp.asarray([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 0.0]])
    per_list = np_loss(scores, labels)
    second = -(
        2.0 * log(exp(3.0) / (exp(3.0) + exp(1.0) + exp(4.0) + exp(2.0)))
        + log(exp(4.0) / (exp(3.0) + exp(1.0) + exp(4.0) + exp(2.0)))
    )
    np.testing.assert_allclose(per_list[1], second, rtol=1e-12)
    fn = RANK
    vmapped = jax.vmap(lambda s, y: fn(s, y, reduce_fn=jnp.sum))(scores, labels)
    np.testing.assert_allclose(vmapped, per_list, rtol=1e-6)
    np.testing.assert_allclose(fn(scores, labels), per_list.mean(), rtol=1e-6)
    np.testing.assert_allclose(fn(scores, labels, reduce_fn=jnp.sum), per_list.sum(), rtol=1e-6)
    none = fn(scores, labels, reduce_fn=None)
    assert none.shape == (2,)
    assert float(jnp.sum(none)) == pytest.approx(float(fn(scores, labels, reduce_fn=jnp.sum)))


def test_where_drops_items_and_lists():
    fn = RANK
    labels = jnp.asarray([0.0, 0.0, 2.0, 1.0])
    where = jnp.asarray([True, True, True, False])
    np.testing.assert_allclose(
        fn(SCORES, labels, where=where), fn(SCORES[:3], labels[:3]), rtol=1e-6
    )
    all_masked = jnp.zeros(4, bool)
    assert float(fn(SCORES, LABELS, where=all_masked)) == 0.0
    batched = fn(
        jnp.asarray([[[[2.0, 3.0, 1.0]]]]),
        jnp.asarray([[[[0.0, 0.0, 1.0]]]]),
        where=jnp.asarray([[[[False, True, True]]]]),
    )
    single = fn(
        jnp.asarray([2.0, 3.0, 1.0]),
        jnp.asarray([0.0, 0.0, 1.0]),
        where=jnp.asarray([False, True, True]),
    )
    np.testing.assert_allclose(batched, single, rtol=1e-6)
    scores = jnp.asarray([[0.0, 3.0, 1.0, 2.0], [3.0, 1.0, 4.0, 2.0]])
    labels = jnp.asarray([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 0.0]])
    mask = jnp.asarray([[1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_allclose(fn(scores, labels, where=mask), fn(scores[0], labels[0]), rtol=1e-6)
    unreduced = fn(scores, labels, where=mask, reduce_fn=None)
    assert float(unreduced[1]) == 0.0


def test_gradients_finite_with_zero_labels_and_masks():
    grad = GRAD
    assert np.all(np.isfinite(grad(SCORES, jnp.zeros(4))))
    g = grad(SCORES, LABELS, where=jnp.zeros(4, bool))
    np.testing.assert_array_equal(g, 0.0)
    # Masked items get no gradient, valid items the softmax-minus-labels gradient.
    where = jnp.asarray([True, False, True, True])
    g = grad(SCORES, LABELS, where=where, reduce_fn=jnp.sum)
    s = np.asarray(SCORES, np.float64)[[0, 2, 3]]
    softmax = np.exp(s) / np.exp(s).sum()
    np.testing.assert_allclose(g[np.asarray(where)], softmax * 2.0 - [0.0, 1.0, 1.0], rtol=1e-6)
    assert float(g[1]) == 0.0
    # Extreme scores: finite gradient.
    g = grad(jnp.asarray([0.0, -2.1e26, 3.4e37, 42.0]), jnp.asarray([0.0, 1.0, 1.0, 0.0]))
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("reduce_fn", [jnp.mean, jnp.sum, None])
def test_matches_optax_and_numpy_float32_and_float64(reduce_fn):
    rng = np.random.default_rng(0)
    scores = np.float32(rng.normal(size=(5, 3, 7)) * 3)
    labels = np.float32(rng.integers(0, 3, size=(5, 3, 7)))
    where = rng.random((5, 3, 7)) > 0.3
    where[0, 0] = False
    weights = np.float32(rng.random((5, 3, 7)))
    kwargs = {"where": where, "reduce_fn": reduce_fn}
    per_list = np.where(where.any(-1), np_loss(scores, labels * np.float64(weights), where), 0.0)
    reference = {
        jnp.mean: lambda x: x.sum() / where.any(-1).sum(),
        jnp.sum: np.sum,
        None: lambda x: x,
    }[reduce_fn](per_list)
    mine = RANK(scores, labels, weights=weights, **kwargs)
    np.testing.assert_allclose(mine, reference, rtol=1e-6)
    optaxs = theirs("ranking_softmax_loss", scores, labels, weights=weights, **kwargs)
    np.testing.assert_allclose(mine, optaxs, rtol=1e-5)
    with jax.enable_x64(True):
        wide = RANK(np.float64(scores), labels, weights=weights, **kwargs)
        assert wide.dtype == jnp.float64
        np.testing.assert_allclose(wide, reference, rtol=1e-12)


def test_low_precision_and_integer_labels():
    scores = jnp.asarray([[2.0, 1.0, 3.0], [1.0, 0.5, 1.5]], jnp.bfloat16)
    labels = jnp.asarray([[1, 0, 0], [0, 0, 1]])
    out = RANK(scores, labels)
    assert out.dtype == jnp.bfloat16
    expected = np_loss(np.float32(scores), labels).mean()
    assert float(out) == float(jnp.bfloat16(expected))
    with pytest.raises(TypeError, match="ranking_softmax_loss: logits must have a floating"):
        losses.ranking_softmax_loss(labels, labels)
