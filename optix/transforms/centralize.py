"""Gradient centralization: remove each output unit's mean from its weight gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, init_empty_state
from optix.tree.leafwise import compute_dtype


def centralize(*, min_ndim: int = 2, channel_axis: int = 0) -> GradientTransformation:
    """Subtract from each weight gradient its mean over every axis but the channel axis.

    Leaves with fewer than ``min_ndim`` axes (biases, scales) pass unchanged. For each
    leaf g with g.ndim >= min_ndim, c = ``channel_axis`` and A the other axes:

        u = g - mean(g, axis=A)       (kept broadcastable along c)

    The defaults are Optax's ``centralize`` and Ranger's, made for PyTorch layouts, where
    axis 0 indexes output units (Linear (out, in), Conv (out, in, kh, kw)). Flax kernels
    put the output units last (Dense (in, out), Conv (kh, kw, in, out)): centralizing
    them as the paper does needs ``channel_axis=-1``; axis 0 there averages over the
    output units instead. ``min_ndim=4`` centralizes convolution kernels only (Ranger's
    ``gc_conv_only``).

    Args:
        min_ndim: The fewest axes a leaf needs to be centralized, an int >= 2.
        channel_axis: The axis indexing output units, kept out of the mean.

    Returns:
        A GradientTransformation whose state is ``EmptyState``.

    References:
        Yong, Huang, Hua & Zhang, "Gradient Centralization: A New Optimization Technique
        for Deep Neural Networks", ECCV 2020, arXiv:2004.01461.
        Checked against optax.centralize in tests/transforms/test_centralize.py.
    """
    _checks.integer_at_least("centralize", "min_ndim", min_ndim, 2)
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, int):
        raise TypeError(f"centralize: channel_axis must be an int, got {channel_axis=!r}")

    def leaf(g):
        if g.ndim < min_ndim:
            return g
        if not -g.ndim <= channel_axis < g.ndim:
            raise ValueError(
                f"centralize: channel_axis must be an axis of every leaf with >= {min_ndim} "
                f"axes, got channel_axis={channel_axis} for a leaf of shape {g.shape}"
            )
        keep = channel_axis % g.ndim
        axes = tuple(i for i in range(g.ndim) if i != keep)
        wide = g.astype(compute_dtype(g))
        return (wide - jnp.mean(wide, axis=axes, keepdims=True)).astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update)
