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


def real_dtype(dtype: Any) -> jnp.dtype:
    """The real dtype of ``dtype``: float32 for complex64, ``dtype`` itself if real."""
    dtype = jnp.dtype(dtype)
    return jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2`` in ``x``'s real dtype: ``x * x``, or ``re**2 + im**2`` for complex ``x``.

    The second moments of complex gradients are ``g * conj(g)``, real and >= 0; ``g * g``
    would be complex and wrong.
    """
    if jnp.iscomplexobj(x):
        return jnp.square(x.real) + jnp.square(x.imag)
    return x * x


def scaled_abs_sq(scale: jax.Array, x: jax.Array) -> jax.Array:
    """``scale * |x|**2``; for real ``x`` computed as ``scale * x * x``, the rounding of
    the reference implementations (``(scale * x) * x``, not ``scale * (x * x)``)."""
    if jnp.iscomplexobj(x):
        return scale * abs_sq(x)
    return scale * x * x


def real_part(x: jax.Array) -> jax.Array:
    """``x`` read as a real array: the real part of a complex one.

    Moment slots of complex parameters have the parameters' complex dtype (as in Optax)
    but hold real values (``|g|**2`` and the like); this reads them back as reals.
    """
    return x.real if jnp.iscomplexobj(x) else x


def check_complex_slot(update: jax.Array, slot: jax.Array, dtype_arg: str) -> None:
    """A state slot that averages complex updates must be complex: refuse a real one.

    Storing a complex average in a real slot would drop its imaginary part.
    """
    if jnp.iscomplexobj(update) and not jnp.iscomplexobj(slot):
        raise TypeError(
            f"a running average of complex updates needs a complex dtype, got "
            f"{dtype_arg}={jnp.dtype(slot.dtype).name}; pass a complex {dtype_arg} (such as "
            "complex64) or None for the params' dtype"
        )


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
    A negative decay (negative momentum) uses ``|decay|**count`` and the sign of
    ``(-1)**count``.
    """
    dtype = jnp.result_type(float)
    count = jnp.asarray(count, dtype)
    if isinstance(decay, int | float) and decay > 0:
        return -jnp.expm1(count * jnp.asarray(math.log(decay), dtype))
    if isinstance(decay, int | float) and decay < 0:
        log_abs, negative = jnp.asarray(math.log(-decay), dtype), jnp.asarray(True)
    else:
        decay = jnp.asarray(decay, dtype)
        log_abs, negative = jnp.log(jnp.abs(decay)), decay < 0
    positive_form = -jnp.expm1(count * log_abs)  # 1 - |decay|**count
    odd = jnp.mod(count, 2) == 1
    return jnp.where(negative & odd, 2 - positive_form, positive_form)


def ema_weights(decay: jax.typing.ArrayLike, dtype) -> tuple[jax.Array, jax.Array]:
    """``(decay, 1 - decay)`` in ``dtype``, with ``1 - decay`` formed before the cast.

    For a Python float the difference is exact in double precision; casting first
    would lose digits (float32(0.999) makes ``1 - b2`` wrong by 1.3e-5 relative).
    """
    return jnp.asarray(decay, dtype), jnp.asarray(1 - decay, dtype)
