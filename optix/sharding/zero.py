"""ZeRO-style layouts: split optimizer state (and gradients, and params) along the data axis.

Data parallelism keeps a full copy of everything on every device. ZeRO (Rajbhandari
et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models",
SC 2020, arXiv:1910.02054) splits the copies along the data axis instead: stage 1 the
optimizer state, stage 2 also the gradients, stage 3 also the params. Under
``jax.jit`` with these shardings XLA inserts the collectives (reduce-scatter of the
gradients, all-gather of updated params) and the numbers do not change.
"""

from __future__ import annotations

import math
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec


def axis_names(axis: Any) -> tuple:
    """A mesh axis name, or a tuple of them, as a tuple."""
    return tuple(axis) if isinstance(axis, tuple | list) else (axis,)


def _uses_axis(spec: Any, names: tuple) -> bool:
    """Whether any dim of ``spec`` is split along one of the mesh axes ``names``."""
    for entry in spec:
        entries = entry if isinstance(entry, tuple) else (entry,)
        if any(name in entries for name in names):
            return True
    return False


def data_axis_spec(
    spec: PartitionSpec, shape: tuple[int, ...], axis: Any, axis_size: int
) -> PartitionSpec:
    """``spec`` with ``axis`` on the first dim that is not split yet and divisible by ``axis_size``.

    The spec is returned unchanged when it already uses ``axis``, or when no dim
    qualifies (the leaf stays as it was: replicated along ``axis``).
    """
    names = axis_names(axis)
    entries = tuple(spec) + (None,) * (len(shape) - len(tuple(spec)))
    if _uses_axis(entries, names):
        return spec
    for dim, (entry, size) in enumerate(zip(entries, shape, strict=True)):
        if entry is None and size > 0 and size % axis_size == 0:
            new_entry = names[0] if len(names) == 1 else names
            return PartitionSpec(*entries[:dim], new_entry, *entries[dim + 1 :])
    return spec


def add_data_axis(shardings: Any, tree: Any, axis: Any = "data") -> Any:
    """Each ``NamedSharding`` of ``shardings`` also split along mesh ``axis``, ZeRO-style.

    Args:
        shardings: A tree of ``NamedSharding``s, or one for every leaf of ``tree``.
        tree: Arrays or ``jax.ShapeDtypeStruct``s that the shardings are for.
        axis: A mesh axis name, or a tuple of names split over together.

    Returns:
        A tree like ``tree`` of ``NamedSharding``s (see ``data_axis_spec``).
    """
    leaves, treedef = jax.tree.flatten(tree)
    if isinstance(shardings, NamedSharding):
        flat = [shardings] * len(leaves)
    else:
        flat = treedef.flatten_up_to(shardings)
    out = []
    for sharding, leaf in zip(flat, leaves, strict=True):
        if not isinstance(sharding, NamedSharding):
            raise ValueError(
                f"add_data_axis: expected a NamedSharding for the leaf of shape {leaf.shape}, "
                f"got {sharding!r}; pass the shardings explicitly."
            )
        size = math.prod(sharding.mesh.shape[name] for name in axis_names(axis))
        spec = data_axis_spec(sharding.spec, tuple(leaf.shape), axis, size)
        out.append(NamedSharding(sharding.mesh, spec, memory_kind=sharding.memory_kind))
    return treedef.unflatten(out)
