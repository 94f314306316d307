"""Leaves of a state with readable paths, and the keys checkpoints store them under.

Paths name NamedTuple fields with ``optix.tree.NamedTupleKey``, which records the
class name, so messages read ``[0].ScaleByAdamState.mu['w']``. Checkpoint formats keep
only the field names, dict keys and positions: ``stored_key`` gives a leaf's key as
Flax's msgpack and Orbax write it, a tuple of strings such as ``('0', 'mu', 'w')``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optix.tree import NamedTupleKey, format_path

KeyPath = tuple[Any, ...]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def children(node: Any) -> list[tuple[Any, Any]]:
    """A node's ``(path entry, child)`` pairs; none for a leaf or ``None``."""
    if _is_namedtuple(node):
        name = type(node).__name__
        return [(NamedTupleKey(name, field), getattr(node, field)) for field in node._fields]
    flat, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return [(path[0], child) for path, child in flat if path]


def leaves_with_paths(tree: Any, path: KeyPath = ()) -> list[tuple[KeyPath, Any]]:
    """Every leaf of ``tree`` with its path, in ``jax.tree.leaves`` order."""
    treedef = jax.tree.structure(tree)
    if treedef.num_leaves == 0:
        return []
    if treedef.num_nodes == 1:
        return [(path, tree)]
    return [
        leaf for entry, child in children(tree) for leaf in leaves_with_paths(child, (*path, entry))
    ]


def entry_name(entry: Any) -> str:
    """A path entry as checkpoints store it: field name, dict key or position."""
    if isinstance(entry, NamedTupleKey):
        return entry.name
    for attribute in ("key", "idx", "name"):
        if hasattr(entry, attribute):
            return str(getattr(entry, attribute))
    raise TypeError(f"unsupported path entry {entry!r}")


def stored_key(path: KeyPath) -> tuple[str, ...]:
    return tuple(entry_name(entry) for entry in path)


def show_path(path: KeyPath) -> str:
    return format_path(path)


def show_stored(key: tuple[str, ...]) -> str:
    return "/".join(key) or "<root>"


def is_typed_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def describe(shape: tuple[int, ...], dtype: Any) -> str:
    """``float32[3,4]``: a leaf's dtype and shape as messages print them."""
    return f"{dtype}[{','.join(map(str, shape))}]"
