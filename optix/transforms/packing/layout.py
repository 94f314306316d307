"""Where each leaf of a tree lives in one contiguous buffer per dtype."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
    """The static map between a tree and its packed buffers.

    Leaves of one dtype are raveled and laid end to end, in the tree's leaf order, in
    one 1-D buffer; the packed form is a dict from dtype name to buffer
    (``{"float32": ..., "bfloat16": ...}``), an ordinary pytree that jit, grad,
    ``apply_updates`` and checkpointing handle like any other. ``None`` leaves hold no
    space and come back as ``None``. A Layout is hashable, so it can be static
    (a closure variable or a static argument of ``jit``).

    Attributes:
        treedef: The tree's structure.
        shapes: The shape of each leaf, in leaf order.
        dtypes: The dtype of each leaf.
        offsets: Where each leaf starts in its dtype's buffer.
        sizes: The length of each dtype's buffer, keyed by dtype name.
    """

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]
    offsets: tuple[int, ...]
    sizes: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, tree: Any) -> Layout:
        """The layout of ``tree`` (arrays or ``jax.ShapeDtypeStruct`` leaves)."""
        leaves, treedef = jax.tree.flatten(tree)
        shapes = tuple(tuple(np.shape(x)) for x in leaves)
        dtypes = tuple(np.dtype(jax.typeof(x).dtype if _is_array(x) else x.dtype) for x in leaves)
        ends: dict[str, int] = {}
        offsets = []
        for shape, dtype in zip(shapes, dtypes, strict=True):
            offsets.append(ends.get(dtype.name, 0))
            ends[dtype.name] = offsets[-1] + math.prod(shape)
        return cls(treedef, shapes, dtypes, tuple(offsets), tuple(sorted(ends.items())))

    @property
    def groups(self) -> tuple[str, ...]:
        """The dtype name of each leaf: the buffer it lives in."""
        return tuple(d.name for d in self.dtypes)

    @property
    def mean_leaf_size(self) -> float:
        """Entries per leaf, on average over the leaves that are not ``None``."""
        return sum(n for _, n in self.sizes) / max(len(self.shapes), 1)

    def abstract(self) -> Any:
        """The tree as ``jax.ShapeDtypeStruct`` leaves."""
        return self.treedef.unflatten(
            [jax.ShapeDtypeStruct(s, d) for s, d in zip(self.shapes, self.dtypes, strict=True)]
        )

    def abstract_packed(self) -> dict[str, jax.ShapeDtypeStruct]:
        """The packed buffers as ``jax.ShapeDtypeStruct`` values."""
        return {name: jax.ShapeDtypeStruct((n,), np.dtype(name)) for name, n in self.sizes}

    def pack(self, tree: Any) -> dict[str, jax.Array]:
        """The buffers of ``tree``, whose leaves must have this layout's shapes and dtypes.

        A dtype with a single leaf is a reshape of it (no copy); several leaves are
        concatenated.
        """
        leaves = self.treedef.flatten_up_to(tree)
        pieces: dict[str, list[jax.Array]] = {name: [] for name, _ in self.sizes}
        for leaf, shape, dtype in zip(leaves, self.shapes, self.dtypes, strict=True):
            if tuple(np.shape(leaf)) != shape or jnp.result_type(leaf) != dtype:
                raise ValueError(
                    f"Layout.pack: a leaf of shape {np.shape(leaf)} and dtype "
                    f"{jnp.result_type(leaf)} stands where the layout has {shape} {dtype}; "
                    "pack trees shaped like the one the layout was made from."
                )
            pieces[dtype.name].append(jnp.ravel(leaf))
        return {
            name: parts[0] if len(parts) == 1 else jnp.concatenate(parts)
            for name, parts in pieces.items()
        }

    def unpack(self, buffers: dict[str, jax.Array]) -> Any:
        """The tree whose leaves are the slices of ``buffers``, reshaped."""
        if set(buffers) != {name for name, _ in self.sizes}:
            raise ValueError(
                f"Layout.unpack: the buffers are {sorted(buffers)}, the layout has "
                f"{[name for name, _ in self.sizes]}."
            )
        leaves = []
        for shape, dtype, start in zip(self.shapes, self.dtypes, self.offsets, strict=True):
            buffer = buffers[dtype.name]
            piece = buffer[start : start + math.prod(shape)]
            leaves.append(piece.reshape(shape))
        return self.treedef.unflatten(leaves)

    def pack_state(self, state: Any) -> Any:
        """``state`` with every subtree shaped like the tree replaced by its buffers.

        Turns the state of a transformation run leaf by leaf into the state ``packed``
        keeps, when ``packing_plan`` says it packs (a checkpoint taken before packing
        resumes packed).
        """
        is_tree = lambda node: self._matches(node, self.treedef, self.shapes)
        return jax.tree.map(lambda n: self.pack(n) if is_tree(n) else n, state, is_leaf=is_tree)

    def unpack_state(self, state: Any) -> Any:
        """The inverse of ``pack_state``: every dict of buffers back as a tree."""
        packed = self.abstract_packed()
        treedef = jax.tree.structure(packed)
        shapes = tuple(x.shape for x in jax.tree.leaves(packed))
        is_buffers = lambda node: self._matches(node, treedef, shapes)
        return jax.tree.map(
            lambda n: self.unpack(n) if is_buffers(n) else n, state, is_leaf=is_buffers
        )

    def slots(self, state: Any, packed: bool = False) -> tuple[Any, list[tuple[bool, Any]]]:
        """``state`` cut into subtrees shaped like the tree (or buffers) and other leaves.

        Returns the structure of the state above the cuts and, in leaf order, entries
        ``(True, subtree)`` or ``(False, leaf)``; a subtree matches when it has the
        structure and leaf shapes of the tree (dtypes may differ).
        """
        like = self.abstract_packed() if packed else self.abstract()
        treedef = jax.tree.structure(like)
        shapes = tuple(tuple(x.shape) for x in jax.tree.leaves(like))
        is_slot = lambda node: self._matches(node, treedef, shapes)
        nodes, prefix = jax.tree.flatten(state, is_leaf=is_slot)
        return prefix, [(is_slot(n), n) for n in nodes]

    @staticmethod
    def _matches(node: Any, treedef: Any, shapes: tuple) -> bool:
        if jax.tree.structure(node) != treedef:
            return False
        return tuple(tuple(np.shape(x)) for x in jax.tree.leaves(node)) == shapes


def _is_array(x: Any) -> bool:
    return not isinstance(x, jax.ShapeDtypeStruct)
