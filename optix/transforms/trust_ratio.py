"""Layer-wise trust ratio: rescale each leaf's update by the norm of its parameter."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import EmptyState, GradientTransformation, init_empty_state
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.shards import leaf_total

ScaleByTrustRatioState = EmptyState
"""State of ``scale_by_trust_ratio``: Optax's name for ``EmptyState``."""


def clipped_norm(x: jax.Array, min_norm, max_norm=None) -> jax.Array:
    """``clip(||x||, min_norm, max_norm)`` (Frobenius norm of the whole leaf).

    The square root is taken of a positive stand-in where the sum of squares is zero,
    so the gradient through the norm stays finite at ``x == 0`` (as Optax's safe_norm).
    Inside ``optix.sharding.reduce_over`` the norm is that of the whole leaf, all blocks.
    """
    squares = leaf_total(jnp.sum(jnp.real(x * jnp.conj(x))))
    nonzero = squares > 0
    norm = jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, squares, 1)), 0)
    low = jnp.asarray(min_norm, norm.dtype)
    norm = jnp.where(norm <= low, low, norm)
    if max_norm is not None:
        high = jnp.asarray(max_norm, norm.dtype)
        norm = jnp.where(norm >= high, high, norm)
    return norm


def scale_by_trust_ratio(
    min_norm: float = 0.0,
    trust_coefficient: float = 1.0,
    eps: float = 0.0,
    *,
    max_param_norm: float | None = None,
) -> GradientTransformation:
    """Scale each leaf's update by its trust ratio ``||p|| / ||g||`` (LARS, LAMB, Fromage).

    For each leaf, with g the incoming update, p the parameter and ||.|| the Frobenius
    norm of the whole leaf:

        p_norm = min(max(||p||, min_norm), max_param_norm)
        g_norm = max(||g||, min_norm)
        ratio = trust_coefficient * p_norm / (g_norm + eps)
        ratio = 1                                 if p_norm == 0 or g_norm == 0
        u = ratio * g

    The fallback ratio of 1 keeps zero-initialised parameters moving. The clipping of
    ``p_norm`` is the LAMB paper's scaling function phi(z) = min(max(z, gamma_l),
    gamma_u); cybertronai's pytorch-lamb uses ``max_param_norm=10``.

    Args:
        min_norm: Lower clip of both norms, >= 0.
        trust_coefficient: Multiplier of the ratio (eta in LARS), >= 0.
        eps: Added to the update's norm in the denominator, >= 0.
        max_param_norm: Upper clip of the parameter's norm, > 0; ``None`` for none.

    Returns:
        A GradientTransformation whose state is ``ScaleByTrustRatioState`` (an
        ``EmptyState``); ``update`` needs ``params``.

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks",
        arXiv:1708.03888, 2017. You et al., "Large Batch Optimization for Deep Learning:
        Training BERT in 76 Minutes", ICLR 2020, arXiv:1904.00962.
        Checked against optax.scale_by_trust_ratio in tests/transforms/test_trust_ratio.py.
    """
    fn = "scale_by_trust_ratio"
    _checks.non_negative(fn, min_norm=min_norm, trust_coefficient=trust_coefficient, eps=eps)
    if max_param_norm is not None:
        _checks.positive(fn, max_param_norm=max_param_norm)

    def leaf(g, p):
        dt = compute_dtype(g, p)
        real = jnp.finfo(dt).dtype
        g_ = g.astype(dt)
        p_norm = clipped_norm(p.astype(dt), min_norm, max_param_norm)
        g_norm = clipped_norm(g_, min_norm)
        ratio = jnp.asarray(trust_coefficient, real) * p_norm / (g_norm + jnp.asarray(eps, real))
        ratio = jnp.where((p_norm == 0) | (g_norm == 0), jnp.ones([], real), ratio)
        return ((ratio.astype(dt) * g_).astype(g.dtype),)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        (updates,) = map_leaves(leaf, updates, params, n_out=1)
        return updates, state

    return GradientTransformation(init_empty_state, update)
