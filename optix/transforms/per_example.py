"""Per-example clipping for differentially private SGD: clip each example, then sum.

These are functions of a batch of per-example gradients (every leaf has the batch on
axis 0, as ``jax.vmap(jax.grad(loss))`` gives them), not transformations.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.transforms.clipping import wide_global_norm
from optix.tree.leafwise import compute_dtype


def _check_clip(fn: str, name: str, value: Any) -> None:
    # inf is a valid bound here (no clipping), so _checks.non_negative does not fit.
    _checks.at_least(fn, 0, **{name: value})


def _check_batch_axis(fn: str, grads: Any) -> None:
    leaves = jax.tree.leaves(grads)
    batch = {jnp.shape(g)[0] if jnp.ndim(g) else None for g in leaves}
    if len(batch) != 1 or None in batch:
        raise ValueError(
            f"{fn}: every leaf of grads must hold one gradient per example along axis 0 "
            f"(the same batch size everywhere), got shapes {jax.tree.map(jnp.shape, grads)}"
        )


def _weighted_sum(weights: jax.Array, g: jax.Array) -> jax.Array:
    """``sum_i weights[i] * g[i]``; integer gradients give a floating sum."""
    dt = compute_dtype(g)
    out = g.dtype if jnp.issubdtype(g.dtype, jnp.inexact) else dt
    total = jnp.tensordot(
        weights.astype(dt), g.astype(dt), axes=1, precision=jax.lax.Precision.HIGHEST
    )
    return total.astype(out)


def per_example_global_norm_clip(
    grads: Any, l2_norm_clip: jax.typing.ArrayLike
) -> tuple[Any, jax.Array]:
    """Clip each example's gradient to global norm ``l2_norm_clip``, then sum over examples.

    For each example i, with n_i the L2 norm of all its leaves together:

        m_i = min(l2_norm_clip / n_i, 1)     (1 where that is 0/0 or inf/inf)
        u = sum_i m_i * g_i                   for each leaf g

    Norms and sums are computed in at least float32.

    Args:
        grads: A tree of per-example gradients, every leaf with the batch on axis 0.
        l2_norm_clip: The largest norm of one example's gradient, >= 0 (inf: no clipping).

    Returns:
        ``(clipped_sum, num_clipped)``: the sum of the clipped gradients (the tree
        without the batch axis) and how many examples were scaled down.

    References:
        Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
        arXiv:1607.00133, Algorithm 1.
        Checked against optax.per_example_global_norm_clip in
        tests/transforms/test_per_example.py.
    """
    fn = "per_example_global_norm_clip"
    _check_clip(fn, "l2_norm_clip", l2_norm_clip)
    _check_batch_axis(fn, grads)
    norms = jax.vmap(wide_global_norm)(grads)
    ratio = jnp.asarray(l2_norm_clip, norms.dtype) / norms
    multipliers = jnp.nan_to_num(jnp.minimum(ratio, jnp.ones([], norms.dtype)), nan=1.0)
    num_clipped = jnp.sum(multipliers < 1)
    return jax.tree.map(lambda g: _weighted_sum(multipliers, g), grads), num_clipped


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: jax.typing.ArrayLike, uniform: bool = True
) -> tuple[Any, Any]:
    """Clip each example's gradient leaf by leaf (layer by layer), then sum over examples.

    Each of the K leaves is clipped per example as by ``per_example_global_norm_clip``,
    with its own bound C_k, where C = ``global_l2_norm_clip`` and D_k is the number of
    entries of one example's leaf k (D their total):

        C_k = C / sqrt(K)          if uniform
        C_k = C * sqrt(D_k / D)    otherwise

    Either way ``sum_k C_k**2 = C**2``, so the clipped example's global norm is at most C.

    Args:
        grads: A tree of per-example gradients, every leaf with the batch on axis 0.
        global_l2_norm_clip: The overall bound C, >= 0 (inf: no clipping).
        uniform: Split C evenly over the leaves, or in proportion to their sizes.

    Returns:
        ``(clipped_sum, num_clipped)``: two trees shaped like ``grads``' structure,
        the per-leaf sums of the clipped gradients and the per-leaf counts of
        examples scaled down.

    References:
        McMahan, Ramage, Talwar & Zhang, "Learning Differentially Private Recurrent
        Language Models", ICLR 2018, arXiv:1710.06963.
        Checked against optax.per_example_layer_norm_clip in
        tests/transforms/test_per_example.py.
    """
    fn = "per_example_layer_norm_clip"
    _check_clip(fn, "global_l2_norm_clip", global_l2_norm_clip)
    _check_batch_axis(fn, grads)
    leaves, treedef = jax.tree.flatten(grads)
    sizes = [math.prod(jnp.shape(g)[1:]) for g in leaves]
    if uniform:
        fractions = [1.0 / len(leaves)] * len(leaves)
    else:
        fractions = [size / sum(sizes) for size in sizes]
    results = [
        per_example_global_norm_clip(g, global_l2_norm_clip * fraction**0.5)
        for g, fraction in zip(leaves, fractions, strict=True)
    ]
    sums, counts = zip(*results, strict=True)
    return treedef.unflatten(list(sums)), treedef.unflatten(list(counts))
