"""Dtypes of pytrees: casting leaves, reading a tree's dtype, and promotion helpers.

The private helpers are shared by the tree math modules: they make mixed-dtype
trees work the same whether JAX's dtype promotion is ``"standard"`` or ``"strict"``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp


def _promoted_dtype(*dtypes: Any) -> jnp.dtype:
    """The dtype JAX's standard promotion gives ``dtypes``, even under strict promotion."""
    with jax.numpy_dtype_promotion("standard"):
        return jnp.dtype(functools.reduce(jnp.promote_types, dtypes))


def _cast_scalar(scalar: Any, dtype: Any) -> Any:
    """Cast a hyperparameter to a floating leaf dtype so it never upcasts the leaf.

    Weakly typed values (Python numbers) already adapt to the leaf and are returned
    as they are; so are values that would lose information (complex onto real).
    """
    aval = jax.typeof(scalar)
    if aval.weak_type or not jnp.issubdtype(dtype, jnp.inexact):
        return scalar
    if jnp.issubdtype(aval.dtype, jnp.complexfloating) and not jnp.issubdtype(
        dtype, jnp.complexfloating
    ):
        return scalar
    return jnp.asarray(scalar, dtype=dtype)


def _leaf_dtype(leaf: Any) -> jnp.dtype:
    return jax.typeof(leaf).dtype


def _astype(x: Any, dtype: Any) -> Any:
    return x.astype(dtype) if hasattr(x, "astype") else jnp.asarray(x, dtype=dtype)


def cast(tree: Any, dtype: Any) -> Any:
    """Cast every leaf to ``dtype``; ``dtype=None`` returns ``tree`` unchanged."""
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: _astype(x, dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``other_tree``.

    Leaves of ``other_tree`` without a ``dtype`` attribute leave theirs untouched.
    """
    return jax.tree.map(
        lambda x, o: _astype(x, o.dtype) if hasattr(o, "dtype") else x,
        tree,
        other_tree,
    )


def _lower(a: jnp.dtype, b: jnp.dtype) -> jnp.dtype:
    promoted = _promoted_dtype(a, b)
    if promoted == a:
        return b
    if promoted == b:
        return a
    raise ValueError(f"Cannot order dtypes {a} and {b}: neither promotes to the other.")


def _higher(a: jnp.dtype, b: jnp.dtype) -> jnp.dtype:
    return a if _lower(a, b) == b else b


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> jnp.dtype:
    """The dtype of the leaves of ``tree`` (the default float dtype for an empty tree).

    Args:
      tree: the pytree.
      mixed_dtype_handler: what to do when leaves differ in dtype. ``None`` raises a
        ``ValueError`` naming the odd leaves; ``"promote"`` returns their standard JAX
        promotion; ``"highest"`` / ``"lowest"`` return the dtype every other promotes
        to / from, raising if two dtypes are not ordered that way (e.g. int32, uint32).
    """
    leaves_with_path = jax.tree_util.tree_leaves_with_path(tree)
    if not leaves_with_path:
        return jnp.dtype(jnp.result_type(float))
    dtypes = [_leaf_dtype(leaf) for _, leaf in leaves_with_path]
    if mixed_dtype_handler is None:
        first = dtypes[0]
        odd = [
            f"  {jax.tree_util.keystr(path)}: {d}"
            for (path, _), d in zip(leaves_with_path, dtypes, strict=True)
            if d != first
        ]
        if odd:
            raise ValueError(
                f"Expected every leaf to have dtype {first} (the first leaf's), but:\n"
                + "\n".join(odd)
                + "\nPass mixed_dtype_handler='promote', 'highest' or 'lowest' to allow this."
            )
        return first
    if mixed_dtype_handler == "promote":
        return _promoted_dtype(*dtypes)
    if mixed_dtype_handler == "highest":
        return functools.reduce(_higher, dtypes)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(_lower, dtypes)
    raise ValueError(
        f"Invalid {mixed_dtype_handler=}; expected None, 'promote', 'highest' or 'lowest'."
    )
