"""Exponential moving averages of gradient moments over pytrees, and bias correction.

Each leaf is updated in at least float32 (``optix.tree.leafwise.compute_dtype``)
and returned in the standard promotion of the update's and the moment's dtypes, so
bf16 moments lose precision once, when stored, and mixed bf16/f32 trees also work
under strict dtype promotion. ``None`` update leaves give ``None`` moments.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optix.tree.casting import _cast_scalar, _promoted_dtype
from optix.tree.leafwise import (
    abs_sq,
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    real_dtype,
    real_part,
)


def _is_none(x: Any) -> bool:
    return x is None


def _ema(term: jax.Array, moment: jax.Array, decay: Any, out: jnp.dtype) -> jax.Array:
    """``(1 - decay) * term + decay * moment`` in the compute dtype, returned as ``out``."""
    work = compute_dtype(term, moment)
    decay, keep = ema_weights(decay, work)
    return (keep * term.astype(work) + decay * moment.astype(work)).astype(out)


def update_moment(updates: Any, moments: Any, decay: Any, order: int | float) -> Any:
    """EMA of the ``order``-th power of the updates: ``(1 - decay) * g**order + decay * m``."""

    def leaf(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g, m = jnp.asarray(g), jnp.asarray(m)
        out = _promoted_dtype(g.dtype, m.dtype)
        return _ema(g.astype(compute_dtype(g, m)) ** order, m, decay, out)

    return jax.tree.map(leaf, updates, moments, is_leaf=_is_none)


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: int | float) -> Any:
    """EMA of ``|g|**order`` per element; for real updates the same as ``update_moment``.

    For complex updates the moment is real: ``|g|**order`` is computed as
    ``(re**2 + im**2)**(order / 2)`` without a square root.
    """

    def leaf(g: Any, m: Any) -> Any:
        if g is None:
            return None
        g, m = jnp.asarray(g), jnp.asarray(m)
        out = _promoted_dtype(real_dtype(g.dtype), m.dtype)
        m = real_part(m)  # a complex slot holds the real average of |g|**order
        g = g.astype(compute_dtype(g, m))
        if jnp.iscomplexobj(g):
            half = order / 2
            # An integer exponent lowers to repeated multiplication instead of exp/log.
            term = abs_sq(g) ** (int(half) if float(half).is_integer() else half)
        else:
            term = g**order
        return _ema(term, m, decay, out)

    return jax.tree.map(leaf, updates, moments, is_leaf=_is_none)


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    """Decayed running maximum of ``|g|``: ``max(|g| + eps, decay * m)``."""

    def leaf(g: Any, m: Any) -> Any:
        if g is None:
            return None
        abs_g, m = jnp.abs(jnp.asarray(g)), jnp.asarray(m)
        out = _promoted_dtype(abs_g.dtype, m.dtype)
        m = real_part(m)  # a complex slot holds the real maximum of |g|
        work = compute_dtype(abs_g, m)
        grown = abs_g.astype(work) + _cast_scalar(eps, work)
        decayed = _cast_scalar(decay, work) * m.astype(work)
        return jnp.maximum(grown, decayed).astype(out)

    return jax.tree.map(leaf, updates, moments, is_leaf=_is_none)


def bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    """Divide every leaf of ``moment`` by ``1 - decay**count``.

    The factor is computed accurately in the default float dtype (see
    ``optix.tree.leafwise.bias_correction_factor``), then cast to each leaf's
    dtype, so bf16 moments stay bf16.
    """
    factor = bias_correction_factor(decay, count)
    return jax.tree.map(lambda m: m / factor.astype(jax.typeof(m).dtype), moment)
