"""Hold some parameters fixed during training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from optix.core import ArrayTree, GradientTransformation, Params, set_to_zero
from optix.transforms.masking import is_tree_fn, masked
from optix.transforms.partition import partition


def freeze(mask: bool | ArrayTree | Callable[[Params], Any]) -> GradientTransformation:
    """Zero the updates where ``mask`` is True, so those parameters stay where they are.

    ``masked(set_to_zero(), mask)``. Put it last in a chain (after the optimizer) to
    freeze; the optimizer still keeps state for the frozen leaves. To keep no state for
    them, use ``selective_transform``.

    Args:
        mask: True freezes. A bool for all params at once, a tree of Python bools with
            the params' structure or a prefix of it, or a function ``params -> such a
            tree``. It must be static (from names and shapes, not array values).

    Returns:
        A GradientTransformation with state ``MaskedState(inner_state=EmptyState())``.

    Checked against optax.freeze (numbers and state layout) in tests/transforms/test_freeze.py.
    """
    return masked(set_to_zero(), mask)


def selective_transform(
    optimizer: GradientTransformation,
    *,
    freeze_mask: bool | ArrayTree | Callable[[Params], Any],
) -> GradientTransformation:
    """Run ``optimizer`` on the trainable params only; zero the frozen ones' updates.

    ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)`` with label
    ``"freeze"`` where ``freeze_mask`` is True and ``"train"`` elsewhere, so the
    optimizer keeps no state for frozen leaves. Either group may be empty (all frozen
    or none).

    Args:
        optimizer: The transformation for the trainable leaves.
        freeze_mask: True freezes. A bool for all params at once, a tree of Python bools
            with the params' structure or a prefix of it, or (optix only) a function
            ``params -> such a tree``. It must be static.

    Returns:
        A GradientTransformation with state ``PartitionState(inner_states)``, keys
        ``"train"`` and ``"freeze"``, each a ``MaskedState``.

    Checked against optax.selective_transform (numbers and state layout) in
    tests/transforms/test_freeze.py.
    """

    def labels(params):
        mask = freeze_mask(params) if is_tree_fn(freeze_mask) else freeze_mask
        return jax.tree.map(lambda frozen: "freeze" if frozen else "train", mask)

    return partition({"train": optimizer, "freeze": set_to_zero()}, labels, allow_unused=True)
