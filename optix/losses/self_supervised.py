"""Self-supervised losses: NT-Xent (contrastive) and the triplet margin loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from optix import _checks
from optix.losses import _arrays


def ntxent(
    embeddings: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    temperature: jax.typing.ArrayLike = 0.07,
) -> jax.Array:
    """Normalized temperature-scaled cross entropy (NT-Xent), averaged over positive pairs.

    Embeddings i and j form a positive pair when i != j and labels[i] == labels[j], and
    a negative pair when labels differ. With s[i, j] the cosine similarity of rows i
    and j (squared norms floored at the dtype's machine epsilon) divided by
    ``temperature``, and N[i] the set of negatives of i:

        loss[i, j] = -log(exp(s[i, j]) / (exp(s[i, j]) + sum_{k in N[i]} exp(s[i, k])))
                   = softplus(logsumexp_{k in N[i]} s[i, k] - s[i, j])
        ntxent = mean of loss[i, j] over positive pairs

    The softplus form is exact for any temperature and gives finite gradients for
    zero embeddings and for rows without negatives. A batch without any positive pair
    has loss 0 (Optax returns NaN).

    Args:
        embeddings: Floating array ``[batch, features]``.
        labels: Array ``[batch]``; equal labels mark positive pairs, e.g.
            ``[0, 0, 1, 1]`` for two pairs of views.
        temperature: Divisor of the similarities, > 0 (default 0.07).

    Returns:
        The scalar loss, in the embeddings' dtype (computed in at least float32).

    References:
        Chen et al., A Simple Framework for Contrastive Learning of Visual
        Representations, 2020 (arXiv:2002.05709).

        Checked against np_ntxent (a float64 NumPy transliteration) and optax in
        tests/losses/test_self_supervised.py.
    """
    _checks.positive("ntxent", temperature=temperature)
    embeddings, labels = _arrays.as_arrays(embeddings, labels)
    _arrays.check_floating("ntxent", embeddings=embeddings)
    if labels.shape[:1] != embeddings.shape[:1]:
        raise ValueError(
            "ntxent: labels must have the leading dimension of embeddings "
            f"{embeddings.shape[:1]}, got labels.shape={labels.shape}"
        )
    out, wide = _arrays.dtypes(embeddings)
    epsilon = jnp.asarray(jnp.finfo(out).eps, wide)
    units = _arrays.unit_vectors(embeddings.astype(wide), epsilon, -1, None)
    similarity = jnp.matmul(units, units.T, precision=lax.Precision.HIGHEST)
    s = similarity / jnp.asarray(temperature, wide)

    same = labels[:, None] == labels[None, :]
    negative = ~same
    positive = same & ~jnp.eye(same.shape[0], dtype=bool)

    # logsumexp over each row's negatives, -inf for a row without any.
    top = lax.stop_gradient(jnp.max(s, axis=1, where=negative, initial=-jnp.inf, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    total = jnp.sum(jnp.exp(jnp.where(negative, s - top, -jnp.inf)), axis=1, keepdims=True)
    has_negative = total > 0
    log_negatives = jnp.where(
        has_negative, jnp.log(jnp.where(has_negative, total, 1.0)) + top, -jnp.inf
    )
    pair_losses = jax.nn.softplus(log_negatives - s)
    count = jnp.sum(positive)
    loss = jnp.sum(pair_losses, where=positive) / jnp.maximum(count, 1).astype(wide)
    return loss.astype(out)


def _p_norm(x: jax.Array, p, eps, axis: int) -> jax.Array:
    """(sum(|x|**p) + eps) ** (1 / p) along ``axis``, without overflow or underflow.

    Entries are divided by s = max|x| when s > 1 (large entries would overflow) or
    when eps = 0 (tiny ones would underflow to a zero norm), and the norm is scaled
    back: (sum(|x|**p) + eps) ** (1/p) = s * (sum(|x / s|**p) + eps / s**p) ** (1/p).
    """
    size = jnp.abs(x)
    top = lax.stop_gradient(jnp.max(size, axis=axis, keepdims=True))
    exact = eps == 0
    s = jnp.where((top > 1) | (exact & (top > 0)), top, 1.0)
    total = jnp.sum((size / s) ** p, axis=axis, keepdims=True)
    total = total + jnp.where(exact, 0.0, eps / jnp.where(exact, 1.0, s**p))
    positive = total > 0
    # The inner where keeps the derivative finite at a zero distance with eps = 0.
    root = jnp.where(positive, jnp.where(positive, total, 1.0) ** (1 / p), 0.0)
    return jnp.squeeze(s * root, axis=axis)


def triplet_margin_loss(
    anchors: jax.typing.ArrayLike,
    positives: jax.typing.ArrayLike,
    negatives: jax.typing.ArrayLike,
    axis: int = -1,
    norm_degree: jax.typing.ArrayLike = 2,
    margin: jax.typing.ArrayLike = 1.0,
    eps: jax.typing.ArrayLike = 1e-6,
) -> jax.Array:
    """Triplet margin loss: anchors nearer their positives than their negatives.

    With distances along ``axis``, p = ``norm_degree``:

        d(x, y) = (sum(|x - y|**p) + eps) ** (1 / p)
        loss = max(d(anchors, positives) - d(anchors, negatives) + margin, 0)

    The absolute value makes odd degrees (p = 1, 3) true p-norm distances, as in
    PyTorch (Optax omits it, which only agrees for even p). ``eps`` is added inside
    the root as in Optax (PyTorch adds it to each difference instead; the two agree
    at eps = 0). The distance's gradient is finite at zero distance.

    Args:
        anchors: Floating array ``[batch, features]``.
        positives: Floating array shaped like ``anchors``.
        negatives: Floating array shaped like ``anchors``.
        axis: Axis of the features (default -1).
        norm_degree: Degree p of the norm, > 0 (default 2).
        margin: Margin between the two distances (default 1).
        eps: Added to the sum of powers, >= 0 (default 1e-6).

    Returns:
        The losses, with ``axis`` removed.

    References:
        Balntas et al., Learning local feature descriptors with triplets and shallow
        convolutional neural networks, BMVC 2016.

        Checked against torch.nn.functional.triplet_margin_loss and optax in
        tests/losses/test_self_supervised.py.
    """
    fn = "triplet_margin_loss"
    _checks.positive(fn, norm_degree=norm_degree)
    _checks.non_negative(fn, eps=eps)
    anchors, positives, negatives = _arrays.as_arrays(anchors, positives, negatives)
    _arrays.check_floating(fn, anchors=anchors, positives=positives, negatives=negatives)
    out, wide = _arrays.dtypes(anchors, positives, negatives)
    a, pos, neg = (x.astype(wide) for x in (anchors, positives, negatives))
    eps = jnp.asarray(eps, wide)
    p = norm_degree if isinstance(norm_degree, int) else jnp.asarray(norm_degree, wide)
    gap = _p_norm(a - pos, p, eps, axis) - _p_norm(a - neg, p, eps, axis)
    return jnp.maximum(gap + jnp.asarray(margin, wide), 0.0).astype(out)
