"""Apply a transformation to part of the parameters only.

A mask (or a label tree, for ``partition``) has the params' tree structure or is a
prefix of it: a leaf of the mask stands for the whole subtree of params below it, so
``{"encoder": False, "decoder": True}`` masks every leaf under each key at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeGuard

import jax
import jax.core
import numpy as np

from optix.core import GradientTransformation, MaskOrFn, Params, with_extra_args_support

# ``optix.tree.map_params`` runs ``init`` on this placeholder to find the params-shaped
# parts of a state; masking it would fail, and it has no leaves to hide.
from optix.tree.state import _ParamsPlaceholder


class MaskedState(NamedTuple):
    """State of ``masked``: the inner state, built on the selected leaves only."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands where ``masked`` hides a leaf: a node with no children, skipped by tree maps."""


def is_tree_fn(tree_or_fn: Any) -> TypeGuard[Callable[..., Any]]:
    """Whether a mask or label argument is a function of the params rather than a tree.

    A function is a single callable leaf; a callable pytree (an Equinox module, say)
    has leaves of its own and is used as a tree.
    """
    return callable(tree_or_fn) and jax.tree.leaves(tree_or_fn) == [tree_or_fn]


def is_params_placeholder(params: Any) -> bool:
    """Whether ``init`` was called by ``optix.tree.map_params`` to locate params copies."""
    return isinstance(params, _ParamsPlaceholder)


def _is_single_leaf(node: Any) -> bool:
    treedef = jax.tree.structure(node)
    return treedef.num_leaves == 1 and treedef.num_nodes == 1


def _children(node: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """One level of a pytree: its node definition and its ``(key, child)`` pairs."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return treedef, [(path[0], child) for path, child in flat if path]


def _describe(node: Any, keys: list[str]) -> str:
    if node is None:
        return "None"
    if _is_single_leaf(node):
        return f"a leaf ({type(node).__name__})"
    return f"a {type(node).__name__} with keys {', '.join(keys) or '(none)'}"


def _difference(what: str, prefix: Any, full: Any) -> str:
    """How two nodes that should match differ, in words."""
    prefix_def, prefix_children = _children(prefix)
    full_def, full_children = _children(full)
    ours = [jax.tree_util.keystr((key,)) for key, _ in prefix_children]
    theirs = [jax.tree_util.keystr((key,)) for key, _ in full_children]
    if type(prefix) is type(full) and ours != theirs:
        extra = [k for k in ours if k not in theirs]
        missing = [k for k in theirs if k not in ours]
        parts = [f"the {what} has {', '.join(extra)}, which the params lack"] if extra else []
        if missing:
            parts.append(f"the params have {', '.join(missing)}, which the {what} lacks")
        return "; ".join(parts) or f"the {what} has keys {ours}, the params {theirs}"
    described = _describe(prefix, ours), _describe(full, theirs)
    if described[0] == described[1]:
        described = str(prefix_def), str(full_def)
    return f"the {what} has {described[0]}, the params have {described[1]}"


def prefix_mismatch(what: str, prefix: Any, full: Any, path: tuple[Any, ...] = ()) -> str | None:
    """Where ``prefix`` stops being a prefix of ``full``, in words; None if it is one.

    A leaf of ``prefix`` matches any subtree of ``full``; every other node must be the
    same kind of node with the same keys (a ``dict`` and a ``FrozenDict`` differ, so do
    an ``nnx.State`` holding ``Param`` variables and one holding bare arrays).
    """
    if prefix is not None and _is_single_leaf(prefix):
        return None
    prefix_def, prefix_children = _children(prefix)
    full_def, full_children = _children(full)
    if prefix_def != full_def:
        where = jax.tree_util.keystr(path) or "the root"
        return f"at {where}, {_difference(what, prefix, full)}"
    for (key, child), (_, full_child) in zip(prefix_children, full_children, strict=True):
        found = prefix_mismatch(what, child, full_child, (*path, key))
        if found is not None:
            return found
    return None


def resolve_prefix(fn: str, what: str, tree_or_fn: Any, params: Params) -> Any:
    """The tree for ``params`` from a tree or a function of params, checked to be a prefix.

    ``what`` names the argument in the error (``"mask"``, ``"param_labels"``).
    """
    tree = tree_or_fn(params) if is_tree_fn(tree_or_fn) else tree_or_fn
    try:
        jax.tree.map(lambda m, _: m, tree, params)
    except (ValueError, TypeError) as error:
        where = prefix_mismatch(what, tree, params) or "the structures differ"
        raise ValueError(
            f"{fn}: the {what} must have the structure of the params, or be a prefix of it "
            f"(each {what} leaf stands for the whole subtree of params below it); {where}.\n"
            f"  {what}: {jax.tree.structure(tree)}\n"
            f"  params: {jax.tree.structure(params)}\n"
            "Build it with jax.tree.map(lambda p: ..., params), or pass a function of the "
            "params: it is called on the params at init and on the updates at each step, "
            "so it always fits the tree it is given."
        ) from error
    return tree


def _check_static(fn: str, mask_tree: Any) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(mask_tree)[0]:
        where = jax.tree_util.keystr(path) or "the root"
        if isinstance(leaf, jax.core.Tracer):
            raise TypeError(
                f"{fn}: the mask must hold Python bools, known before tracing (it decides "
                f"the state's structure), got a traced value at {where}. Compute it from "
                "shapes or names, not from array values."
            )
        if np.ndim(leaf) > 0:
            raise TypeError(
                f"{fn}: each mask leaf must be one bool for a whole params leaf or subtree, "
                f"got an array of shape {np.shape(leaf)} at {where}. To select elements "
                "inside an array, multiply the updates by a 0/1 array instead."
            )


def hide(tree: Any, mask_tree: Any) -> Any:
    """Replace the subtrees of ``tree`` where the mask is False by ``MaskedNode()``."""
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


def masked(
    inner: GradientTransformation,
    mask: MaskOrFn | Callable[[Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    """Apply ``inner`` where ``mask`` is True; pass the other updates through unchanged.

    The inner transformation sees the params and updates with ``MaskedNode()`` in place
    of every masked-out subtree, so its state holds nothing for them. Masked-out updates
    come out exactly as they came in (not zeroed: use ``freeze`` for that). ``None``
    leaves stay ``None``. With a function mask, ``nnx.Optimizer`` works unchanged: it
    calls ``init`` on ``nnx.State`` of ``Param`` variables and ``update`` on bare
    arrays, and the function is evaluated on each.

    Args:
        inner: The transformation to apply to the selected leaves.
        mask: A tree of Python bools with the params' structure or a prefix of it (a
            leaf covers the whole subtree below it), or a function ``params -> such a
            tree``, called on the params at init and on the updates at each step. The
            mask must be static: computed from shapes and names, not array values.
        mask_compatible_extra_args: Also hide the masked-out leaves of extra arguments
            that have the updates' structure.

    Returns:
        A GradientTransformation with state ``MaskedState(inner_state)``; the inner
        state holds ``MaskedNode()`` in place of the masked-out leaves, as in Optax.

    Checked against optax.masked (numbers and state layout) in tests/transforms/test_masking.py.
    """
    inner = with_extra_args_support(inner)

    def mask_for(tree):
        mask_tree = resolve_prefix("masked", "mask", mask, tree)
        _check_static("masked", mask_tree)
        return mask_tree

    def init(params):
        if is_params_placeholder(params):
            return MaskedState(inner_state=inner.init(params))
        return MaskedState(inner_state=inner.init(hide(params, mask_for(params))))

    def update(updates, state, params=None, **extra_args):
        mask_tree = mask_for(updates)
        structure = jax.tree.structure(updates)
        if mask_compatible_extra_args:
            extra_args = {
                k: hide(v, mask_tree) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        hidden_params = None if params is None else hide(params, mask_tree)
        new_hidden, inner_state = inner.update(
            hide(updates, mask_tree), state.inner_state, hidden_params, **extra_args
        )
        new_updates = jax.tree.map(
            lambda m, new, old: new if m else old, mask_tree, new_hidden, updates
        )
        return new_updates, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, update)
