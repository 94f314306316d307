"""Per-block norm rescaling: each leaf of the tree is one block, its update scaled by the
norm of its parameter (a step size relative to the weights' size)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, init_empty_state
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import abs_sq, compute_dtype, real_dtype
from optix.tree.shards import leaf_total
from optix.tree.structure import check_same_structure


def block_norm(x: jax.Array, dtype) -> jax.Array:
    """``sqrt(sum(|x|**2))`` of a whole leaf (all blocks of a split one), in ``dtype``'s
    real dtype: the 2-norm of the flattened leaf, Frobenius for a matrix."""
    return jnp.sqrt(leaf_total(jnp.sum(abs_sq(x.astype(dtype)))))


def safe_block_norm(x: jax.Array, min_norm: jax.typing.ArrayLike, dtype) -> jax.Array:
    """``max(block_norm(x), min_norm)`` with finite gradients where the norm is 0.

    Where the floor wins the norm is taken of ones instead, so the square root's
    infinite derivative at zero never enters a gradient through ``jnp.where``
    (``optix.tree.numerics.safe_norm`` for a leaf that may be split over devices).
    """
    min_norm = jnp.asarray(min_norm, real_dtype(dtype))
    small = block_norm(x, dtype) <= min_norm
    return jnp.where(small, min_norm, block_norm(jnp.where(small, jnp.ones_like(x), x), dtype))


def scale_by_param_block_norm(min_scale: jax.typing.ArrayLike = 1e-3) -> GradientTransformation:
    """Multiply each leaf by the norm of its parameter, floored at ``min_scale``.

    For each leaf, with g the incoming update and p the parameter:

        u = g * max(norm(p), min_scale),   norm(p) = sqrt(sum(|p|**2))

    A leaf (a weight vector or matrix) is one block; the factor is computed in float32
    at least. LARS and Fromage scale steps by the weights' norm in the same way.

    Args:
        min_scale: Floor of the factor, >= 0 (keeps zero-initialised leaves moving).

    Returns:
        A stateless GradientTransformation (state ``EmptyState``); ``update`` needs params.

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks",
        arXiv:1708.03888, 2017 (layer-wise scaling by the weight norm).
        Checked against optax.scale_by_param_block_norm in
        tests/transforms/test_block_norm.py.
    """
    _checks.non_negative("scale_by_param_block_norm", min_scale=min_scale)

    def leaf(g, p):
        if g is None:
            return None
        dt = compute_dtype(g, p)
        return (g.astype(dt) * safe_block_norm(p, min_scale, dt).astype(dt)).astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="scale_by_param_block_norm"))
        check_same_structure("scale_by_param_block_norm", updates=updates, params=params)
        return jax.tree.map(leaf, updates, params, is_leaf=lambda x: x is None), state

    return GradientTransformation(init_empty_state, update)
