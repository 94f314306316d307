"""A pytree seen as one vector: its leaves in a shared compute dtype, and the way back.

Projections onto sets defined on the whole tree (balls, simplex, hyperplanes) work
on all entries together. They read the leaves in the widest leaf dtype, at least
float32, so bf16 trees are projected in float32, and cast each result leaf back to
the dtype of the leaf it came from.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.tree.leafwise import compute_dtype


class Leaves(NamedTuple):
    """The leaves of a tree as arrays, its structure and their shared compute dtype."""

    arrays: list[jax.Array]
    treedef: Any
    dtype: Any

    def wide(self) -> list[jax.Array]:
        """Every leaf in the compute dtype."""
        return [x.astype(self.dtype) for x in self.arrays]

    def size(self) -> int:
        return sum(x.size for x in self.arrays)

    def restore(self, new: list[jax.Array]) -> Any:
        """The tree with leaves ``new``, each cast to the dtype of the leaf it replaces."""
        return self.treedef.unflatten(
            [y.astype(x.dtype) for x, y in zip(self.arrays, new, strict=True)]
        )

    def ravel(self) -> jax.Array:
        """All entries as one vector in the compute dtype (for a tree with entries)."""
        return jnp.concatenate([x.ravel() for x in self.wide()])

    def unravel(self, vector: jax.Array) -> Any:
        """The inverse of ``ravel``: the tree, with its leaves' shapes and dtypes."""
        cuts = np.cumsum([x.size for x in self.arrays])[:-1].tolist()
        parts = jnp.split(vector, cuts)
        return self.restore([p.reshape(x.shape) for p, x in zip(parts, self.arrays, strict=True)])


def leaves(*trees: Any) -> tuple[Leaves, ...]:
    """``Leaves`` of each tree, all in one compute dtype.

    ``None`` leaves are skipped and come back as ``None``; Python numbers become arrays.
    """
    flat = [jax.tree.flatten(t) for t in trees]
    arrays = [[jnp.asarray(x) for x in xs] for xs, _ in flat]
    every = [x for xs in arrays for x in xs]
    dtype = compute_dtype(*every) if every else jnp.dtype(jnp.result_type(float))
    return tuple(Leaves(xs, treedef, dtype) for xs, (_, treedef) in zip(arrays, flat, strict=True))


def dot(xs: list[jax.Array], ys: list[jax.Array], dtype: Any) -> jax.Array:
    """``sum(x * y)`` over all entries of matching leaves (both already in ``dtype``).

    Elementwise products and sums rather than ``vdot``: accelerators may run a matmul
    in reduced precision, and the inner product decides where the projection lands.
    """
    total = jnp.zeros((), dtype)
    for x, y in zip(xs, ys, strict=True):
        total = total + jnp.sum(x * y)
    return total


def check_radius(fn: str, scale: Any) -> None:
    """``scale`` must be a scalar, finite and >= 0 (checked when concrete)."""
    if jnp.ndim(scale) != 0:
        raise ValueError(f"{fn}: scale must be a scalar, got scale={scale!r}")
    _checks.non_negative(fn, scale=scale)
