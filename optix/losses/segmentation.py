"""Segmentation losses: soft Dice (and Tversky) overlap between predicted and true masks.

Inputs are ``[batch, *spatial, classes]``: logits (or probabilities) and one-hot (or
binary) targets. Overlaps are summed over the spatial axes, one loss per sample and
class, then reduced over the classes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from optix import _checks
from optix.losses import _arrays

_REDUCTIONS = ("mean", "sum", "none")


def _check_probabilities(probs: jax.Array) -> None:
    """Concrete ``probs`` must be distributions over the last axis (binary: in [0, 1])."""
    if not _arrays.is_concrete(probs):
        return
    values = np.asarray(probs, np.float64)
    if values.shape[-1] == 1:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > 1:
            raise ValueError(
                "dice_loss: with apply_softmax=False, single-channel predictions must be "
                f"probabilities in [0, 1], got values in [{low:.6g}, {high:.6g}]"
            )
        return
    sums = values.sum(axis=-1)
    # Optax's tolerance (1e-5) in float32 and wider; a few roundings of bf16 or float16.
    floating = jnp.issubdtype(probs.dtype, jnp.floating)
    eps = float(jnp.finfo(probs.dtype).eps) if floating else 0.0
    tolerance = max(1e-5, values.shape[-1] * eps)
    if sums.size and not np.all(np.abs(sums - 1.0) <= tolerance + 1e-8):
        raise ValueError(
            "dice_loss: with apply_softmax=False, predictions must be valid probability "
            "distributions over the last axis (summing to 1), got sums in "
            f"[{sums.min():.6f}, {sums.max():.6f}]"
        )


def _probabilities(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """p = sigmoid or softmax of ``logits`` and q = 1 - p, both to full relative precision.

    Near-certain predictions have p within an ulp of 1, where 1 - p would keep no
    digits. q comes from the other terms instead: sigmoid(-x) for one channel; for
    the most likely class, the sum of the other classes' exp(x - max) over the total
    (every other class has p <= 1/2, where 1 - p is exact).
    """
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits), jax.nn.sigmoid(-logits)
    top = lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    e = jnp.exp(logits - top)
    total = jnp.sum(e, axis=-1, keepdims=True)
    p = e / total
    first = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=bool)
    rest = jnp.sum(jnp.where(first, 0.0, e), axis=-1, keepdims=True)
    return p, jnp.where(first, rest / total, 1 - p)


def _per_class(
    predictions, targets, class_weights, smooth, alpha, beta, apply_softmax, ignore_background, axis
) -> tuple[jax.Array, jnp.dtype]:
    """Dice losses ``[..., classes]`` in the compute dtype, and the dtype to return."""
    predictions, targets, class_weights = _arrays.as_arrays(predictions, targets, class_weights)
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    _arrays.check_same_shape("dice_loss", predictions, targets)
    if not apply_softmax:
        _check_probabilities(predictions)
    floats = [x for x in (predictions, targets) if jnp.issubdtype(x.dtype, jnp.floating)]
    out, wide = _arrays.dtypes(*floats) if floats else _arrays.dtypes(jnp.float32)
    t = targets.astype(wide)
    if apply_softmax:
        p, q = _probabilities(predictions.astype(wide))
    else:
        p = predictions.astype(wide)
        q = 1 - p
    if axis is None:
        axis = tuple(range(1, p.ndim - 1))

    # FP and FN are summed directly (not as P - I and T - I), with q = 1 - p, and the loss is
    # (alpha FP + beta FN) / (I + alpha FP + beta FN + smooth) rather than 1 - (I + smooth)
    # / (...), so near-perfect masks keep their small loss in float32.
    intersection = jnp.sum(p * t, axis=axis)
    false_pos = jnp.sum(p * (1 - t), axis=axis)
    false_neg = jnp.sum(q * t, axis=axis)
    errors = jnp.asarray(alpha, wide) * false_pos + jnp.asarray(beta, wide) * false_neg
    losses = errors / (intersection + errors + jnp.asarray(smooth, wide))

    if class_weights is not None:
        if class_weights.ndim != 1:
            raise ValueError(
                "dice_loss: class_weights must have rank 1 ([classes]), got "
                f"class_weights.shape={class_weights.shape}"
            )
        losses = losses * jnp.broadcast_to(class_weights.astype(wide), losses.shape)
    if ignore_background and p.shape[-1] > 1:
        losses = losses[..., 1:]
    return losses, out


def dice_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    class_weights: jax.typing.ArrayLike | None = None,
    smooth: jax.typing.ArrayLike = 1.0,
    alpha: jax.typing.ArrayLike = 0.5,
    beta: jax.typing.ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: int | tuple[int, ...] | None = None,
) -> jax.Array:
    """Soft Dice loss (Tversky loss for alpha != beta), per sample, reduced over classes.

    Probabilities p are sigmoid(predictions) for one channel and softmax over the last
    axis otherwise (or ``predictions`` as given with ``apply_softmax=False``). For
    each class c, with sums over ``axis`` and targets t:

        I  = sum(p * t)            overlap
        FP = sum(p * (1 - t))      predicted, not true  (= sum(p) - I)
        FN = sum((1 - p) * t)      true, not predicted  (= sum(t) - I)
        loss[c] = 1 - (I + smooth) / (I + alpha * FP + beta * FN + smooth)

    alpha = beta = 0.5 is the Dice loss; alpha > beta penalises false positives more.
    The loss is evaluated as (alpha FP + beta FN) / (I + alpha FP + beta FN + smooth),
    so a near-perfect mask keeps its small value in float32.

    Args:
        predictions: Logits (or probabilities) ``[batch, *spatial, classes]``; for one
            class also ``[batch, *spatial]``.
        targets: One-hot (or binary) targets of the same shape, either with or
            without the trailing single channel.
        class_weights: Optional array ``[classes]`` multiplying each class's loss.
        smooth: Added to numerator and denominator, >= 0 (default 1).
        alpha: Weight of false positives, >= 0 (default 0.5).
        beta: Weight of false negatives, >= 0 (default 0.5).
        apply_softmax: Whether ``predictions`` are logits (default). With False they
            must be probabilities: summing to 1 over the classes, or in [0, 1] for a
            single channel; concrete inputs are checked (``ValueError``).
        reduction: Over the classes: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        ignore_background: Leave class 0 out (when there is more than one class).
        axis: Axis or axes summed over; default all but the first and the last.

    Returns:
        ``[batch]`` for "mean" and "sum", ``[batch, classes]`` for "none" (for the
        default ``axis``), in the inputs' floating dtype (computed in at least float32).

    References:
        Milletari et al., V-Net: Fully Convolutional Neural Networks for Volumetric
        Medical Image Segmentation, 2016 (arXiv:1606.04797); Salehi et al., Tversky
        loss function for image segmentation, 2017 (arXiv:1706.05721).

        Checked against np_dice (a float64 NumPy formula) and optax in
        tests/losses/test_segmentation.py.
    """
    _checks.one_of("dice_loss", "reduction", reduction, _REDUCTIONS)
    _checks.non_negative("dice_loss", smooth=smooth, alpha=alpha, beta=beta)
    losses, out = _per_class(
        predictions,
        targets,
        class_weights,
        smooth,
        alpha,
        beta,
        apply_softmax,
        ignore_background,
        axis,
    )
    if reduction == "mean":
        losses = jnp.mean(losses, axis=-1)
    elif reduction == "sum":
        losses = jnp.sum(losses, axis=-1)
    return losses.astype(out)


def multiclass_generalized_dice_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    smooth: jax.typing.ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    """Generalised Dice loss: Dice losses weighted by inverse squared class frequency.

    With n[c] = sum of targets of class c over the batch and all positions, and C
    classes:

        w[c] = 1 / (n[c]**2 + 1e-7)
        w = C * w / sum(w)
        loss = mean over samples and classes of w[c] * dice_loss[sample, c]

    so rare classes count as much as frequent ones. The weights are normalised over
    all C classes, before ``ignore_background`` drops class 0.

    Args:
        predictions: Logits (or probabilities) ``[batch, *spatial, classes]``.
        targets: One-hot targets of the same shape.
        smooth: Added to numerator and denominator, >= 0 (default 1).
        apply_softmax: Whether ``predictions`` are logits (default).
        ignore_background: Leave class 0 out of the mean.

    Returns:
        The scalar loss, in the inputs' floating dtype.

    References:
        Sudre et al., Generalised Dice overlap as a deep learning loss function for
        highly unbalanced segmentations, 2017 (arXiv:1707.03237).

        Checked against np_dice (a float64 NumPy formula) and optax in
        tests/losses/test_segmentation.py.
    """
    fn = "multiclass_generalized_dice_loss"
    _checks.non_negative(fn, smooth=smooth)
    predictions, targets = _arrays.as_arrays(predictions, targets)
    _arrays.check_same_shape(fn, predictions, targets)
    wide = _arrays.wide_dtype(predictions.dtype, targets.dtype)
    counts = jnp.sum(targets.astype(wide), axis=tuple(range(targets.ndim - 1)))
    weights = 1.0 / (jnp.square(counts) + 1e-7)
    weights = weights * (counts.shape[0] / jnp.sum(weights))
    losses, out = _per_class(
        predictions, targets, weights, smooth, 0.5, 0.5, apply_softmax, ignore_background, None
    )
    return jnp.mean(losses).astype(out)


def binary_dice_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    smooth: jax.typing.ArrayLike = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    """Dice loss of a binary mask: ``dice_loss`` with one channel.

    Inputs ``[batch, *spatial]`` get a trailing channel; ``[batch, *spatial, 1]`` are
    used as they are. Probabilities are sigmoid(predictions), or ``predictions`` in
    [0, 1] with ``apply_sigmoid=False``.

    Args:
        predictions: Logits (or probabilities) ``[batch, *spatial]`` or
            ``[batch, *spatial, 1]``.
        targets: Binary targets of the same shape.
        smooth: Added to numerator and denominator, >= 0 (default 1).
        apply_sigmoid: Whether ``predictions`` are logits (default).

    Returns:
        The losses ``[batch]``.

    References:
        Milletari et al., 2016 (arXiv:1606.04797).

        Checked against dice_loss and optax in tests/losses/test_segmentation.py.
    """
    predictions, targets = _arrays.as_arrays(predictions, targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid)
