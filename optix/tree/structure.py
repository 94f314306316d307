"""Structure checks that explain what differs between two pytrees."""

from __future__ import annotations

from typing import Any

import jax


def _is_none(x: Any) -> bool:
    return x is None


def check_same_structure(fn: str, **trees: Any) -> None:
    """Raise a ValueError naming both structures if the given trees differ in structure.

    ``None`` counts as a leaf, so ``None`` parameters line up with any update leaf.
    """
    (first_name, first), *rest = trees.items()
    first_def = jax.tree.structure(first, is_leaf=_is_none)
    for name, tree in rest:
        tree_def = jax.tree.structure(tree, is_leaf=_is_none)
        if tree_def != first_def:
            raise ValueError(
                f"{fn}: {first_name} and {name} must have the same tree structure.\n"
                f"  {first_name}: {first_def}\n"
                f"  {name}: {tree_def}"
            )
