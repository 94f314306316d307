"""Helpers for writing optimizer math once per leaf and mapping it over a tree."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def compute_dtype(*leaves: jax.Array | jax.ShapeDtypeStruct) -> jnp.dtype:
    """The dtype for per-leaf math: the widest of the leaves' dtypes, at least float32.

    Moments stored in bf16 are read into float32, updated there and stored back, so
    low-precision state loses precision only once per step, at the store.
    """
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(jnp.float32, *(leaf.dtype for leaf in leaves))


def map_leaves(fn: Callable[..., tuple], tree: Any, *rest: Any, n_out: int) -> tuple[Any, ...]:
    """Apply ``fn`` to matching leaves of ``tree`` and ``rest``; unzip its tuple results.

    ``fn(leaf, *rest_leaves)`` returns a tuple of ``n_out`` arrays; the result is
    ``n_out`` trees with the structure of ``tree``. ``rest`` trees must have ``tree``'s
    structure (``None`` and empty nodes in ``tree`` are skipped).
    """
    leaves, treedef = jax.tree.flatten(tree)
    try:
        rest_leaves = [treedef.flatten_up_to(other) for other in rest]
    except (ValueError, TypeError) as error:
        shapes = "\n".join(f"  {jax.tree.structure(other)}" for other in rest)
        raise ValueError(
            "The updates and the optimizer state (or params) have different tree "
            f"structures.\n  updates: {treedef}\n  others:\n{shapes}\nThe state must come "
            "from this transformation's init, called on params shaped like the updates."
        ) from error
    outs = [fn(*args) for args in zip(leaves, *rest_leaves, strict=True)]
    columns = zip(*outs, strict=True) if outs else [[] for _ in range(n_out)]
    return tuple(treedef.unflatten(list(column)) for column in columns)


def bias_correction_factor(decay: jax.typing.ArrayLike, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` as a scalar in the default float dtype.

    Computed as ``-expm1(count * log(decay))``: the direct form loses digits to
    cancellation (in float32, ``1 - 0.999**1`` is off by 1.3e-5 relative), this one
    stays within a few ulps, which keeps float32 runs within 1e-6 of float64 ones.
    """
    dtype = jnp.result_type(float)
    if isinstance(decay, int | float) and decay > 0:
        log_decay = jnp.asarray(math.log(decay), dtype)
    else:
        log_decay = jnp.log(jnp.asarray(decay, dtype))
    return -jnp.expm1(jnp.asarray(count, dtype) * log_decay)


def ema_weights(decay: jax.typing.ArrayLike, dtype) -> tuple[jax.Array, jax.Array]:
    """``(decay, 1 - decay)`` in ``dtype``, with ``1 - decay`` formed before the cast.

    For a Python float the difference is exact in double precision; casting first
    would lose digits (float32(0.999) makes ``1 - b2`` wrong by 1.3e-5 relative).
    """
    return jnp.asarray(decay, dtype), jnp.asarray(1 - decay, dtype)
