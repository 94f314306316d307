"""Splitting a batch axis into (microbatch index, row) and merging it back.

Microbatch i takes the rows i, i + n, i + 2n, ... of the batch (n microbatches): the
split is a column-major (Fortran-order) reshape of the batch axis. Rows that sit on one
device of a batch-sharded array stay on it, in every microbatch, so the row axis keeps
the batch's sharding and the new microbatch axis is replicated.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def _explicit_sharding(x: jax.Array) -> Any:
    """The array's ``NamedSharding`` when its mesh's axes are all explicit, else None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or not getattr(mesh, "are_all_axes_explicit", False):
        return None
    return sharding


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Split the batch axis of every leaf into ``(num_microbatches, microbatch_size)``.

    For a leaf of shape ``(..., B, ...)`` with B at ``axis`` and n = B // microbatch_size:

        out.shape = (..., n, microbatch_size, ...)
        out[..., i, k, ...] = x[..., i + n * k, ...]

    (the column-major reshape of the batch axis). Under an explicit mesh the row axis
    keeps the batch axis's sharding and the microbatch axis is unsharded.

    Args:
        tree: A pytree of arrays, each with a batch axis at ``axis``.
        microbatch_size: The number of rows per microbatch; it must divide the batch.
        axis: The position of the batch axis.

    Returns:
        The tree with every leaf reshaped.

    Raises:
        ValueError: Under an explicit mesh, if the number of shards of the batch axis
            does not divide ``microbatch_size``.
    """

    def split(x):
        shape = (*x.shape[:axis], -1, microbatch_size, *x.shape[axis + 1 :])
        sharding = _explicit_sharding(x)
        if sharding is None:
            return jnp.reshape(x, shape, order="F")
        spec = tuple(sharding.spec)
        # A spec shorter than the rank leaves the batch axis (and what follows) unsharded.
        if len(spec) > axis:
            spec = (*spec[:axis], None, spec[axis], *spec[axis + 1 :])
        shards = x.shape[axis] // sharding.shard_shape(x.shape)[axis]
        if microbatch_size % shards:
            raise ValueError(
                f"reshape_batch_axis: the {shards} shards of the batch axis must divide "
                f"microbatch_size, got microbatch_size={microbatch_size}"
            )
        out = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*spec))
        return jnp.reshape(x, shape, order="F", out_sharding=out)

    return jax.tree.map(split, tree)


def merge_microbatch_axis(x: jax.Array) -> jax.Array:
    """Undo ``reshape_batch_axis`` on axes 0 and 1: ``(n, m, ...) -> (n * m, ...)``.

    ``out[i + n * k] = x[i, k]``, so rows return to their place in the original batch.
    """
    shape = (-1, *x.shape[2:])
    sharding = _explicit_sharding(x)
    if sharding is None:
        return jnp.reshape(x, shape, order="F")
    # The microbatch axis (0) is unsharded: the row axis's sharding carries over.
    spec = jax.sharding.PartitionSpec(*tuple(sharding.spec)[1:])
    out = jax.sharding.NamedSharding(sharding.mesh, spec)
    return jnp.reshape(x, shape, order="F", out_sharding=out)
