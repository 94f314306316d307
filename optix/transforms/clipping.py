"""Clipping: bound the size of the updates."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import EmptyState, GradientTransformation, init_empty_state
from optix.tree.leafwise import compute_dtype
from optix.tree.math import norm

ClipByGlobalNormState = EmptyState


def wide_global_norm(updates) -> jax.Array:
    """The global L2 norm of ``updates``, each leaf squared and summed in >= float32.

    Summing bf16 squares in bf16 would lose most digits of the norm of a large tree.
    """
    return norm(jax.tree.map(lambda u: u.astype(compute_dtype(u)), updates))


def clip_by_global_norm(max_norm: jax.typing.ArrayLike) -> GradientTransformation:
    """Rescale the updates so that their global norm is at most ``max_norm``.

    With n the L2 norm of all leaves together, for each leaf g:

        u = g                    if n < max_norm
        u = g / n * max_norm     otherwise

    This is Optax's rule: no epsilon, and updates already inside the ball pass
    unchanged. The norm is accumulated in at least float32.

    Args:
        max_norm: The largest global norm of the output, > 0 (inf disables clipping).

    Returns:
        A GradientTransformation whose state is ``ClipByGlobalNormState`` (empty).

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
        networks", ICML 2013, arXiv:1211.5063.
        Checked against optax.clip_by_global_norm in tests/transforms/test_clipping.py.
    """
    _checks.positive("clip_by_global_norm", max_norm=max_norm)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        g_norm = wide_global_norm(updates)
        inside = g_norm < jnp.asarray(max_norm, g_norm.dtype)

        def clip(g):
            dt = compute_dtype(g)
            n, limit = g_norm.astype(dt), jnp.asarray(max_norm, dt)
            return jnp.where(inside, g, (g.astype(dt) / n * limit).astype(g.dtype))

        return jax.tree.map(clip, updates), state

    return GradientTransformation(init_empty_state, update)
