"""Route each parameter to the transformation of its label (parameter groups)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from optix.core import GradientTransformation, OptState, PyTree
from optix.transforms.masking import is_params_placeholder, masked, resolve_prefix


class PartitionState(NamedTuple):
    """State of ``partition``: one ``MaskedState`` per label, keyed by label."""

    inner_states: Mapping[Hashable, OptState]


MultiTransformState = PartitionState
"""Optax's earlier name for ``PartitionState``: the same class."""


def _names(labels: Any) -> str:
    return ", ".join(repr(label) for label in sorted(labels, key=repr))


def check_labels(
    fn: str, label_tree: Any, transforms: Mapping[Hashable, Any], allow_unused: bool
) -> None:
    """Raise if a label has no transformation, or (unless allowed) a transformation no label.

    Both name the offending labels and list the valid ones, since the usual cause is a typo.
    """
    used = set(jax.tree.leaves(label_tree))
    unknown = used - set(transforms)
    if unknown:
        raise ValueError(
            f"{fn}: the param labels {_names(unknown)} have no transformation; the "
            f"transformations are labelled {_names(transforms)}. Fix the label (a typo?) "
            "or add a transformation for it."
        )
    unused = set(transforms) - used
    if unused and not allow_unused:
        raise ValueError(
            f"{fn}: no parameter is labelled {_names(unused)}, so those transformations "
            f"would never run; the labels in use are {_names(used)}. Fix the label (a "
            "typo?), or pass allow_unused=True if a group may be empty."
        )


def partition(
    transforms: Mapping[Hashable, GradientTransformation],
    param_labels: PyTree | Callable[[PyTree], PyTree],
    *,
    mask_compatible_extra_args: bool = False,
    allow_unused: bool = False,
) -> GradientTransformation:
    """Apply a different transformation to each group of parameters, chosen by label.

    Each leaf of ``param_labels`` names the group of the params below it; the group's
    transformation runs as ``masked(transforms[label], labels == label)``, so each
    group keeps its own state (its own ``count`` too) holding ``MaskedNode()`` for the
    other groups' leaves, laid out as Optax lays it out. ``None`` leaves stay ``None``.

    Unlike Optax, a transformation whose label no parameter carries is an error by
    default: it is almost always a misspelled label, and silently trains that group
    with the wrong settings.

    Args:
        transforms: Label -> transformation. Every label in ``param_labels`` must be a
            key; every key must be used unless ``allow_unused``.
        param_labels: A tree of hashable labels with the params' structure or a prefix
            of it, or a function ``params -> such a tree`` (called on the params at init
            and on the updates at each step; e.g. ``labels_by_path``).
        mask_compatible_extra_args: Also mask the extra arguments that have the
            updates' structure, for each group.
        allow_unused: Accept transformations that no parameter is labelled with (their
            state is built on a tree with no leaves), as Optax does.

    Returns:
        A GradientTransformation with state ``PartitionState(inner_states)``, where
        ``inner_states[label]`` is ``MaskedState(inner_state)``.

    Checked against optax.partition (numbers and state layout) in
    tests/transforms/test_partition.py.
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            "partition: transforms must be a non-empty mapping label -> transformation, "
            f"got transforms={transforms!r}"
        )

    def groups(tree):
        """The masked transformation of each label, with masks built on ``tree``."""
        label_tree = resolve_prefix("partition", "param_labels", param_labels, tree)
        check_labels("partition", label_tree, transforms, allow_unused)
        return {
            label: masked(
                tx,
                jax.tree.map(lambda leaf, label=label: leaf == label, label_tree),
                mask_compatible_extra_args=mask_compatible_extra_args,
            )
            for label, tx in transforms.items()
        }

    def init(params):
        if is_params_placeholder(params):
            # map_params asks where the params' copies sit: in every group's state.
            return PartitionState(
                inner_states={
                    label: masked(tx, True).init(params) for label, tx in transforms.items()
                }
            )
        return PartitionState(
            inner_states={label: tx.init(params) for label, tx in groups(params).items()}
        )

    def update(updates, state, params=None, **extra_args):
        if set(state.inner_states) != set(transforms):
            raise ValueError(
                f"partition: the state has groups {_names(state.inner_states)} but the "
                f"transformation has {_names(transforms)}; build the state with this "
                "transformation's init."
            )
        inner_states = {}
        for label, tx in groups(updates).items():
            updates, inner_states[label] = tx.update(
                updates, state.inner_states[label], params, **extra_args
            )
        return updates, PartitionState(inner_states=inner_states)

    return GradientTransformation(init, update)


multi_transform = partition
"""Optax's earlier name for ``partition``, kept for code that imports it."""
