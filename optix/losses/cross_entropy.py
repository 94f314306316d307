"""Softmax cross entropies: against distributions, against integer labels, and PolyLoss.

Each loss is log_z - (logits - m) weighted by the labels, with m the largest logit and
log_z = log(sum(exp(logits - m))): both parts are >= 0 and logits - m is exact, so
float32 losses stay within about 1e-6 relative of the float64 ones, or a few 1e-7
absolute for confident predictions (the float32 rounding of log_z near 0), where
logsumexp(logits) - logits[label] rounds at 1e-7 * |logits|. bfloat16 and float16
logits are reduced in float32. A class whose logit is -inf (a masked class) with label
0 contributes 0, its derivatives are 0, and the loss and its gradient are finite
whenever the labels put no mass on such a class. The passes over the logits are laid
out for XLA's fusion (``_softmax``); benchmarks/losses.py times them against Optax's.
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp

from optix.losses import _softmax
from optix.losses._softmax import Axis


def _cross_entropy(fn: str, logits: Any, labels: Any, axis: Axis, where: Any) -> jax.Array:
    _softmax.check_floating(fn, logits=logits)
    out, _ = _softmax.dtypes(logits, labels)
    x, y = jnp.broadcast_arrays(jnp.asarray(logits), jnp.asarray(labels))
    where = _softmax.mask(where, axis, x.shape)
    return _softmax.soft_nll(x, y, axis, where).astype(out)


def softmax_cross_entropy(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Cross entropy of the softmax of ``logits`` against the distributions ``labels``.

    Along ``axis``, over the entries ``where`` allows, with log_p = log_softmax(logits):

        loss = sum(-labels * log_p)

    Terms with labels == 0 are 0 even where log_p = -inf (0 log 0 = 0), so a class
    masked with a -inf logit gives a finite loss with finite derivatives; this makes it
    the same function as ``safe_softmax_cross_entropy``, which Optax keeps separate
    because its plain version returns NaN there. A positive label on such a class gives
    +inf. The loss is computed as sum(labels * (log_z - (logits - m))), m the largest
    logit and log_z = log(sum(exp(logits - m))), every term >= 0.

    Args:
        logits: Unnormalized log-probabilities, classes along ``axis``; a floating array.
        labels: Target distributions (non-negative, summing to 1 along ``axis``), such as
            one-hot vectors, broadcastable with ``logits``.
        axis: Axis or axes holding the classes (None: all of them).
        where: Boolean mask of the entries to include, of the logits' shape, or of the
            shape of the result (one flag per example: it is expanded along ``axis``).
            Excluded entries are left out of the normalization and of the sum; an
            example with no entry included has loss 0.

    Returns:
        The loss per example: ``logits`` without ``axis``, in the promoted dtype of
        ``logits`` and ``labels`` (computed in at least float32).

    References:
        Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, section 6.2.2.

    Checked against Optax, ``torch.nn.functional.cross_entropy`` (probability targets,
    ``label_smoothing``) and ``scipy.special.log_softmax`` in
    tests/losses/test_cross_entropy.py.
    """
    return _cross_entropy("softmax_cross_entropy", logits, labels, axis, where)


def safe_softmax_cross_entropy(
    logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> jax.Array:
    """Cross entropy along the last axis, with 0 log 0 = 0 for classes of logit -inf.

    The same function as ``softmax_cross_entropy(logits, labels)`` (which is safe for
    -inf logits too); Optax keeps this name for the version that does not return NaN:

        loss = sum(-labels * log_softmax(logits)),  0 wherever labels == 0

    A class of logit -inf with a positive label gives loss +inf.

    Args:
        logits: Unnormalized log-probabilities, shape ``[..., num_classes]``.
        labels: Target distributions broadcastable to ``[..., num_classes]``.

    Returns:
        The loss per example, shape ``[...]``, in the promoted dtype of the inputs.

    Checked against Optax and ``scipy.special.log_softmax`` in
    tests/losses/test_cross_entropy.py.
    """
    return _cross_entropy("safe_softmax_cross_entropy", logits, labels, -1, None)


def _canonical_axis(fn: str, axis: Any, ndim: int) -> int:
    try:
        index = operator.index(axis)
    except TypeError:
        raise TypeError(
            f"{fn}: axis must be an int or a tuple of ints, got axis={axis!r}"
        ) from None
    if not -ndim <= index < ndim:
        raise ValueError(f"{fn}: axis must be in [-{ndim}, {ndim}), got axis={axis!r}")
    return index % ndim


def softmax_cross_entropy_with_integer_labels(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Cross entropy of the softmax of ``logits`` against integer class labels.

    Along ``axis``, over the entries ``where`` allows, with m the largest of them:

        loss = log(sum(exp(logits - m))) - (logits[labels] - m)

    that is logsumexp(logits) - logits[labels] with both parts >= 0. The label's logit
    counts even where ``where`` excludes it (as in Optax). With a tuple of axes, their
    entries form one flat class axis in row-major order, and a label is an index into
    it; a negative label counts from the end.

    Args:
        logits: Unnormalized log-probabilities; a floating array.
        labels: Integer class indices in [0, num_classes), of the shape of ``logits``
            without ``axis``.
        axis: Axis, or tuple of axes, holding the classes.
        where: Boolean mask of the entries to include, of the logits' shape, or of the
            labels' shape (one flag per example). Excluded entries are left out of the
            normalization; an example with no entry included has loss 0.

    Returns:
        The loss per example, of the labels' shape, in the dtype of ``logits``
        (computed in at least float32).

    References:
        Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, section 6.2.2.

    Checked against Optax and ``torch.nn.functional.cross_entropy`` (class-index
    targets) in tests/losses/test_cross_entropy.py.
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    _softmax.check_floating(fn, logits=logits)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{fn}: labels must have an integer dtype, got labels.dtype={labels.dtype}")
    x = jnp.asarray(logits)
    if not isinstance(axis, int | tuple):
        raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got axis={axis!r}")
    where = _softmax.mask(where, axis, x.shape)
    if isinstance(axis, tuple):
        classes = tuple(_canonical_axis(fn, a, x.ndim) for a in axis)
        batch = tuple(i for i in range(x.ndim) if i not in classes)
        batch_shape = tuple(x.shape[i] for i in batch)
        x = x.transpose(batch + classes).reshape((*batch_shape, -1))
        if where is not None:
            where = where.transpose(batch + classes).reshape((*batch_shape, -1))
        axis = len(batch)
    else:
        axis = _canonical_axis(fn, axis, x.ndim)
    loss = _softmax.integer_nll(x, labels, axis, where)
    if where is not None:
        loss = jnp.where(jnp.any(where, axis), loss, jnp.zeros((), loss.dtype))
    return loss.astype(x.dtype)


def poly_loss_cross_entropy(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    epsilon: jax.typing.ArrayLike = 2.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Poly-1 loss: cross entropy plus ``epsilon`` times the first polynomial term.

    Along ``axis``, over the entries ``where`` allows, with log_p = log_softmax(logits)
    and 1 - p computed as -expm1(log_p) (accurate when p is close to 1):

        loss = sum(-labels * log_p) + epsilon * sum(labels * (1 - p))

    For one-hot labels the second sum is 1 - p_t, the first term of the expansion of
    -log(p_t) in powers of (1 - p_t). Classes of logit -inf behave as in
    ``softmax_cross_entropy``.

    Args:
        logits: Unnormalized log-probabilities, classes along ``axis``; a floating array.
        labels: Target distributions broadcastable with ``logits``; a floating array.
        epsilon: Coefficient of the first polynomial term (the paper uses 2 for
            ImageNet classification and -1 for detection; 0 is the cross entropy).
        axis: Axis or axes holding the classes (None: all of them).
        where: Boolean mask of the entries to include, of the logits' shape or one
            flag per example (expanded along ``axis``).

    Returns:
        The loss per example, in the promoted dtype of the inputs.

    References:
        Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification
        Loss Functions", ICLR 2022, arXiv:2204.12511.

    Checked against Optax and a float64 NumPy formula in
    tests/losses/test_cross_entropy.py.
    """
    fn = "poly_loss_cross_entropy"
    _softmax.check_floating(fn, logits=logits, labels=labels)
    out, dtype = _softmax.dtypes(logits, labels, epsilon)
    x, y = jnp.broadcast_arrays(jnp.asarray(logits), jnp.asarray(labels))
    where = _softmax.mask(where, axis, x.shape)
    cross_entropy = _softmax.soft_nll(x, y, axis, where).astype(dtype)
    log_p = _softmax.log_softmax(x, axis, where, dtype)
    y = y.astype(dtype)
    if where is not None:
        y = jnp.where(where, y, jnp.zeros((), dtype))
    one_minus_p_t = jnp.sum(y * -jnp.expm1(log_p), axis)
    return (cross_entropy + jnp.asarray(epsilon, dtype) * one_minus_p_t).astype(out)
