"""Margin losses: binary and multiclass hinge and perceptron losses.

Each loss is zero once the target's score beats every other score by the margin (1 for
the hinge losses, 0 for the perceptron losses) and grows linearly beyond. The
multiclass losses compare score differences ``scores - scores[label]``, computed
before the margin is added, so large scores (1e4 and more) keep their digits and
``-inf`` scores (masked classes) drop out instead of turning the loss into NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from optix.losses import _arrays


def hinge_loss(predictor_outputs: jax.typing.ArrayLike, targets: jax.typing.ArrayLike) -> jax.Array:
    """Binary hinge loss, elementwise.

    With y = predictor_outputs and t = targets:

        loss = max(0, 1 - y * t)

    Args:
        predictor_outputs: Outputs of the decision function, any shape.
        targets: Targets in {-1, 1}, broadcastable against ``predictor_outputs``.

    Returns:
        The loss of each element, in the dtype ``predictor_outputs`` and ``targets``
        promote to (computed in at least float32).

    References:
        Cortes & Vapnik, "Support-vector networks", Machine Learning 1995.
        Checked against optax.losses.hinge_loss in tests/losses/test_margin.py.
    """
    y, t = _arrays.as_arrays(predictor_outputs, targets)
    out, wide = _arrays.dtypes(y, t)
    margin = 1 - y.astype(wide) * t.astype(wide)
    return jnp.maximum(margin, 0).astype(out)


def perceptron_loss(
    predictor_outputs: jax.typing.ArrayLike, targets: jax.typing.ArrayLike
) -> jax.Array:
    """Binary perceptron loss, elementwise.

    With y = predictor_outputs and t = targets:

        loss = max(0, -y * t)

    Args:
        predictor_outputs: Scores of the model, any shape.
        targets: Targets in {-1, 1}, of the same shape as ``predictor_outputs``.

    Returns:
        The loss of each element, in the dtype the inputs promote to.

    Raises:
        ValueError: if the shapes differ.

    References:
        Rosenblatt, "The perceptron: a probabilistic model for information storage
        and organization in the brain", Psychological Review 1958.
        Checked against optax.losses.perceptron_loss in tests/losses/test_margin.py.
    """
    y, t = _arrays.as_arrays(predictor_outputs, targets)
    _arrays.check_same_shape("perceptron_loss", y, t)
    out, wide = _arrays.dtypes(y, t)
    return jnp.maximum(-(y.astype(wide) * t.astype(wide)), 0).astype(out)


def _class_mask(labels: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Boolean ``shape`` array (classes last) that is True at each row's label.

    A label outside [0, num_classes) marks no class, like ``jax.nn.one_hot``.
    """
    labels = jnp.broadcast_to(labels, shape[:-1])
    classes = lax.broadcasted_iota(labels.dtype, shape, len(shape) - 1)
    return labels[..., None] == classes


def _label_gaps(scores: jax.typing.ArrayLike, labels: jax.typing.ArrayLike):
    """Each score minus the label's score, with the label's own entry exactly 0.

    Returns ``(gaps, is_label, out, wide)``: the differences in the compute dtype
    ``wide`` (at least float32), the label mask, and the dtype to return. Scores and
    labels broadcast over their leading dimensions; a label outside the classes
    compares every score with 0, as Optax's one-hot does.
    """
    scores, labels = _arrays.as_arrays(scores, labels)
    out, wide = _arrays.dtypes(scores)
    shape = jnp.broadcast_shapes(scores.shape[:-1], labels.shape) + scores.shape[-1:]
    s = jnp.broadcast_to(scores, shape).astype(wide)
    is_label = _class_mask(labels, shape)
    s_label = jnp.sum(jnp.where(is_label, s, 0), axis=-1, keepdims=True)
    # A masked class (score -inf) stays -inf even when the label's score is -inf too.
    gaps = jnp.where(is_label, 0, jnp.where(s == -jnp.inf, -jnp.inf, s - s_label))
    if not jnp.issubdtype(out, jnp.floating):
        out = wide
    return gaps, is_label, out, wide


def multiclass_hinge_loss(scores: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
    """Multiclass hinge loss (Crammer-Singer), over the last axis.

    With s = scores, y = labels and [k == y] the one-hot label:

        loss = max_k (s[k] - s[y] + 1 - [k == y])
             = max(0, max_{k != y} (s[k] - s[y] + 1))

    computed from the gaps s[k] - s[y], so classes with ``-inf`` scores never win.

    Args:
        scores: Scores of shape ``[..., num_classes]``.
        labels: Integer labels in [0, num_classes), of shape ``[...]`` (broadcast
            against the leading dimensions of ``scores``).

    Returns:
        The loss of each row, shape ``[...]``, in ``scores``' floating dtype
        (computed in at least float32).

    References:
        Crammer & Singer, "On the algorithmic implementation of multiclass
        kernel-based vector machines", JMLR 2001.
        Checked against optax.losses.multiclass_hinge_loss and
        torch.nn.functional.multi_margin_loss in tests/losses/test_margin.py.
    """
    gaps, is_label, out, _ = _label_gaps(scores, labels)
    margins = jnp.where(is_label, 0, gaps + 1)
    return jnp.max(margins, axis=-1).astype(out)


def multiclass_perceptron_loss(
    scores: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> jax.Array:
    """Multiclass perceptron loss, over the last axis.

    With s = scores and y = labels:

        loss = max_k s[k] - s[y] = max_k (s[k] - s[y])

    Args:
        scores: Scores of shape ``[..., num_classes]``.
        labels: Integer labels in [0, num_classes), of shape ``[...]``.

    Returns:
        The loss of each row, shape ``[...]``, in ``scores``' floating dtype
        (computed in at least float32).

    References:
        Collins, "Discriminative training methods for hidden Markov models: theory
        and experiments with perceptron algorithms", EMNLP 2002.
        Checked against optax.losses.multiclass_perceptron_loss in
        tests/losses/test_margin.py.
    """
    gaps, _, out, _ = _label_gaps(scores, labels)
    return jnp.max(gaps, axis=-1).astype(out)
