"""Element-wise sigmoid losses: binary cross entropy and the focal loss.

Both work from softplus (log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))),
so logits of +-1e9 or +-inf give exact limits instead of overflow; bfloat16 and
float16 logits are computed in float32 and the result is cast back.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.losses import _softmax


def _inputs(
    fn: str, logits: Any, labels: Any, *hyper: Any
) -> tuple[jax.Array, jax.Array, np.dtype, np.dtype]:
    _softmax.check_floating(fn, logits=logits)
    out, dtype = _softmax.dtypes(logits, *hyper)
    x, y = jnp.broadcast_arrays(jnp.asarray(logits, dtype), jnp.asarray(labels, dtype))
    return x, y, out, dtype


def _bce(x: jax.Array, y: jax.Array) -> jax.Array:
    # -log p = softplus(-x) and -log(1 - p) = softplus(x), for p = sigmoid(x).
    return _softmax.mul0(y, jax.nn.softplus(-x)) + _softmax.mul0(1 - y, jax.nn.softplus(x))


def sigmoid_binary_cross_entropy(
    logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> jax.Array:
    """Cross entropy of independent binary predictions, element by element.

    With p = sigmoid(logits):

        loss = labels * softplus(-logits) + (1 - labels) * softplus(logits)
             = -labels * log(p) - (1 - labels) * log(1 - p)

    A term whose weight (labels or 1 - labels) is 0 is 0 even where its softplus is
    infinite, so a logit of -inf with label 0 (or +inf with label 1) gives 0. For
    labels in [0, 1] both terms are >= 0 and the sum keeps float32 relative accuracy.
    Labels may be {0, 1} or soft targets in [0, 1]; for several independent classes,
    pass one logit per class.

    Args:
        logits: Unnormalized log-odds of class 1; a floating array.
        labels: Targets in [0, 1], broadcastable with ``logits``.

    Returns:
        The loss per element, of the broadcast shape, in the dtype of ``logits``
        (computed in at least float32).

    References:
        Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, section 3.10.

    Checked against Optax and ``torch.nn.functional.binary_cross_entropy_with_logits``
    in tests/losses/test_sigmoid.py.
    """
    x, y, out, _ = _inputs("sigmoid_binary_cross_entropy", logits, labels)
    return _bce(x, y).astype(out)


def _log_or_neg_inf(v: jax.Array) -> jax.Array:
    """log(v), -inf where v == 0, with a zero (not NaN) derivative there."""
    zero = v == 0
    return jnp.where(zero, -jnp.inf, jnp.log(jnp.where(zero, jnp.ones((), v.dtype), v)))


def sigmoid_focal_loss(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    alpha: jax.typing.ArrayLike | None = None,
    gamma: jax.typing.ArrayLike = 2.0,
) -> jax.Array:
    """Focal loss: the binary cross entropy scaled down on well-classified elements.

    With p = sigmoid(logits) and 1 - p_t = (1 - labels) * p + labels * (1 - p) the
    probability given to the wrong side:

        log_w = logaddexp(log(1 - labels) - softplus(-logits),
                          log(labels) - softplus(logits))       # log(1 - p_t)
        loss = sigmoid_binary_cross_entropy(logits, labels) * exp(gamma * log_w)
        loss = loss * (alpha * labels + (1 - alpha) * (1 - labels))   # if alpha is given

    The focal weight (1 - p_t)**gamma is taken in log space, so it stays accurate and
    differentiable (Hessians included) for any gamma >= 0 and logits as large as 1e4;
    an element with 1 - p_t = 0 exactly (an infinite logit on the right side) has
    loss 0 and zero derivatives.

    Args:
        logits: Unnormalized log-odds of class 1; a floating array.
        labels: Targets in [0, 1] (binary or soft), broadcastable with ``logits``.
        alpha: Weight in [0, 1] of the positive side (1 - alpha for the negative
            side), or None for no weighting.
        gamma: Focusing exponent; 0 gives the (alpha-weighted) cross entropy.

    Returns:
        The loss per element, of the broadcast shape, in the promoted dtype of
        ``logits``, ``alpha`` and ``gamma`` (computed in at least float32).

    References:
        Lin, Goyal, Girshick, He & Dollar, "Focal Loss for Dense Object Detection",
        ICCV 2017, arXiv:1708.02002.

    Checked against Optax and a float64 NumPy formula in
    tests/losses/test_sigmoid.py.
    """
    fn = "sigmoid_focal_loss"
    if alpha is not None:
        _checks.in_unit_interval(fn, closed_right=True, alpha=alpha)
    hyper = (gamma,) if alpha is None else (gamma, alpha)
    x, y, out, dtype = _inputs(fn, logits, labels, *hyper)
    log_w1 = _log_or_neg_inf(1 - y) - jax.nn.softplus(-x)
    log_w2 = _log_or_neg_inf(y) - jax.nn.softplus(x)
    dead = (log_w1 == -jnp.inf) & (log_w2 == -jnp.inf)
    zero = jnp.zeros((), dtype)
    log_w = jnp.logaddexp(jnp.where(dead, zero, log_w1), jnp.where(dead, zero, log_w2))
    loss = _bce(x, y) * jnp.exp(jnp.asarray(gamma, dtype) * log_w)
    loss = jnp.where(dead, zero, loss)
    if alpha is not None:
        a = jnp.asarray(alpha, dtype)
        loss = (a * y + (1 - a) * (1 - y)) * loss
    return loss.astype(out)
