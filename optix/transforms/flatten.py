"""Run an inner transformation on all leaves concatenated into one vector."""

from __future__ import annotations

import math
from typing import Any, cast

import jax
import jax.numpy as jnp

from optix.core import GradientTransformation
from optix.transforms.conditional import as_transformation
from optix.tree.casting import dtype as tree_dtype


def flatten_tree(tree: Any) -> jax.Array:
    """All leaves raveled and concatenated, in the leaves' promoted dtype."""
    leaves = jax.tree.leaves(tree)
    dtype = tree_dtype(tree, "promote")
    if not leaves:
        return jnp.zeros([0], dtype)
    return jnp.concatenate([jnp.ravel(leaf).astype(dtype) for leaf in leaves])


def unflatten_like(tree: Any, flat: jax.Array) -> Any:
    """Split ``flat`` back into leaves shaped and typed like those of ``tree``."""
    leaves, treedef = jax.tree.flatten(tree)
    ends, end = [], 0
    for leaf in leaves:
        end += math.prod(jnp.shape(leaf))
        ends.append(end)
    pieces = jnp.split(flat, ends[:-1]) if leaves else []
    return treedef.unflatten(
        [
            piece.reshape(jnp.shape(leaf)).astype(leaf.dtype)
            for piece, leaf in zip(pieces, leaves, strict=True)
        ]
    )


def flatten(inner: GradientTransformation) -> GradientTransformation:
    """Apply ``inner`` to one vector holding every leaf, and split its output back.

    With flat(x) the concatenation of the raveled leaves of x:

        u_flat, inner_state = inner.update(flat(g), inner_state, flat(params))
        u = u_flat split and reshaped like g, each leaf in g's dtype

    Many small leaves become one array, which cuts per-leaf overhead for elementwise
    optimizers. It changes the numbers of any transform that looks at leaf shapes
    (factored, blockwise, trust-ratio and matrix optimizers see one vector), copies
    the whole model every step, and under sharding gathers it into one array. Mixed
    leaf dtypes are promoted for the concatenation (a bf16 leaf beside a float32 one
    runs in float32) and each output leaf is cast back to its update's dtype; Optax
    returns them in the promoted dtype.

    Args:
        inner: The transformation to run on the flat vector.

    Returns:
        A GradientTransformation whose state is ``inner``'s state for the flat vector.

    References:
        Checked against optax.flatten in tests/transforms/test_flatten.py.
    """
    inner = as_transformation(inner)

    def init(params):
        return inner.init(flatten_tree(params))

    def update(updates, state, params=None, **extra_args):
        flat_params = None if params is None else flatten_tree(params)
        flat_updates, state = inner.update(flatten_tree(updates), state, flat_params, **extra_args)
        # inner ran on one flat vector, so its updates are one.
        return unflatten_like(updates, cast(jax.Array, flat_updates)), state

    return GradientTransformation(init, update)
