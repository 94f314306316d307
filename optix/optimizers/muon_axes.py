"""Which leaves Muon treats as matrices, and how: dimension numbers, labels, shape factors.

A leaf of any rank is viewed as a stack of matrices by ``MuonDimensionNumbers``: the
reduction axes make the rows, the output axes the columns, every other axis is a batch
axis (stacked or scanned layers), whose matrices are orthogonalized independently.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import EmptyState, GradientTransformation
from optix.transforms.masking import MaskedNode, is_tree_fn


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the matrix that Muon orthogonalizes.

    For ``y = x @ W`` the reduction axis of ``W`` is 0 and its output axis is 1 (the
    default). Several axes may be given for either role (a conv kernel ``(kh, kw, in,
    out)`` is ``reduction_axis=(0, 1, 2), output_axis=3``); negative axes count from the
    end; every axis named in neither is a batch axis, and the matrices along it (stacked
    or scanned layers) are orthogonalized independently.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


DimNumsOrFn = MuonDimensionNumbers | Any | Callable[[Any], Any]


def _as_axes(axes: Sequence[int] | int, ndim: int) -> tuple[int, ...]:
    if isinstance(axes, int | numbers.Integral):
        return (int(axes) % ndim,)
    return tuple(int(a) % ndim for a in axes)


def matrix_axes(
    shape: tuple[int, ...], dims: MuonDimensionNumbers
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(batch_axes, reduction_axes, output_axes)`` of a leaf of ``shape``, non-negative."""
    if len(shape) < 2:
        raise ValueError(
            f"Muon orthogonalizes matrices: a leaf needs rank >= 2, got shape {shape}. "
            "Send vectors and scalars to another optimizer (muon and muon_with_adamw send "
            "them to AdamW)."
        )
    rows, cols = _as_axes(dims.reduction_axis, len(shape)), _as_axes(dims.output_axis, len(shape))
    if set(rows) & set(cols):
        raise ValueError(
            f"Muon: the reduction axes {rows} and output axes {cols} of a leaf of shape "
            f"{shape} overlap (from {dims}); an axis can play one role only."
        )
    batch = tuple(a for a in range(len(shape)) if a not in rows and a not in cols)
    return batch, rows, cols


def fans(shape: tuple[int, ...], dims: MuonDimensionNumbers) -> tuple[int, int]:
    """``(fan_in, fan_out)``: the sizes of the reduction and the output axes together."""
    _, rows, cols = matrix_axes(shape, dims)
    return math.prod(shape[a] for a in rows), math.prod(shape[a] for a in cols)


def to_matrices(
    x: jax.Array, dims: MuonDimensionNumbers
) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
    """``x`` as a ``(batch, fan_in, fan_out)`` stack, and the function that undoes it."""
    batch, rows, cols = matrix_axes(x.shape, dims)
    order = batch + rows + cols
    moved = tuple(x.shape[a] for a in order)
    stack = jnp.transpose(x, order).reshape(
        math.prod(moved[: len(batch)]), math.prod(moved[len(batch) : len(batch) + len(rows)]), -1
    )
    inverse = tuple(int(i) for i in np.argsort(order))
    return stack, lambda m: jnp.transpose(m.reshape(moved), inverse)


def _is_dims_leaf(x: Any) -> bool:
    return x is None or isinstance(x, MuonDimensionNumbers | MaskedNode)


class _Slot:
    """Holds one leaf's dimension numbers (or None) as an opaque pytree leaf."""

    def __init__(self, dims: MuonDimensionNumbers | None):
        self.dims = dims


def leaf_dimension_numbers(spec: DimNumsOrFn | None, tree: Any) -> list[Any]:
    """The dimension numbers of each leaf of ``tree`` (None: not a Muon leaf), in order.

    ``spec`` is one ``MuonDimensionNumbers`` for all leaves, a tree of them (and of
    ``None``) with ``tree``'s structure or a prefix of it, or a function of the tree
    returning one. ``None`` gives the default dims to every leaf.
    """
    if spec is None:
        return [MuonDimensionNumbers()] * len(jax.tree.leaves(tree))
    if is_tree_fn(spec):
        spec = spec(tree)
    if isinstance(spec, MuonDimensionNumbers):
        return [spec] * len(jax.tree.leaves(tree))
    slots = jax.tree.map(
        lambda d, sub: jax.tree.map(lambda _: _Slot(None if isinstance(d, MaskedNode) else d), sub),
        spec,
        tree,
        is_leaf=_is_dims_leaf,
    )
    return [slot.dims for slot in jax.tree.leaves(slots)]


def scale_by_shape(
    weight_dimension_numbers: DimNumsOrFn | None = None,
    consistent_rms: jax.typing.ArrayLike | None = None,
) -> GradientTransformation:
    """Scale each matrix update by a factor of its shape (stateless).

    With fan_in, fan_out the sizes of the reduction and output axes:

        u = sqrt(max(1, fan_out / fan_in)) * g           if consistent_rms is None
        u = sqrt(max(fan_in, fan_out)) * consistent_rms * g

    The first is Jordan's width scaling in Optax's axes; the second (Liu et al.,
    arXiv:2502.16982, with 0.2) gives orthogonalized updates AdamW's RMS.
    Leaves without dimension numbers (None) pass unchanged.

    References:
        Liu et al., "Muon is Scalable for LLM Training", arXiv:2502.16982.
        Checked against optax.contrib.muon (its shape step) in tests/optimizers/test_muon.py.
    """
    _checks.non_negative("scale_by_shape", allow_none=True, consistent_rms=consistent_rms)

    def factor(shape, dims):
        fan_in, fan_out = fans(shape, dims)
        if consistent_rms is None:
            return max(1.0, fan_out / fan_in) ** 0.5
        return max(fan_in, fan_out) ** 0.5 * consistent_rms

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        leaves, treedef = jax.tree.flatten(updates)
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates)
        scaled = [
            u if d is None else (jnp.asarray(factor(u.shape, d)) * u).astype(u.dtype)
            for u, d in zip(leaves, dims, strict=True)
        ]
        return treedef.unflatten(scaled), state

    return GradientTransformation(lambda params: EmptyState(), update)


def muon_labels(spec: DimNumsOrFn | None, tree: Any) -> Any:
    """'muon' for each leaf with dimension numbers (default: each 2-D leaf), else 'adam'."""
    leaves, treedef = jax.tree.flatten(tree)
    if spec is None:
        return treedef.unflatten(["muon" if x.ndim == 2 else "adam" for x in leaves])
    dims = leaf_dimension_numbers(spec, tree)
    return treedef.unflatten(["adam" if d is None else "muon" for d in dims])


def muon_dims(spec: DimNumsOrFn | None, tree: Any) -> Any:
    """Dimension numbers with ``tree``'s structure (MaskedNode and None leaves kept out)."""
    leaves, treedef = jax.tree.flatten(tree)
    dims = (
        [MuonDimensionNumbers()] * len(leaves)
        if spec is None
        else leaf_dimension_numbers(spec, tree)
    )
    return treedef.unflatten([MaskedNode() if d is None else d for d in dims])
