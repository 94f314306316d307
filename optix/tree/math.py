"""Leafwise arithmetic, reductions and constructors over pytrees.

Names match ``optax.tree_utils`` without the ``tree_`` prefix. Reductions over all
leaves (``sum``, ``max``, ``min``, ``norm``, ``vdot``, ``size``) span every device inside
``optix.tree.shards.reduce_over`` (for ``jax.shard_map``). Binary operations
between two trees follow JAX's promotion rules; an array hyperparameter (``scalar``
in ``scale``, the bounds of ``clip``) is cast to each floating leaf's dtype,
and reductions promote per-leaf results explicitly, so all of these also work under
``jax_numpy_dtype_promotion="strict"``.
"""

from __future__ import annotations

import builtins
import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optix.tree.casting import _cast_scalar, _leaf_dtype, _promoted_dtype
from optix.tree.shards import combine_partials, leaf_size


def _is_none(x: Any) -> bool:
    return x is None


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """Leafwise sum of two or more trees."""
    return jax.tree.map(
        lambda *xs: functools.reduce(operator.add, xs), tree_x, tree_y, *other_trees
    )


def sub(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``tree_x - tree_y``."""
    return jax.tree.map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``tree_x * tree_y``."""
    return jax.tree.map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``tree_x / tree_y``."""
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def scale(scalar: Any, tree: Any) -> Any:
    """``scalar * tree``, keeping each floating leaf's dtype."""
    return jax.tree.map(lambda x: _cast_scalar(scalar, _leaf_dtype(x)) * x, tree)


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """``tree_x + scalar * tree_y``; where ``tree_x`` has ``None`` the result has ``None``."""
    return jax.tree.map(
        lambda x, y: None if x is None else x + _cast_scalar(scalar, _leaf_dtype(y)) * y,
        tree_x,
        tree_y,
        is_leaf=_is_none,
    )


def where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``jnp.where(condition, x, y)``."""
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def conj(tree: Any) -> Any:
    """Complex conjugate of every leaf."""
    return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
    """Real part of every leaf."""
    return jax.tree.map(jnp.real, tree)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Clip every leaf to ``[min_value, max_value]``; a ``None`` bound is not applied."""

    def clip_leaf(x: Any) -> Any:
        dtype = _leaf_dtype(x)
        low = None if min_value is None else _cast_scalar(min_value, dtype)
        high = None if max_value is None else _cast_scalar(max_value, dtype)
        return jnp.clip(x, low, high)

    return jax.tree.map(clip_leaf, tree)


def batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
    """Broadcast every leaf to have ``shape`` as extra leading dimensions."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of zeros shaped like ``tree`` (in ``dtype`` if given)."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def ones_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of ones shaped like ``tree`` (in ``dtype`` if given)."""
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """A tree shaped like ``tree`` with every entry ``fill_value`` (in ``dtype`` if given)."""
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def _combine(
    values: list[jax.Array], op: Callable[[Any, Any], Any], empty: Any, pairwise: bool = False
) -> jax.Array:
    """Reduce per-leaf scalars with ``op`` after promoting them to one dtype.

    Leaves of different dtypes (an int32 count beside float32 moments, bf16 beside
    f32) would otherwise fail under strict promotion. ``pairwise`` combines in a
    balanced tree, which keeps the traced graph shallow for trees with many leaves.
    """
    if not values:
        return jnp.asarray(empty)
    target = _promoted_dtype(*(v.dtype for v in values))
    values = [v.astype(target) for v in values]
    if not pairwise:
        return functools.reduce(op, values)
    while len(values) > 1:
        paired = [op(a, b) for a, b in zip(values[::2], values[1::2], strict=False)]
        values = paired + values[2 * len(paired) :]
    return values[0]


def sum(tree: Any, associative_reduction: bool = False) -> jax.Array:
    """Sum of all entries of all leaves (0 for an empty tree).

    ``associative_reduction=True`` adds the per-leaf sums pairwise instead of left
    to right: a shallower graph for large trees, with a different rounding order.
    """
    values = combine_partials([jnp.sum(x) for x in jax.tree.leaves(tree)])
    return _combine(values, operator.add, 0, pairwise=associative_reduction)


def max(tree: Any) -> jax.Array:
    """Largest entry over all leaves; empty leaves are skipped, ``-inf`` if none is left."""
    values = combine_partials([jnp.max(x) for x in jax.tree.leaves(tree) if jnp.size(x)], "max")
    return _combine(values, jnp.maximum, -jnp.inf)


def min(tree: Any) -> jax.Array:
    """Smallest entry over all leaves; empty leaves are skipped, ``inf`` if none is left."""
    values = combine_partials([jnp.min(x) for x in jax.tree.leaves(tree) if jnp.size(x)], "min")
    return _combine(values, jnp.minimum, jnp.inf)


def size(tree: Any) -> int:
    """Total number of entries over all leaves."""
    return builtins.sum(leaf_size(x) for x in jax.tree.leaves(tree))


def _leaf_vdot(a: Any, b: Any) -> jax.Array:
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.dtype != b.dtype:
        # A complex leaf against a real one, or bf16 against f32: promote explicitly, so
        # strict dtype promotion accepts the pair as standard promotion would.
        common = _promoted_dtype(a.dtype, b.dtype)
        a, b = a.astype(common), b.astype(common)
    if jnp.iscomplexobj(a):
        a = jnp.conj(a)
    # A full contraction rather than jnp.vdot, which ravels (costly on sharded
    # arrays); HIGHEST keeps TPU matmul units from rounding inputs to bf16.
    return jnp.tensordot(a, b, axes=a.ndim, precision=jax.lax.Precision.HIGHEST)


def vdot(tree_x: Any, tree_y: Any) -> jax.Array:
    """Inner product ``sum(conj(x) * y)`` over all leaves (0 for empty trees)."""
    values = combine_partials(jax.tree.leaves(jax.tree.map(_leaf_vdot, tree_x, tree_y)))
    return _combine(values, operator.add, 0)


def _abs_sq(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        return jnp.square(x.real) + jnp.square(x.imag)
    return jnp.square(x)


def norm(tree: Any, ord: int | float | str | None = None, squared: bool = False) -> jax.Array:
    """Vector norm of all entries of ``tree`` taken together (0 for an empty tree).

    Args:
      tree: the pytree.
      ord: ``None`` or ``2`` (Euclidean), ``1``, or ``inf`` (also ``"inf"``,
        ``"infinity"``).
      squared: return the square of the norm.
    """
    leaves = jax.tree.leaves(tree)
    if ord is None or ord == 2:
        values = combine_partials([jnp.sum(_abs_sq(x)) for x in leaves])
        total = _combine(values, operator.add, 0.0)
        return total if squared else jnp.sqrt(total)
    if ord == 1:
        total = _combine(combine_partials([jnp.sum(jnp.abs(x)) for x in leaves]), operator.add, 0.0)
    elif ord == jnp.inf or ord in ("inf", "infinity"):
        # Starting from 0 rather than -inf: every |x| is >= 0, and an empty tree has norm 0.
        values = combine_partials([jnp.max(jnp.abs(x)) for x in leaves if jnp.size(x)], "max")
        total = _combine(values, jnp.maximum, 0.0)
    else:
        raise ValueError(f"Unsupported ord: {ord!r}; expected None, 1, 2 or inf.")
    return jnp.square(total) if squared else total


def allclose(
    a: Any, b: Any, rtol: Any = 1e-5, atol: Any = 1e-8, equal_nan: bool = False
) -> jax.Array:
    """Whether every pair of matching leaves is close, as in ``jnp.allclose``.

    Leaves of different dtypes are compared in their promoted dtype.
    """

    def close(x: Any, y: Any) -> jax.Array:
        x, y = jnp.asarray(x), jnp.asarray(y)
        common = _promoted_dtype(x.dtype, y.dtype)
        return jnp.allclose(
            x.astype(common), y.astype(common), rtol=rtol, atol=atol, equal_nan=equal_nan
        )

    results = jax.tree.leaves(jax.tree.map(close, a, b))
    return functools.reduce(jnp.logical_and, results, jnp.asarray(True))


def global_norm(updates: Any) -> jax.Array:
    """The L2 norm of all leaves together (Optax's ``global_norm``)."""
    return norm(updates)
