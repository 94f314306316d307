"""Ranking losses: the cost of the ranking that item scores induce, given relevance labels.

A ranking loss acts on the last axis of its inputs (the items of one list); leading
axes are lists. For example, with one list of three items::

    scores = jnp.array([2.0, 1.0, 3.0])
    labels = jnp.array([1.0, 0.0, 0.0])
    ranking_softmax_loss(scores, labels)        # 1.408

A boolean ``where`` marks the valid items of each list; lists without any valid item
are left out of the reduction. Gradients come from ``jax.grad`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from optix.losses import _arrays


def _safe_reduce(
    losses: jax.Array, where: jax.Array | None, reduce_fn: Callable[..., jax.Array] | None
) -> jax.Array:
    """Reduce per-list losses; a masked mean over no list is 0 instead of NaN.

    The NaN of an empty mean is replaced only when no loss is NaN, so a NaN that came
    from the inputs still shows. Without ``reduce_fn``, masked lists read 0, so that
    summing the unreduced losses equals ``reduce_fn=jnp.sum``.
    """
    if reduce_fn is None:
        return losses if where is None else jnp.where(where, losses, 0.0)
    reduced = reduce_fn(losses, where=where)
    if reduce_fn is jnp.mean:
        empty = jnp.isnan(reduced) & ~jnp.any(jnp.isnan(losses))
        reduced = jnp.where(empty, 0.0, reduced)
    return reduced


def ranking_softmax_loss(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    where: jax.typing.ArrayLike | None = None,
    weights: jax.typing.ArrayLike | None = None,
    reduce_fn: Callable[..., jax.Array] | None = jnp.mean,
) -> jax.Array:
    """Softmax cross entropy between item scores and relevance labels, per list.

    For one list of scores s and labels y (labels times ``weights`` when given), over
    the valid items i (those where ``where`` is true):

        log_p[i] = s[i] - log(sum_j exp(s[j]))
        loss = -sum_i y[i] * log_p[i]

    Masked items take no part, neither in the normaliser nor in the sum. The log
    softmax is shifted by the largest valid score, so scores of 1e37 stay exact, and
    the gradient is finite (zero for masked items) even when every item is masked.

    Args:
        logits: Floating array ``[..., list_size]``: the score of each item.
        labels: Array ``[..., list_size]``: the relevance of each item.
        where: Optional boolean array ``[..., list_size]``: the valid items.
        weights: Optional array ``[..., list_size]``: a weight per item, multiplying
            its label.
        reduce_fn: Reduction over the lists, called as ``reduce_fn(losses,
            where=valid_lists)``: ``jnp.mean`` (default; 0 when no list is valid),
            ``jnp.sum``, or ``None`` for the per-list losses ``[...]``.

    Returns:
        The reduced loss, or the per-list losses, in the logits' dtype (computed in at
        least float32).

    References:
        Cao et al., Learning to Rank: From Pairwise Approach to Listwise Approach,
        ICML 2007.

        Checked against np_loss (a float64 NumPy formula) and optax in
        tests/losses/test_ranking.py.
    """
    logits, labels, where, weights = _arrays.as_arrays(logits, labels, where, weights)
    _arrays.check_floating("ranking_softmax_loss", logits=logits)
    out, wide = _arrays.dtypes(logits)
    s = logits.astype(wide)
    y = labels.astype(wide)
    if weights is not None:
        y = y * weights.astype(wide)
    valid = jnp.ones(s.shape, bool) if where is None else jnp.broadcast_to(where, s.shape)

    top = lax.stop_gradient(jnp.max(s, axis=-1, where=valid, initial=-jnp.inf, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    shifted = jnp.where(valid, s - top, 0.0)
    total = jnp.sum(jnp.exp(shifted), axis=-1, where=valid, keepdims=True)
    # total >= 1 when a list has a valid item; an empty list reads log(1) = 0.
    log_p = shifted - jnp.log(jnp.where(total > 0, total, 1.0))
    losses = -jnp.sum(y * log_p, axis=-1, where=valid)

    lists = None if where is None else jnp.any(valid, axis=-1)
    return _safe_reduce(losses, lists, reduce_fn).astype(out)
