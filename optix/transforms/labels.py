"""Label and mask parameters by their path or shape, for ``partition`` and ``masked``.

A parameter's path is turned into a string by joining its keys with ``"/"``: dict keys
(also ``FrozenDict`` and ``nnx.State`` keys) and attribute names as they are, sequence
indices as numbers. Flax linen params read ``"params/Dense_0/kernel"``; an
``nnx.State`` reads ``"layers/0/kernel"``: an nnx ``Variable`` (``Param``) counts as
the leaf, so the ``State`` of ``Param`` variables given to ``init`` and the bare arrays
``nnx.Optimizer`` gives to ``update`` have the same paths and the same labels.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import numpy as np

from optix import _checks
from optix.core import Params, PyTree
from optix.transforms.masking import resolve_prefix

SHOWN = 5  # paths quoted in an error message


def _is_variable(x: Any) -> bool:
    # An nnx Variable can only exist once flax.nnx is imported, so optix needs no flax.
    nnx = sys.modules.get("flax.nnx")
    return nnx is not None and isinstance(x, nnx.Variable)


def path_string(path: tuple[Any, ...]) -> str:
    """``"a/0/b"`` for the key path of ``x["a"][0].b`` (from ``tree_flatten_with_path``)."""
    parts = []
    for entry in path:
        for field in ("key", "name", "idx"):
            if hasattr(entry, field):
                parts.append(str(getattr(entry, field)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def leaves_with_paths(tree: PyTree) -> list[tuple[str, Any]]:
    """``(path string, leaf)`` for every leaf, an nnx Variable's value under its own path."""
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_variable)[0]:
        for value in jax.tree.leaves(leaf) if _is_variable(leaf) else [leaf]:
            found.append((path_string(path), value))
    return found


def _quote(paths: list[str]) -> str:
    more = f" ... ({len(paths) - SHOWN} more)" if len(paths) > SHOWN else ""
    return ", ".join(repr(p) for p in paths[:SHOWN]) + more


def labels_by_path(
    rules: Mapping[str, Hashable], default: Hashable | None = None, *, allow_unused: bool = False
) -> Callable[[Params], PyTree]:
    """A function ``params -> label tree`` that labels each parameter by its path.

    Each path string (see the module docstring) is checked against the patterns in
    order with ``re.search``; the first pattern found gives the label. Anchor with
    ``^`` and ``$`` to match whole names: ``r"(bias|scale)$"`` labels
    ``"params/LayerNorm_0/scale"`` but not ``"params/Dense_0/scale_kernel"``.

    Example::

        labels = labels_by_path({r"(bias|scale)$": "no_decay"}, default="decay")
        tx = partition({"decay": adamw(1e-3), "no_decay": adam(1e-3)}, labels)

    Args:
        rules: Pattern -> label, in priority order. Labels must be hashable, not None.
        default: The label of a path no pattern matches. None makes such a path an
            error that names it.
        allow_unused: Accept patterns that label no parameter. By default such a
            pattern is an error, since it is usually misspelled.

    Returns:
        A function of the params returning a tree of labels (an nnx Variable gets one
        label, so the tree can be a prefix of the params), for ``partition``,
        ``mask_by_label`` and ``paths_by_label``.
    """
    compiled = []
    for pattern, label in rules.items():
        if label is None or not isinstance(label, Hashable):
            raise TypeError(
                f"labels_by_path: labels must be hashable and not None, got {label!r} "
                f"for the pattern {pattern!r}"
            )
        try:
            compiled.append((re.compile(pattern), label))
        except re.error as error:
            raise ValueError(
                f"labels_by_path: {pattern!r} is not a regular expression: {error}"
            ) from None

    def labels(params):
        used = set()

        def label_of(path, leaf):
            del leaf
            name = path_string(path)
            for index, (pattern, label) in enumerate(compiled):
                if pattern.search(name):
                    used.add(index)
                    return label
            if default is None:
                raise ValueError(
                    f"labels_by_path: no pattern matches the parameter {name!r} and no "
                    f"default label is given; the patterns are {list(rules)}."
                )
            return default

        tree = jax.tree_util.tree_map_with_path(label_of, params, is_leaf=_is_variable)
        unused = [f"{p.pattern!r}" for i, (p, _) in enumerate(compiled) if i not in used]
        if unused and not allow_unused:
            raise ValueError(
                f"labels_by_path: the patterns {', '.join(unused)} match no parameter "
                "(or only ones an earlier pattern took); the paths are "
                f"{_quote([p for p, _ in leaves_with_paths(params)])}. Fix the pattern, or "
                "pass allow_unused=True."
            )
        return tree

    return labels


def ndim_at_least(n: int) -> Callable[[Params], PyTree]:
    """A mask function ``params -> bool tree``: True where a parameter has ``ndim >= n``.

    ``ndim_at_least(2)`` selects weight matrices and kernels, the usual set for weight
    decay, and leaves out biases and norm scales. Stacked layers (``nn.scan``) add a
    leading axis, so their norm scales have ndim 2: label those by path instead.

    Args:
        n: The smallest number of dimensions selected, an int >= 0.

    Returns:
        A function for the ``mask`` of ``masked``, ``add_decayed_weights`` or ``adamw``.
    """
    _checks.integer_at_least("ndim_at_least", "n", n, 0)
    return lambda params: jax.tree.map(lambda p: bool(np.ndim(p) >= n), params)


def mask_by_label(
    labels: PyTree | Callable[[Params], PyTree], *chosen: Hashable
) -> Callable[[Params], PyTree]:
    """A mask function ``params -> bool tree``: True where the label is one of ``chosen``.

    Args:
        labels: A label tree (the params' structure or a prefix) or a function of the
            params returning one, e.g. ``labels_by_path(...)``.
        *chosen: The labels to select. Each must label some parameter: a label that
            labels nothing is an error naming it and the labels in use.

    Returns:
        A function for the ``mask`` of ``masked`` or ``add_decayed_weights``.
    """
    if not chosen:
        raise TypeError("mask_by_label: give at least one label to select")

    def mask(params):
        label_tree = resolve_prefix("mask_by_label", "labels", labels, params)
        in_use = set(jax.tree.leaves(label_tree))
        missing = [label for label in chosen if label not in in_use]
        if missing:
            raise ValueError(
                f"mask_by_label: no parameter is labelled {', '.join(map(repr, missing))}; "
                f"the labels in use are {', '.join(sorted(map(repr, in_use)))}."
            )
        return jax.tree.map(lambda label: label in chosen, label_tree)

    return mask


def paths_by_label(
    labels: PyTree | Callable[[Params], PyTree], params: Params
) -> dict[Hashable, list[str]]:
    """The parameter paths in each group, e.g. ``{"decay": ["params/Dense_0/kernel"]}``.

    Print it before training to check that every parameter landed in the group meant.

    Args:
        labels: A label (or bool mask) tree, or a function of the params returning one.
        params: The params to group.
    """
    label_tree = resolve_prefix("paths_by_label", "labels", labels, params)
    prefixes = jax.tree_util.tree_flatten_with_path(label_tree, is_leaf=_is_variable)[0]
    subtrees = jax.tree.structure(label_tree, is_leaf=_is_variable).flatten_up_to(params)
    groups: dict[Hashable, list[str]] = {}
    for (path, label), subtree in zip(prefixes, subtrees, strict=True):
        label = jax.tree.leaves(label)[0] if _is_variable(label) else label
        for sub_path, _ in leaves_with_paths(subtree):
            full = "/".join(part for part in (path_string(path), sub_path) if part)
            groups.setdefault(label, []).append(full)
    return groups
