"""Input checks and dtypes shared by the regression, ranking and segmentation losses.

A loss returns the dtype its inputs promote to (as Optax does) but computes in at
least float32, so bf16 and float16 inputs are summed and normalised in float32 and
rounded once, at the end.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.core
import jax.numpy as jnp
from jax import lax


def as_arrays(*values: Any) -> tuple[jax.Array, ...]:
    """Each value as a JAX array (lists and NumPy arrays accepted), ``None`` kept (typed as
    an array: the callers test optional arguments for ``None`` themselves)."""
    arrays: list[Any] = [None if v is None else jnp.asarray(v) for v in values]
    return tuple(arrays)


def check_floating(fn: str, **arrays: jax.Array) -> None:
    """Each array must have a floating dtype (``TypeError`` otherwise)."""
    for name, array in arrays.items():
        if not jnp.issubdtype(array.dtype, jnp.floating):
            raise TypeError(
                f"{fn}: {name} must have a floating dtype, got {name}.dtype={array.dtype}"
            )


def check_same_shape(fn: str, predictions: jax.Array, targets: jax.Array) -> None:
    """``targets`` must have the shape of ``predictions`` (``ValueError`` otherwise)."""
    if predictions.shape != targets.shape:
        raise ValueError(
            f"{fn}: targets must have the shape of predictions {predictions.shape}, "
            f"got targets.shape={targets.shape}"
        )


def dtypes(*arrays: jax.Array) -> tuple[jnp.dtype, jnp.dtype]:
    """The result dtype of ``arrays`` and the dtype to compute in (at least float32).

    The result dtype follows JAX's promotion of the inputs under the active promotion
    mode, so a strict mode refuses mixed inputs as it would for ``predictions - targets``.
    """
    out = jnp.result_type(*arrays)
    return out, wide_dtype(out)


def wide_dtype(*dtypes: Any) -> jnp.dtype:
    """The widest of ``dtypes`` and float32 (float64 stays float64)."""
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(jnp.float32, *dtypes)


def is_concrete(array: Any) -> bool:
    """Whether the array holds values now (not a tracer under ``jit``/``grad``/``vmap``)."""
    return not isinstance(array, jax.core.Tracer)


def unit_vectors(x: jax.Array, epsilon, axis, where) -> jax.Array:
    """x / sqrt(max(sum(x**2), epsilon)), the sum along ``axis`` over ``where``.

    The sum is taken of (x / s)**2 with s = max|x|, then scaled back, so vectors of
    entries near 1e-30 or 1e30 keep their direction in float32 instead of underflowing
    to 0/0 or overflowing to inf/inf.
    """
    s = lax.stop_gradient(jnp.max(jnp.abs(x), axis=axis, where=where, initial=0.0, keepdims=True))
    nonzero = s > 0
    s_safe = jnp.where(nonzero, s, 1.0)
    scaled = jnp.sum(jnp.square(x / s_safe), axis=axis, where=where, keepdims=True)
    # scaled >= 1 wherever s > 0; the inner where keeps sqrt's derivative finite at 0.
    norm = jnp.where(nonzero, s_safe * jnp.sqrt(jnp.where(nonzero, scaled, 1.0)), 0.0)
    return x / jnp.maximum(norm, jnp.sqrt(epsilon))
