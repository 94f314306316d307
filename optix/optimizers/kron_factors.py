"""PSGD Kron's Kronecker factors: their layout, their fit to the gradients, their use.

One leaf, viewed as a matrix or tensor of ``merged_shape``, has one factor per dim: a
vector (a diagonal factor) or an upper-triangular matrix. The preconditioner is
``P = Q^T Q`` with ``Q`` the Kronecker product of the factors; ``precondition`` applies
P, ``fit_factors`` takes one step of PSGD's fit of Q on the Lie group of triangular
matrices, ``balance_factors`` evens out the factors' scales. The transform that drives
them is ``optix.optimizers.kron``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks

MEMORY_SAVE_MODES = (None, "smart_one_diag", "one_diag", "all_diag")
# Scale of the probe noise added to the fitted vector: sqrt of float32's epsilon, as
# the official code uses whatever the dtype.
NOISE_SCALE = math.sqrt(float(np.finfo(np.float32).eps))


def precond_update_prob_schedule(
    max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001, flat_start: int = 500
) -> Callable[[jax.Array], jax.Array]:
    """The official schedule of the preconditioner update probability, in float32.

    ``prob(n) = clip(max_prob * exp(-decay * (n - flat_start)), min_prob, max_prob)``:
    flat at ``max_prob`` for ``flat_start`` steps, then an exponential decay to
    ``min_prob`` (by about step 4000 with the defaults).

    Args:
        max_prob: Largest probability, in (0, 1].
        min_prob: Smallest probability, in (0, max_prob].
        decay: Rate of the exponential decay per step, >= 0.
        flat_start: Steps at ``max_prob`` before the decay starts.
    """
    fn = "precond_update_prob_schedule"
    _checks.in_interval(fn, "(0, 1]", max_prob=max_prob, min_prob=min_prob)
    _checks.non_negative(fn, decay=decay)
    _checks.number(fn, flat_start=flat_start)
    f32 = jnp.float32

    def schedule(n):
        n = jnp.asarray(n, f32)
        prob = f32(max_prob) * jnp.exp(-f32(decay) * (n - f32(flat_start)))
        return jnp.clip(prob, f32(min_prob), f32(max_prob))

    return schedule


def merged_shape(shape: tuple[int, ...], merge_dims: bool) -> tuple[int, ...]:
    """The shape a leaf is preconditioned as.

    With ``merge_dims`` a leaf of three or more dims becomes a matrix: (prod(shape[:-1]),
    shape[-1]) if its second dim minus its first is no larger than for (shape[0],
    prod(shape[1:])), else the latter. A scalar is a one-entry vector (the official code
    cannot precondition 0-d tensors).
    """
    if len(shape) > 2 and merge_dims:
        first = (math.prod(shape[:-1]), shape[-1])
        second = (shape[0], math.prod(shape[1:]))
        return first if first[1] - first[0] <= second[1] - second[0] else second
    return tuple(shape) if shape else (1,)


def diagonal_dims(
    shape: tuple[int, ...],
    max_size_triangular: int,
    min_ndim_triangular: int,
    memory_save_mode: str | None,
) -> tuple[bool, ...]:
    """Which dims of a merged shape get a diagonal factor (the others a triangular one).

    A dim is diagonal when it has one entry, more than ``max_size_triangular``, the
    shape has fewer than ``min_ndim_triangular`` dims, or ``memory_save_mode`` says so:
    "one_diag" the largest dim (the first of equals), "smart_one_diag" the largest only
    if it is strictly larger than the second largest, "all_diag" every dim.
    """
    order = np.argsort(shape)[::-1]
    chosen = [memory_save_mode == "all_diag"] * len(shape)
    if memory_save_mode == "one_diag":
        chosen[order[0]] = True
    if memory_save_mode == "smart_one_diag" and len(shape) > 1:
        ranked = sorted(shape)
        chosen[order[0]] = ranked[-1] > ranked[-2]
    return tuple(
        bool(c) or n == 1 or n > max_size_triangular or len(shape) < min_ndim_triangular
        for n, c in zip(shape, chosen, strict=True)
    )


def init_factors(shape, diagonal, init_scale, dtype) -> tuple[jax.Array, ...]:
    """``init_scale**(1 / ndim)`` times ones (diagonal) or the identity (triangular)."""
    scale = init_scale ** (1 / len(shape))
    return tuple(
        jnp.full((n,), scale, dtype) if d else scale * jnp.eye(n, dtype=dtype)
        for n, d in zip(shape, diagonal, strict=True)
    )


def _apply(q: jax.Array, x: jax.Array, axis: int) -> jax.Array:
    """``q`` acting on ``axis`` of x: elementwise for a vector, ``q @ x`` for a matrix."""
    if q.ndim == 1:
        return x * jnp.expand_dims(q, tuple(i for i in range(x.ndim) if i != axis))
    return jnp.moveaxis(jnp.tensordot(q, x, axes=((1,), (axis,))), 0, axis)


def _solve(q: jax.Array, x: jax.Array, axis: int) -> jax.Array:
    """``q^{-T}`` acting on ``axis`` of x (``x @ inv(q)`` along that axis); a triangular
    solve in at least float32."""
    if q.ndim == 1:
        return x / jnp.expand_dims(q, tuple(i for i in range(x.ndim) if i != axis))
    dt = q.dtype if jnp.finfo(q.dtype).bits >= 32 else jnp.dtype(jnp.float32)
    moved = jnp.moveaxis(x, axis, 0)
    rhs = moved.reshape(moved.shape[0], -1).astype(dt)
    solved = jax.scipy.linalg.solve_triangular(q.astype(dt), rhs, trans="T", lower=False)
    return jnp.moveaxis(solved.astype(x.dtype).reshape(moved.shape), 0, axis)


def precondition(factors: tuple[jax.Array, ...], g: jax.Array) -> jax.Array:
    """``P g`` with ``P = Q^T Q``: each factor q acts as ``q^T q`` on its own dim."""
    for axis, q in enumerate(factors):
        g = _apply(q.T, _apply(q, g, axis), axis)
    return g


def balance_factors(factors: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """Rescale the factors to the geometric mean of their largest entries (same product)."""
    norms = jnp.stack([jnp.max(jnp.abs(q)) for q in factors])
    ratios = jnp.exp(jnp.mean(jnp.log(norms))) / norms
    return tuple(q * ratios[i] for i, q in enumerate(factors))


def _lower_bound(a: jax.Array, max_abs: jax.Array) -> jax.Array:
    """A cheap lower bound of the spectral norm of the symmetric ``a`` (largest |a| is
    ``max_abs``): one power step from its column of largest norm."""
    a = a / max_abs
    column = a[:, jnp.argmax(jnp.sum(a * a, axis=0))]
    x = column @ a
    x = x / jnp.linalg.norm(x)
    return jnp.linalg.norm(a @ x) * max_abs


def fit_factors(factors, g, v, precond_lr) -> tuple[jax.Array, ...]:
    """One step of PSGD's fit of Q to the pair (v, g): g the (noisy) vector to whiten,
    v the probe noise. With A = Q g and B = Q^{-T} v (each factor on its own dim), for
    each factor q of dim k (sums over every other dim):

        m1 = A_k A_k^T - B_k B_k^T,  m2 = A_k A_k^T + B_k B_k^T     (matrices)
        q = q - precond_lr * triu(m1) @ q / max(lower_bound(m2), tiny)   (triangular)
        q = q - precond_lr * diag(m1) * q / max(max|diag(m2)|, tiny)     (diagonal)
    """
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    a, b = g, v
    for axis, q in enumerate(factors):
        a, b = _apply(q, a, axis), _solve(q, b, axis)
    new = []
    for axis, q in enumerate(factors):
        a_k = jnp.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
        b_k = jnp.moveaxis(b, axis, 0).reshape(b.shape[axis], -1)
        if q.ndim == 1:
            aa, bb = jnp.sum(a_k * a_k, axis=1), jnp.sum(b_k * b_k, axis=1)
        else:
            aa, bb = a_k @ a_k.T, b_k @ b_k.T
        m1, m2 = (aa - bb) * jnp.asarray(precond_lr, g.dtype), aa + bb
        norm = jnp.max(jnp.abs(m2))
        if q.ndim == 1:
            new.append(q - m1 * q / jnp.maximum(norm, tiny))
            continue
        safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))
        bound = jnp.where(norm > 0, _lower_bound(m2, safe), norm)
        new.append(q - (jnp.triu(m1) / jnp.maximum(bound, tiny)) @ q)
    return tuple(new)
