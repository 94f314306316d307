"""Restore targets: the shapes, dtypes and shardings of a state, without its values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Shardings = Any  # a Sharding, or a tree of them shaped like the state (or a prefix of it)


def _is_sharding(x: Any) -> bool:
    return isinstance(x, jax.sharding.Sharding)


def _abstract_leaf(leaf: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    if not hasattr(leaf, "dtype") or not hasattr(leaf, "shape"):
        leaf = jnp.asarray(leaf)
    if sharding is None and getattr(leaf, "committed", True):
        # An uncommitted array sits on the default device by default, not by choice:
        # restoring it committed there would make jit compile again for it.
        sharding = getattr(leaf, "sharding", None)
    return jax.ShapeDtypeStruct(
        leaf.shape, leaf.dtype, sharding=sharding, weak_type=getattr(leaf, "weak_type", False)
    )


def as_abstract(tree: Any, shardings: Shardings | None = None) -> Any:
    """``tree`` with every leaf a ``jax.ShapeDtypeStruct``: a restore target.

    Args:
      tree: arrays, scalars or ``ShapeDtypeStruct`` leaves, e.g. live params or a
        ``{"params": ..., "opt_state": ..., "step": ...}`` dict.
      shardings: placement of the restored leaves: one ``jax.sharding.Sharding`` for all,
        or a tree of them shaped like ``tree`` or like a prefix of it (a sharding then
        covers the whole subtree; ``None`` keeps a subtree's own placement). By default a
        leaf keeps the sharding it has: a ``ShapeDtypeStruct``'s, or a live array's when
        it is committed to it (placed explicitly, or computed by a sharded ``jit``).
    """
    return _with_shardings("as_abstract", tree, shardings)


def _with_shardings(fn: str, tree: Any, shardings: Shardings | None) -> Any:
    if shardings is None:
        return jax.tree.map(_abstract_leaf, tree)

    def place(sharding: Any, subtree: Any) -> Any:
        return jax.tree.map(lambda leaf: _abstract_leaf(leaf, sharding), subtree)

    try:
        return jax.tree.map(place, shardings, tree, is_leaf=lambda x: x is None)
    except ValueError as error:
        raise ValueError(
            f"{fn}: shardings must be one jax.sharding.Sharding or a tree of them shaped "
            "like the state (or a prefix of it).\n"
            f"  state: {jax.tree.structure(tree)}\n"
            f"  shardings: {jax.tree.structure(shardings, is_leaf=_is_sharding)}"
        ) from error


def abstract_state(
    tx: Any,
    params: Any,
    shardings: Shardings | Callable[[Any], Shardings] | None = None,
) -> Any:
    """The state ``tx.init(params)`` would build, as ``jax.ShapeDtypeStruct`` leaves.

    This is the target to restore a checkpointed state into: its tree (NamedTuple classes,
    ``EmptyState``, ``MaskedNode``) comes from the code, its values from the checkpoint.
    Nothing is computed or allocated (``jax.eval_shape``), so it works for models too large
    for one device.

    Args:
      tx: the transformation (anything with ``init``) as it is built now.
      params: the parameters, live or as ``ShapeDtypeStruct`` leaves.
      shardings: where each restored leaf goes: ``None`` (the default placement, or the
        sharding ``jax.eval_shape`` gives), one ``jax.sharding.Sharding`` for every leaf, a
        tree of shardings shaped like the state (or a prefix of it), or a function from the
        abstract state to such a tree (the hook for sharding rules).

    Returns:
      The abstract state; with shardings, each leaf carries its ``sharding``.
    """
    state = jax.eval_shape(tx.init, params)
    if callable(shardings) and not _is_sharding(shardings):
        shardings = shardings(state)
    if shardings is None:
        return state
    return _with_shardings("abstract_state", state, shardings)
