"""Find, read and replace values inside optimizer states, by name.

A ``key`` names a value in one of three ways: a dict key, a NamedTuple field, or
the class name of a NamedTuple (which names the whole tuple). Paths are tuples of
JAX key entries, except that NamedTuple fields appear as ``NamedTupleKey``,
which also records the tuple's class name, so a ``filtering(path, value)`` callback
can tell ``ScaleByAdamState.count`` from ``ScaleByScheduleState.count``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

KeyPath = tuple[Any, ...]
Filtering = Callable[[KeyPath, Any], bool]


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """Path entry for the field ``name`` of a NamedTuple whose class is ``tuple_name``."""

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _split(node: Any) -> tuple[list[tuple[Any, Any]], Callable[[list[Any]], Any]]:
    """A node's children as ``(path entry, child)`` pairs, and a function rebuilding it.

    Leaves have no children; NamedTuple fields get ``NamedTupleKey`` entries.
    """
    if _is_namedtuple(node):
        name = type(node).__name__
        children = [(NamedTupleKey(name, field), getattr(node, field)) for field in node._fields]
        return children, node._make
    flat, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return [(path[0], child) for path, child in flat if path], treedef.unflatten


def _entry_name(entry: Any) -> Any:
    """The key a dict entry or NamedTuple field is known by."""
    return entry.name if isinstance(entry, NamedTupleKey) else entry.key


def _holds(node: Any, key: Any) -> bool:
    """Whether ``node`` has ``key`` as a dict key or field, or is a NamedTuple named ``key``."""
    if _is_namedtuple(node):
        return key == type(node).__name__ or key in node._fields
    return isinstance(node, dict) and key in node


def _match(path: KeyPath, node: Any, key: Any) -> tuple[KeyPath, Any]:
    """``(path, value)`` of what ``key`` names in a node that holds it."""
    if _is_namedtuple(node):
        if key == type(node).__name__:
            return path, node
        return (*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)
    return (*path, jax.tree_util.DictKey(key)), node[key]


def _outermost_holders(node: Any, key: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    if _holds(node, key):
        return [(path, node)]
    return [
        found
        for entry, child in _split(node)[0]
        for found in _outermost_holders(child, key, (*path, entry))
    ]


def _find_all(tree: Any, key: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    # Outermost matches come first, then matches nested inside them, as in Optax.
    holders = _outermost_holders(tree, key, path)
    found = [_match(holder_path, holder, key) for holder_path, holder in holders]
    for holder_path, holder in holders:
        for entry, child in _split(holder)[0]:
            found += _find_all(child, key, (*holder_path, entry))
    return found


def get_all_with_path(
    tree: Any, key: Any, filtering: Filtering | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every ``(path, value)`` in ``tree`` that ``key`` names, including nested ones.

    Args:
      tree: the pytree to search, typically an optimizer state.
      key: a dict key, a NamedTuple field name, or a NamedTuple class name.
      filtering: optional ``filtering(path, value) -> bool`` keeping only some matches.
    """
    found = _find_all(tree, key, ())
    if filtering is not None:
        found = [(path, value) for path, value in found if filtering(path, value)]
    return found


def format_path(path: KeyPath) -> str:
    """A path as text, e.g. ``[0].ScaleByAdamState.mu['w']``."""
    parts: list[str] = []
    for entry in path:
        text = str(entry)
        parts.append(f".{text}" if isinstance(entry, NamedTupleKey) and parts else text)
    return "".join(parts) or "<root>"


def get(tree: Any, key: Any, default: Any = None, filtering: Filtering | None = None) -> Any:
    """The single value in ``tree`` that ``key`` names, or ``default`` if there is none.

    Raises:
      KeyError: if several values match; its message lists their paths.
    """
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(format_path(path) for path, _ in found)
        raise KeyError(
            f"Found {len(found)} values for {key!r}, at {paths}. Pass `filtering` "
            "(a function of path and value) to select one, e.g. "
            "filtering=optix.tree.inside(<a class name or label on one of these paths>)."
        )
    return found[0][1] if found else default


def set(tree: Any, filtering: Filtering | None = None, /, **kwargs: Any) -> Any:
    """A copy of ``tree`` where every value a keyword names is replaced by its value.

    Every match that ``get_all_with_path`` would report (with the same
    ``filtering``) is replaced, except matches nested inside a replaced value.
    Untouched subtrees are returned as they are.

    Raises:
      KeyError: naming every keyword that matches nothing in ``tree``.
    """
    return _replace_all(tree, filtering, kwargs, lambda new, old: new)


def assign(tree: Any, filtering: Filtering | None = None, /, **kwargs: Any) -> Any:
    """``set``, with each new value cast to the dtype of the value it replaces.

    ``assign(state, learning_rate=0.05)`` stores an array of the old value's dtype and
    shape, so a jitted step taking the state is not compiled again (a Python float in
    its place would be a new input type). A tuple replaces a tuple of arrays leafwise.

    Raises:
      KeyError: naming every keyword that matches nothing in ``tree``.
      ValueError: if a new value's structure or shape differs from the old one's.
      TypeError: if a float would replace (and be truncated to) an integer.
    """

    def cast(new: Any, old: Any) -> Any:
        if jax.tree.structure(new) != jax.tree.structure(old):
            raise ValueError(
                f"assign: the new value {new!r} has the structure {jax.tree.structure(new)}, "
                f"the value it replaces has {jax.tree.structure(old)}"
            )
        return jax.tree.map(_cast_to, new, old)

    return _replace_all(tree, filtering, kwargs, cast)


def _cast_to(new: Any, old: Any) -> Any:
    if not hasattr(old, "dtype"):
        return new
    value = jnp.asarray(new)
    if jnp.issubdtype(old.dtype, jnp.integer) and not jnp.issubdtype(value.dtype, jnp.integer):
        raise TypeError(
            f"assign: the value replaced is an integer ({old.dtype}); {new!r} would be "
            "truncated. Use optix.tree.set to change its type."
        )
    if value.shape != jnp.shape(old):
        raise ValueError(
            f"assign: the new value has shape {value.shape}, the value it replaces has "
            f"shape {jnp.shape(old)}"
        )
    return value.astype(old.dtype)


def _replace_all(
    tree: Any, filtering: Filtering | None, kwargs: dict[str, Any], make: Callable[[Any, Any], Any]
) -> Any:
    """``tree`` with each match of a keyword replaced by ``make(new value, old value)``."""
    missing = [key for key in kwargs if not get_all_with_path(tree, key, filtering)]
    if missing:
        which = " that pass `filtering`" if filtering is not None else ""
        names = ", ".join(map(repr, missing))
        raise KeyError(f"No values{which} found in the tree for: {names}.")

    def selected(path: KeyPath, value: Any) -> bool:
        return filtering is None or filtering(path, value)

    def replace(path: KeyPath, node: Any) -> Any:
        if _is_namedtuple(node):
            class_name = type(node).__name__
            if class_name in kwargs and selected(path, node):
                return make(kwargs[class_name], node)
        children, rebuild = _split(node)
        if not children:
            return node
        named = _is_namedtuple(node) or isinstance(node, dict)
        new_children = []
        for entry, child in children:
            child_path = (*path, entry)
            name = _entry_name(entry) if named else None
            if named and name in kwargs and selected(child_path, child):
                new_children.append(make(kwargs[name], child))
            else:
                new_children.append(replace(child_path, child))
        if all(new is old for new, (_, old) in zip(new_children, children, strict=True)):
            return node
        return rebuild(new_children)

    return replace((), tree)


def inside(*names: Any) -> Filtering:
    """A ``filtering`` for ``get``, ``set`` and ``assign``: keep the matches
    whose path passes through each of ``names``, in that order.

    A name is a NamedTuple class name (``"ScaleByAdamState"``), a dict key (a
    ``named_chain`` or ``partition`` label, a hyperparameter) or a tuple index (the
    position in a ``chain``). ``get(state, "count", filtering=inside("ScaleByAdamState"))``
    reads Adam's count in a chain that has several; ``get(state, "ScaleByAdamState",
    filtering=inside("decay"))`` the Adam state under the ``"decay"`` label.
    """

    def filtering(path: KeyPath, _value: Any) -> bool:
        remaining = list(names)
        for entry in path:
            if remaining and remaining[0] in _entry_names(entry):
                remaining.pop(0)
        return not remaining

    return filtering


def _entry_names(entry: Any) -> tuple[Any, ...]:
    """What a path entry can be called: a field's class and name, a key, an index."""
    if isinstance(entry, NamedTupleKey):
        return (entry.tuple_name, entry.name)
    return tuple(getattr(entry, a) for a in ("key", "idx", "name") if hasattr(entry, a))[:1]


class _ParamsPlaceholder:
    """Stands in for the parameters: a pytree node without leaves, so an ``init``
    run on it marks each place in the state that holds a copy of the parameters."""


jax.tree_util.register_pytree_node(
    _ParamsPlaceholder, lambda _: ((), None), lambda _aux, _children: _ParamsPlaceholder()
)


def _is_placeholder(x: Any) -> bool:
    return isinstance(x, _ParamsPlaceholder)


def map_params(
    initable: Any,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[[Any], Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Apply ``f`` leafwise to every parameter-shaped subtree of an optimizer state.

    Which subtrees are parameter-shaped is found by running the ``init`` of
    ``initable`` on a placeholder; e.g. mapping parameter sharding specs onto a state.

    Args:
      initable: the transformation (anything with ``.init``) or its init function.
      f: called as ``f(leaf, *rest_leaves)`` on each leaf of each parameter copy.
      state: a state built by ``initable`` on real parameters.
      *rest: trees shaped like the parameters, passed leafwise to ``f``.
      transform_non_params: applied to every other leaf of the state (kept if None).
      is_leaf: passed to the ``jax.tree.map`` over each parameter copy.
    """
    init = initable.init if hasattr(initable, "init") else initable
    layout = init(_ParamsPlaceholder())

    def map_part(marker: Any, value: Any) -> Any:
        if _is_placeholder(marker):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return jax.tree.map(map_part, layout, state, is_leaf=_is_placeholder)
