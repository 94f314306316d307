"""Sparsemax losses: the Fenchel-Young losses of the Gini entropy (binary and multiclass).

The loss is zero exactly when sparsemax (the Euclidean projection of the scores onto
the simplex) puts all its mass on the label, and its gradient is
``sparsemax(scores) - one_hot(label)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix.losses import _arrays
from optix.losses.margin import _class_mask
from optix.projections import projection_simplex


def sparsemax_loss(logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
    """Binary sparsemax loss, elementwise.

    With z = -logits where the label is 1 (any nonzero label) and z = logits where
    it is 0:

        loss = 0                 if z <= -1
               (z + 1)**2 / 4    if -1 < z < 1
               z                 if z >= 1

    (``jax.nn.sparse_plus(z)``). It is zero exactly when
    ``jax.nn.sparse_sigmoid(logits) == labels``; its derivative in the logits is
    ``sparse_sigmoid(logits) - labels``.

    Args:
        logits: Scores of the model, any shape.
        labels: Labels in {0, 1}, broadcastable against ``logits``.

    Returns:
        The loss of each element, in ``logits``' floating dtype (computed in at least
        float32); infinite logits give finite derivatives.

    References:
        Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 2020,
        Section 4.4 (arXiv:1901.02324).
        Checked against optax.losses.sparsemax_loss in tests/losses/test_sparsemax.py.
    """
    logits, labels = _arrays.as_arrays(logits, labels)
    out, wide = _arrays.dtypes(logits)
    x = logits.astype(wide)
    z = jnp.where(labels != 0, -x, x)
    # Clipped before squaring, so +-inf never reaches the quadratic branch.
    quadratic = (jnp.clip(z, -1, 1) + 1) ** 2 / 4
    loss = jnp.where(z >= 1, z, quadratic)
    return loss.astype(out if jnp.issubdtype(out, jnp.floating) else wide)


def _sparsemax_rows(s: jax.Array, is_label: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The loss of each row of ``s`` ([rows, classes]) and sparsemax of the row.

    With z = s - max(s), p = projection_simplex(z), tau the threshold (p = max(z - tau,
    0), and tau = -max(p) since max(z) = 0) and e the one-hot label y:

        loss = max_q <q, z> - |q|**2 / 2 + 1 / 2 - z[y]            (q on the simplex)
             = |p - e|**2 / 2 + max(tau - z[y], 0) * [p[y] == 0]

    The second form adds two non-negative terms: no cancellation when p is close to
    e (the first form subtracts numbers near 1/2 there). If y is in the support,
    z[y] = p[y] + tau and the first form reduces to |p - e|**2 / 2; if not, p[y] = 0
    and it is |p - e|**2 / 2 + tau - z[y], with tau >= z[y].
    """
    top = jnp.max(s, axis=-1, keepdims=True)
    z = s - jnp.where(jnp.isfinite(top), top, 0)
    p = jax.vmap(projection_simplex)(z)
    e = is_label.astype(p.dtype)
    tau = -jnp.max(p, axis=-1)
    z_label = jnp.sum(jnp.where(is_label, z, 0), axis=-1)
    p_label = jnp.sum(p * e, axis=-1)
    outside = jnp.where(p_label > 0, 0, jnp.maximum(tau - z_label, 0))
    return jnp.sum((p - e) ** 2, axis=-1) / 2 + outside, p


@jax.custom_jvp
def _sparsemax_loss_rows(s: jax.Array, is_label: jax.Array) -> jax.Array:
    return _sparsemax_rows(s, is_label)[0]


@_sparsemax_loss_rows.defjvp
def _sparsemax_loss_rows_jvp(primals, tangents):
    """d loss = <p - e, d s>: the Fenchel-Young gradient, exact and finite for every
    finite loss (masked classes, p = 0 there, get zero)."""
    s, is_label = primals
    ds, _ = tangents
    loss, p = _sparsemax_rows(s, is_label)
    grad = p - is_label.astype(p.dtype)
    return loss, jnp.sum(grad * ds, axis=-1)


def multiclass_sparsemax_loss(
    scores: jax.typing.ArrayLike, labels: jax.typing.ArrayLike
) -> jax.Array:
    """Multiclass sparsemax loss, over the last axis.

    With s = scores, y = labels, e the one-hot label and p = sparsemax(s), the
    Euclidean projection of s onto the simplex:

        loss = max_{q in simplex} (<q, s> - |q|**2 / 2) + 1 / 2 - s[y]
             = <p, s - s[y]> + (1 - |p|**2) / 2

    computed in the cancellation-free form |p - e|**2 / 2 + max(tau - s[y], 0) (the
    second term only when p[y] = 0; tau is the projection's threshold). The loss is
    zero exactly when p = e and its gradient is ``p - e``.

    Args:
        scores: Scores of shape ``[..., num_classes]`` (Optax takes ``[batch,
            num_classes]`` only); ``-inf`` entries mask classes out.
        labels: Integer labels in [0, num_classes), of shape ``[...]``.

    Returns:
        The loss of each row, shape ``[...]``, in ``scores``' floating dtype
        (computed in at least float32).

    References:
        Martins & Astudillo, "From softmax to sparsemax: a sparse model of attention
        and multi-label classification", ICML 2016 (arXiv:1602.02068).
        Checked against optax.losses.multiclass_sparsemax_loss in
        tests/losses/test_sparsemax.py.
    """
    scores, labels = _arrays.as_arrays(scores, labels)
    out, wide = _arrays.dtypes(scores)
    shape = jnp.broadcast_shapes(scores.shape[:-1], labels.shape) + scores.shape[-1:]
    s = jnp.broadcast_to(scores, shape).astype(wide).reshape(-1, shape[-1])
    is_label = _class_mask(labels, shape).reshape(-1, shape[-1])
    loss = _sparsemax_loss_rows(s, is_label).reshape(shape[:-1])
    return loss.astype(out if jnp.issubdtype(out, jnp.floating) else wide)
