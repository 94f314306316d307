"""Kronecker-factored preconditioner math shared by Shampoo and SOAP.

A leaf is reshaped (dimensions merged) and cut into blocks; each block of order k has
one factor matrix per dimension, the statistics ``contract(G, G)`` over every other
dimension. Everything here works on static shapes, so it traces once under ``jit``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def shampoo_merged_shape(
    shape: tuple[int, ...], max_dim: float, target_order: float
) -> tuple[int, ...]:
    """Distributed Shampoo's dimension merging.

    With ``target_order`` = inf the shape is kept; otherwise dimensions of size 1 are
    dropped (a scalar becomes ``(1,)``) and neighbours are merged from the last one
    backwards while their product stays <= ``max_dim`` and more than ``target_order``
    dimensions remain. ``(3, 4)`` with ``max_dim=1024, target_order=1`` is ``(12,)``.
    """
    if 0 in shape:
        return (0,)
    if math.isinf(target_order):
        return tuple(shape)
    squeezed = [d for d in reversed(shape) if d != 1] or [1]
    merged = [squeezed[0]]
    for done, size in enumerate(squeezed[1:], start=1):
        remaining = len(squeezed) - done
        if len(merged) + remaining > target_order and merged[-1] * size <= max_dim:
            merged[-1] *= size
        else:
            merged.append(size)
    return tuple(reversed(merged))


def soap_merged_shape(shape: tuple[int, ...], max_dim: float) -> tuple[int, ...]:
    """SOAP's ``merge_dims``: merge neighbours from the first dimension on while the
    running product stays <= ``max_dim``; a scalar becomes ``(1,)``."""
    merged: list[int] = []
    current = 1
    for size in shape:
        if current * size > max_dim:
            if current > 1:
                merged.append(current)
                current = size
            else:
                merged.append(size)
                current = 1
        else:
            current *= size
    if current > 1 or not merged:
        merged.append(current)
    return tuple(merged)


def _edges(size: int, block: float) -> list[tuple[int, int]]:
    if math.isinf(block) or size <= block:
        return [(0, size)]
    step = int(block)
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def block_slices(shape: tuple[int, ...], block: float) -> list[tuple[slice, ...]]:
    """Slices of the blocks of an array of ``shape``: each dimension cut into chunks of
    ``block`` (the last chunk shorter), first dimension outermost."""
    per_dim = [_edges(size, block) for size in shape]
    return [tuple(slice(a, b) for a, b in combo) for combo in itertools.product(*per_dim)]


def block_shapes(shape: tuple[int, ...], block: float) -> list[tuple[int, ...]]:
    """Shapes of the blocks of ``block_slices``."""
    return [tuple(s.stop - s.start for s in slices) for slices in block_slices(shape, block)]


def split_blocks(x: jax.Array, block: float) -> list[jax.Array]:
    """The blocks of ``x`` in ``block_slices`` order."""
    return [x[slices] for slices in block_slices(x.shape, block)]


def join_blocks(blocks: Sequence[jax.Array], shape: tuple[int, ...], block: float) -> jax.Array:
    """Inverse of ``split_blocks``."""
    if len(blocks) == 1:
        return blocks[0]
    counts = [len(_edges(size, block)) for size in shape]
    grid = np.empty(counts, dtype=object)
    for index, b in zip(itertools.product(*map(range, counts)), blocks, strict=True):
        grid[index] = b
    return jnp.block(grid.tolist())


def outer_product(block: jax.Array, dim: int) -> jax.Array:
    """``contract(block, block)`` over every dimension but ``dim``: a (d, d) matrix."""
    others = [k for k in range(block.ndim) if k != dim]
    return jnp.tensordot(block, block, axes=(others, others))


def mode_products(x: jax.Array, matrices: Sequence[jax.Array | None], transpose: bool = False):
    """Multiply each dimension k of ``x`` by ``matrices[k]``.

    In turn for each k: ``x = tensordot(x, M, axes=(0, 0))`` (``(0, 1)`` with
    ``transpose``), which moves the product dimension last; a ``None`` matrix only moves
    dimension 0 last. After all dimensions the order is restored.
    """
    for m in matrices:
        if m is None:
            x = jnp.moveaxis(x, 0, -1)
        else:
            x = jnp.tensordot(x, m.astype(x.dtype), axes=(0, 1 if transpose else 0))
    return x


def inverse_root(a: jax.Array, exponent: float, eps: float) -> jax.Array:
    """``(a + eps I)^(-exponent)`` of a symmetric PSD matrix by eigendecomposition.

    With ``l, q = eigh(a + eps I)``: if ``min(l) < eps`` the eigenvalues are shifted to
    ``l - min(l) + eps`` (so rounding never leaves one below ``eps``), then
    ``q diag(l^(-exponent)) q^T``, as Distributed Shampoo's default eigen root.
    """
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    lam, q = jnp.linalg.eigh(a + eps * eye, symmetrize_input=False)
    lam_min = jnp.min(lam)
    lam = jnp.where(lam_min < eps, (lam - lam_min) + eps, lam)
    return (q * (lam ** (-exponent))[None, :]) @ q.T


def eigenbasis(a: jax.Array) -> jax.Array:
    """Eigenvectors of a symmetric matrix, columns by decreasing eigenvalue (SOAP's
    ``flip(eigh(a + 1e-30 I))``)."""
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    _, q = jnp.linalg.eigh(a + 1e-30 * eye, symmetrize_input=False)
    return q[:, ::-1]


def power_iteration_basis(a: jax.Array, q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One power iteration from the basis ``q``, orthonormalised by QR.

    The columns of ``q`` are sorted by decreasing ``diag(q^T a q)`` (the estimated
    eigenvalues); returns ``(Q of qr(a @ q_sorted), order)`` so that the caller can
    permute the statistics kept in the old basis.
    """
    estimates = jnp.diag(q.T @ a @ q)
    order = jnp.argsort(-estimates, stable=True)
    new_q, _ = jnp.linalg.qr(a @ q[:, order])
    return new_q, order


def as_tuple(x, n: int) -> tuple:
    """``x`` (a tuple, or a mapping from positions as ``nnx.State`` makes of one) as an
    ``n``-tuple; a missing position is ``None``."""
    if isinstance(x, tuple | list):
        return tuple(x)
    return tuple(x.get(i) if hasattr(x, "get") else x[i] for i in range(n))


def as_nested(x, shapes) -> tuple:
    """``as_tuple`` over blocks, then over each block's dimensions."""
    outer = as_tuple(x, len(shapes))
    return tuple(as_tuple(b, len(s)) for b, s in zip(outer, shapes, strict=True))
