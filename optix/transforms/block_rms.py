"""Per-block root-mean-square rescaling: each leaf of the tree is one block (Adafactor's)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, init_empty_state
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import abs_sq, compute_dtype, real_dtype
from optix.tree.shards import leaf_mean
from optix.tree.structure import check_same_structure


def block_rms(x: jax.Array, dtype) -> jax.Array:
    """``sqrt(mean(|x|**2))`` of a whole leaf (all blocks of a split one), in ``dtype``'s
    real dtype (float32 for complex64)."""
    return jnp.sqrt(leaf_mean(abs_sq(x.astype(dtype))))


def safe_block_rms(x: jax.Array, min_rms: jax.typing.ArrayLike, dtype) -> jax.Array:
    """``max(block_rms(x), min_rms)`` with finite gradients where the rms is 0.

    Where the floor wins, the rms is taken of ones instead, so the square root's
    infinite derivative at zero never enters a gradient through ``jnp.where``.
    """
    min_rms = jnp.asarray(min_rms, real_dtype(dtype))
    small = block_rms(x, dtype) <= min_rms
    safe_x = jnp.where(small, jnp.ones_like(x), x)
    return jnp.where(small, min_rms, block_rms(safe_x, dtype))


def clip_by_block_rms(threshold: jax.typing.ArrayLike) -> GradientTransformation:
    """Scale each leaf down so its root mean square is at most ``threshold``.

    For each leaf, with g the incoming update:

        u = g / max(1, rms(g) / threshold),   rms(g) = sqrt(mean(|g|**2))

    ``threshold=0`` gives zeros, also for an all-zero leaf (where Optax's 0 / 0 gives NaN).

    Args:
        threshold: The largest rms a leaf keeps, >= 0 (inf disables clipping).

    Returns:
        A stateless GradientTransformation (state ``EmptyState``).

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost", ICML 2018, arXiv:1804.04235, section 6 (update clipping).
        Checked against optax.clip_by_block_rms in tests/transforms/test_block_rms.py.
    """
    _checks.at_least("clip_by_block_rms", 0, threshold=threshold)

    def leaf(g):
        dt = compute_dtype(g)
        rms = block_rms(g, dt)
        limit = jnp.asarray(threshold, rms.dtype)
        over = rms > limit  # false for rms == 0: nothing to clip
        safe_limit = jnp.where(over, limit, jnp.ones_like(limit))
        denominator = jnp.where(over, rms / safe_limit, jnp.ones_like(rms))
        return (g.astype(dt) / denominator.astype(dt)).astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update)


def scale_by_param_block_rms(min_scale: jax.typing.ArrayLike = 1e-3) -> GradientTransformation:
    """Multiply each leaf by the root mean square of its parameter, floored at ``min_scale``.

    For each leaf, with g the incoming update and p the parameter:

        u = g * max(rms(p), min_scale),   rms(p) = sqrt(mean(|p|**2))

    This makes a step size relative to the parameter's scale (Adafactor's
    ``multiply_by_parameter_scale``).

    Args:
        min_scale: Floor of the factor, >= 0 (keeps zero-initialised leaves moving).

    Returns:
        A stateless GradientTransformation (state ``EmptyState``); ``update`` needs params.

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost", ICML 2018, arXiv:1804.04235, section 8 (relative step size).
        Checked against optax.scale_by_param_block_rms in tests/transforms/test_block_rms.py.
    """
    _checks.non_negative("scale_by_param_block_rms", min_scale=min_scale)

    def leaf(g, p):
        if g is None:
            return None
        dt = compute_dtype(g, p)
        return (g.astype(dt) * safe_block_rms(p, min_scale, dt).astype(dt)).astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="scale_by_param_block_rms"))
        check_same_structure("scale_by_param_block_rms", updates=updates, params=params)
        return jax.tree.map(leaf, updates, params, is_leaf=lambda x: x is None), state

    return GradientTransformation(init_empty_state, update)
