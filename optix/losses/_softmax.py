"""Shared pieces of the probabilistic losses: dtypes, masks, and the softmax cross entropies.

Every loss here computes in at least float32 (bfloat16 and float16 inputs are widened
inside the fused passes) and returns the dtype Optax returns for the same inputs, the
promotion of its floating inputs.

The two cross entropies (against distributions, against integer labels) are laid out
for XLA's fusion, on CPU in particular, where a fused reduction holds only arithmetic
(add, subtract, multiply, divide, max, exp, log, convert): no compare or select touches
the whole array unless ``where`` is given. The forward pass is a reduction for the
largest logit m, one for sum(exp(x - m)) and, for distributions, one for the weighted
sum of log_z - (x - m); the gradient is a custom JVP whose transpose is one elementwise
pass, softmax * sum(labels) - labels, reusing exp(x - m) from the forward sum. Which
expressions are shared between passes, and how the label's -1 enters the gradient,
follow what XLA then fuses; benchmarks/losses.py times them and counts the fused ops.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

Axis = int | tuple[int, ...] | None

# A weighted sum of 2**64 or more is reported as +inf: with logits of -inf counted as
# -max_float, it can only come from a label of 1e-19 or more on such a class (or from
# logits 1e19 apart), and a zero label there gives 0 * finite = 0.
INFINITE = 2.0**64

# From this many rows (entries outside the class axes) on, XLA:CPU fuses the reductions
# of a cross entropy into one loop over the rows; below it, it runs them one by one.
ROWS_FUSED = 4096


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` as a tuple of non-negative axes (None: all of them)."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


def _rows(shape: tuple[int, ...], axis: Axis) -> int:
    """The number of slices along ``axis`` (the product of the other dimensions)."""
    classes = _axes(axis, len(shape))
    return math.prod(n for i, n in enumerate(shape) if i not in classes)


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


def largest(x: jax.Array, axis: Axis, where: jax.Array | None, dtype: Any) -> jax.Array:
    """m: the largest entry of ``x`` that ``where`` allows along ``axis`` (kept as size-1
    dimensions), at least -max_float of x's dtype (finite when every entry is -inf, so
    that x - m is -inf there, not NaN), in ``dtype``, held constant for derivatives (it
    cancels). Taken in x's own dtype (max is exact), as one reduction that starts from
    -max_float: XLA then fuses it with the pass that follows it."""
    lowest = np.array(-jnp.finfo(x.dtype).max, x.dtype)
    x = jax.lax.stop_gradient(x)
    if where is not None:
        x = jnp.where(where, x, lowest)
    axes = _axes(axis, x.ndim)
    m = jax.lax.reduce(x, lowest, jax.lax.max, axes)
    return jnp.expand_dims(m, axes).astype(dtype)


def shifted(x: jax.Array, m: jax.Array, where: jax.Array | None, dtype: Any) -> jax.Array:
    """s = x - m in ``dtype``: <= 0, -inf for logits of -inf and outside ``where``."""
    s = x.astype(dtype) - m
    if where is not None:
        s = jnp.where(where, s, jnp.array(-jnp.inf, dtype))
    return s


def take(x: jax.Array, index: jax.Array, axis: int, dtype: Any) -> jax.Array:
    """x[index] along ``axis`` in ``dtype``. Logits to be widened are gathered as their
    bits: gathering x itself makes XLA store the whole widened array."""
    if x.dtype == dtype:
        return jnp.take_along_axis(x, index, axis)
    bits = jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * x.dtype.itemsize}"))
    picked = jnp.take_along_axis(bits, index, axis)
    return jax.lax.bitcast_convert_type(picked, x.dtype).astype(dtype)


def log_normalizer(e: jax.Array, axis: Axis) -> jax.Array:
    """log_z = log(sum(e)) along ``axis`` for e = exp(s), 0 when nothing is allowed
    (sum(e) >= 1 otherwise: the largest entry contributes exp(0) = 1)."""
    return jnp.log(jnp.maximum(jnp.sum(e, axis, keepdims=True), 1))


def _soft_parts(x, y, axis, where, dtype):
    m = largest(x, axis, where, dtype)
    s = shifted(x, m, where, dtype)
    e = jnp.exp(s)
    log_z = log_normalizer(e, axis)
    y = y.astype(dtype)
    if where is not None:
        y = jnp.where(where, y, jnp.zeros((), dtype))
    big = jnp.finfo(dtype).max
    if x.dtype == dtype and _rows(x.shape, axis) < ROWS_FUSED:
        # Fewer rows than XLA:CPU fuses into one loop: it would store s between the two
        # sums. Written differently (m raised to -max/4, which only changes slices
        # whose largest logit is below -8e37), s is recomputed inside each sum instead.
        s = x - jnp.maximum(m, -big / 4)
    # s raised to -max_float: a zero label on a logit of -inf gives 0 * finite = 0.
    loss = jnp.sum(y * (log_z - jnp.maximum(s, -big)), axis)
    loss = jnp.where(loss >= INFINITE, jnp.array(jnp.inf, dtype), loss)
    return loss, (m, e, log_z, y)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def soft_nll(x: jax.Array, y: jax.Array, axis: Axis, where: jax.Array | None) -> jax.Array:
    """sum(y * (log_z - s)) along ``axis``, with s = x - m and log_z = log(sum(exp(s))):
    the cross entropy -sum(y * log_softmax(x)), 0 where y == 0 (whatever x), +inf where
    y > 0 on a logit of -inf. Computed in ``dtype`` = promote(x, y, float32).

    Derivatives, with p = exp(s - log_z) the softmax (0 outside ``where``):

        d x: p * sum(y) - y          d y: log_z - s   (0 where s = -inf)
    """
    return _soft_parts(x, y, axis, where, dtypes(x, y)[1])[0]


def _soft_nll_jvp(axis, primals, tangents):
    x, y, where = primals
    dx, dy, _ = tangents
    dtype = dtypes(x, y)[1]
    loss, (m, e, log_z, y) = _soft_parts(x, y, axis, where, dtype)
    tangent = jnp.zeros_like(loss)
    if not isinstance(dx, SymbolicZero):
        inverse = 1 / jnp.maximum(jnp.sum(e, axis, keepdims=True), 1)
        weight = jnp.sum(y, axis, keepdims=True)
        if primals[1].dtype == dtype:  # p * sum(y) as e * (sum(y) / sum(e)): one product
            p_weighted = e * (weight * inverse)
        else:  # sum(y) then reduces inside the final pass, which widens y once
            p_weighted = (e * inverse) * weight
        tangent += jnp.sum((p_weighted - y) * dx.astype(dtype), axis)
    if not isinstance(dy, SymbolicZero):
        s = shifted(x, m, where, dtype)
        neg_log_p = jnp.where(s == -jnp.inf, jnp.zeros((), dtype), log_z - s)
        tangent += jnp.sum(neg_log_p * dy.astype(dtype), axis)
    return loss, tangent


soft_nll.defjvp(_soft_nll_jvp, symbolic_zeros=True)


def _integer_parts(x, labels, axis, where, dtype):
    m = largest(x, axis, where, dtype)
    e = jnp.exp(shifted(x, m, where, dtype))
    picked = take(x, jnp.expand_dims(labels, axis), axis, dtype) - m
    return jnp.squeeze(log_normalizer(e, axis) - picked, axis), e


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def integer_nll(x: jax.Array, labels: jax.Array, axis: int, where: jax.Array | None):
    """log_z - s[labels] along ``axis`` (the label's logit taken whether or not ``where``
    allows it, as Optax does), in ``dtype`` = promote(x, float32); labels in [0, n).

    Derivative d x: p - onehot(labels), with p = exp(s - log_z) the softmax.
    """
    return _integer_parts(x, labels, axis, where, dtypes(x)[1])[0]


@integer_nll.defjvp
def _integer_nll_jvp(axis, primals, tangents):
    x, labels, where = primals
    dx = tangents[0]
    dtype = dtypes(x)[1]
    loss, e = _integer_parts(x, labels, axis, where, dtype)
    p = e * (1 / jnp.maximum(jnp.sum(e, axis, keepdims=True), 1))
    index = jnp.expand_dims(labels, axis)
    if x.dtype == dtype:
        # Transposed, the picked entry is a scatter of -g into the gradient, in place.
        picked = jnp.squeeze(jnp.take_along_axis(dx, index, axis), axis)
        return loss, jnp.sum(p * dx, axis) - picked
    # Widened logits: the one-hot goes into the pass that narrows the gradient back.
    index = jnp.where(index < 0, index + x.shape[axis], index)
    onehot = (jax.lax.broadcasted_iota(labels.dtype, x.shape, axis) == index).astype(dtype)
    return loss, jnp.sum((p - onehot) * dx.astype(dtype), axis)


def log_softmax(x: jax.Array, axis: Axis, where: jax.Array | None, dtype: Any) -> jax.Array:
    """log_p = s - log_z in ``dtype`` (-inf outside ``where``), differentiable by JAX's
    own rules (for PolyLoss's 1 - p term)."""
    m = largest(x, axis, where, dtype)
    s = shifted(x, m, where, dtype)
    return s - log_normalizer(jnp.exp(s), axis)
