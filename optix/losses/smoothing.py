"""Label smoothing."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from optix import _checks
from optix.losses import _softmax


def smooth_labels(
    labels: jax.typing.ArrayLike,
    alpha: jax.typing.ArrayLike,
    *,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Mix one-hot labels with the uniform distribution over the classes.

    With n the number of classes along ``axis`` (the number of entries ``where``
    allows, when it is given):

        smoothed = (1 - alpha) * labels + alpha / n

    Used with a softmax cross entropy, it keeps logits from growing without bound and
    tends to give better calibrated predictions; ``softmax_cross_entropy(logits,
    smooth_labels(one_hot, alpha))`` is PyTorch's ``cross_entropy`` with
    ``label_smoothing=alpha``. Entries outside ``where`` are smoothed too (pass the
    same ``where`` to the loss to leave them out).

    Args:
        labels: One-hot (or any probability) labels, classes along ``axis``; floating.
        alpha: Smoothing weight in [0, 1]: 0 keeps the labels, 1 gives the uniform
            distribution.
        axis: Axis or axes holding the classes (None: all of them).
        where: Boolean mask of the classes to count, of the labels' shape.

    Returns:
        The smoothed labels, of the labels' shape, in the promoted dtype of ``labels``
        and ``alpha`` (computed in at least float32).

    References:
        Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception
        Architecture for Computer Vision", CVPR 2016, arXiv:1512.00567, section 7.
        Muller, Kornblith & Hinton, "When does label smoothing help?", NeurIPS 2019,
        arXiv:1906.02629.

    Checked against Optax and ``torch.nn.functional.cross_entropy(...,
    label_smoothing=alpha)`` in tests/losses/test_smoothing.py.
    """
    fn = "smooth_labels"
    _softmax.check_floating(fn, labels=labels)
    _checks.in_unit_interval(fn, closed_right=True, alpha=alpha)
    out, dtype = _softmax.dtypes(labels, alpha)
    y = jnp.asarray(labels, dtype)
    a = jnp.asarray(alpha, dtype)
    if where is not None:
        n = jnp.sum(jnp.asarray(where, bool), axis, keepdims=True).astype(dtype)
    elif axis is None:
        n = jnp.array(y.size, dtype)
    else:
        axes = axis if isinstance(axis, tuple) else (axis,)
        n = jnp.array(math.prod(y.shape[i] for i in axes), dtype)
    return ((1 - a) * y + a / n).astype(out)
