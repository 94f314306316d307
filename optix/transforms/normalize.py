"""Normalisation of the whole update by its global norm (to a target norm, or to 1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import EmptyState, GradientTransformation, init_empty_state
from optix.transforms.clipping import wide_global_norm
from optix.tree.leafwise import compute_dtype


def normalize_by_update_norm(
    scale_factor: jax.typing.ArrayLike = 1.0, eps: jax.typing.ArrayLike = 1e-6
) -> GradientTransformation:
    """Divide the updates by their global norm, so their norm becomes about ``scale_factor``.

    With n the L2 norm of all leaves together, for each leaf g:

        u = g / ((n + eps) / scale_factor)

    A negative ``scale_factor`` gives a descent direction of that length without a
    separate learning-rate step. The norm is accumulated in at least float32 and the
    output keeps each update's dtype.

    Args:
        scale_factor: The target norm of the output (its sign flips the direction).
        eps: Added to the norm, >= 0 (keeps a zero update finite).

    Returns:
        A stateless GradientTransformation (state ``EmptyState``).

    References:
        Checked against optax.normalize_by_update_norm in tests/transforms/test_normalize.py.
    """
    _checks.non_negative("normalize_by_update_norm", eps=eps)
    _checks.finite("normalize_by_update_norm", scale_factor=scale_factor)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        n = wide_global_norm(updates)
        divisor = (n + jnp.asarray(eps, n.dtype)) / jnp.asarray(scale_factor, n.dtype)

        def leaf(g):
            dt = compute_dtype(g)
            return (g.astype(dt) / divisor.astype(dt)).astype(g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update)


NormalizeState = EmptyState
"""State of ``normalize``: ``EmptyState`` (Optax's ``NormalizeState`` is the same alias)."""


def normalize() -> GradientTransformation:
    """Divide the updates by their global L2 norm, so the result has norm 1.

    With n the L2 norm of all leaves together, for each leaf g:

        u = g / n

    There is no epsilon: a zero update gives NaNs, as in Optax's ``normalize``
    (``normalize_by_update_norm`` adds one and a target norm). This is the adversarial
    step direction of SAM. The norm is accumulated in at least float32 and the output
    keeps each update's dtype.

    Returns:
        A stateless GradientTransformation (state ``NormalizeState``, i.e. ``EmptyState``).

    References:
        Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
        Generalization", ICLR 2021, arXiv:2010.01412.
        Checked against optax.contrib.normalize in tests/transforms/test_normalize.py.
    """

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        n = wide_global_norm(updates)

        def leaf(g):
            dt = compute_dtype(g)
            return (g.astype(dt) / n.astype(dt)).astype(g.dtype)

        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update)
