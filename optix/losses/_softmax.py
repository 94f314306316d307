"""Shared pieces of the probabilistic losses: dtypes, masks, an accurate log-softmax.

Every loss here computes in at least float32 (bfloat16 and float16 inputs are widened
first) and returns the dtype Optax returns for the same inputs, the promotion of its
floating inputs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Axis = int | tuple[int, ...] | None


def check_floating(fn: str, **arrays: Any) -> None:
    """Each array must have a floating dtype (a TypeError names the argument)."""
    for name, value in arrays.items():
        dtype = jax.dtypes.result_type(value)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{fn}: {name} must have a floating dtype, got {name}.dtype={dtype}")


def dtypes(*values: Any) -> tuple[np.dtype, np.dtype]:
    """(returned dtype, computing dtype) of a loss of ``values``.

    The returned dtype is the standard JAX promotion of the values (Python numbers are
    weak and do not widen it), whatever promotion mode the caller runs under; the
    computing dtype is that dtype widened to at least float32.
    """
    with jax.numpy_dtype_promotion("standard"):
        out = jnp.result_type(*values)
        return out, jnp.promote_types(out, jnp.float32)


def mask(where: Any, axis: Axis, shape: tuple[int, ...]) -> jax.Array | None:
    """``where`` as booleans of ``shape``; a mask of another rank first gains ``axis``
    (a mask over the batch, as Optax's cross entropies take it)."""
    if where is None:
        return None
    where = jnp.asarray(where, bool)
    if where.ndim != len(shape) and axis is not None:
        where = jnp.expand_dims(where, axis)
    return jnp.broadcast_to(where, shape)


def mul0(w: jax.Array, v: jax.Array) -> jax.Array:
    """w * v with 0 wherever w == 0, even where v is infinite (0 * log 0 = 0).

    Derivatives are finite there too: v's cotangent is w * g = 0 and w's is 0.
    """
    return w * jnp.where(w == 0, jnp.zeros((), v.dtype), v)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _log_normalizer(shifted: jax.Array, axis: Axis) -> jax.Array:
    """log(sum(exp(shifted))) along ``axis`` for shifted <= 0 with a maximum of 0.

    With total = sum(exp(shifted)) and rest the same sum without the entries equal
    to 0 (the maxima):

        log_z = log1p(rest)    when one entry is the maximum (total - rest = 1)
        log_z = log(total)     when several are (total >= 2: no cancellation)

    log1p keeps a dominant class accurate: naive log(total) rounds 1 + rest to
    float32 first, which loses all of a rest below 6e-8 and digits of any small rest.
    """
    # exp is written twice, once per sum: XLA's CPU fusion then streams each sum over
    # the input instead of materializing exp(shifted) (2.5x faster); GPUs fuse either.
    total = jnp.sum(jnp.exp(shifted), axis, keepdims=True)
    zero = jnp.zeros((), shifted.dtype)
    rest = jnp.sum(jnp.where(shifted < 0, jnp.exp(shifted), zero), axis, keepdims=True)
    return jnp.where(total - rest > 1.5, jnp.log(total), jnp.log1p(rest))


@_log_normalizer.defjvp
def _log_normalizer_jvp(axis, primals, tangents):
    """d log_z = sum(p * d shifted) with p = exp(shifted - log_z), the softmax."""
    ((shifted,), (d_shifted,)) = primals, tangents
    log_z = _log_normalizer(shifted, axis)
    p = jnp.exp(shifted - log_z)
    return log_z, jnp.sum(p * d_shifted, axis, keepdims=True)


def log_softmax(
    x: jax.Array, axis: Axis, where: jax.Array | None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Log-probabilities of ``x`` along ``axis`` over the entries ``where`` allows.

    With m the largest allowed entry (held constant for derivatives, as it cancels)
    and shifted = x - m (-inf outside ``where``):

        log_p = shifted - log_z,   log_z = log(sum(exp(shifted)))

    with log_z computed by ``_log_normalizer`` so that every -log_p >= 0 is accurate
    on its own scale (naive logsumexp(x) - x rounds at the scale of x, 1e-7 * |x|),
    and sums of them are too. Entries of -inf and entries outside ``where`` get
    log_p = -inf with zero derivatives; a slice with nothing allowed (or only -inf)
    gets log_z = 0. Derivatives are the softmax ones, taken analytically.

    Returns:
        (log_p, m, log_z), with m and log_z keeping ``axis`` as size-1 dimensions.
    """
    neg_inf = jnp.array(-jnp.inf, x.dtype)
    m = jnp.max(x, axis, where=where, initial=neg_inf, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros((), x.dtype)))
    shifted = x - m
    if where is not None:
        shifted = jnp.where(where, shifted, neg_inf)
    log_z = _log_normalizer(shifted, axis)
    return shifted - log_z, m, log_z


def nll_terms(labels: jax.Array, log_p: jax.Array, where: jax.Array | None) -> jax.Array:
    """labels * -log_p per entry, 0 where labels == 0 or outside ``where``."""
    if where is not None:
        labels = jnp.where(where, labels, jnp.zeros((), labels.dtype))
    return mul0(labels, -log_p)
