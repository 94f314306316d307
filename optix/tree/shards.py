"""Global reductions that stay global inside ``jax.shard_map``.

Under ``jax.jit`` with shardings, XLA sees whole arrays and every reduction in optix
(global norms, trust ratios, Adafactor's row and column means, finite checks) is
global by construction. Inside ``jax.shard_map`` each device holds only its block, and
a sum over a leaf is a sum over that device's block. ``reduce_over(axis_name)`` makes
every optix reduction traced inside it combine the blocks over the named mesh axes.

Which leaves are split is read from JAX's types, not guessed: under ``shard_map``
(with ``check_vma=True``, the default) a value that differs between the devices of an
axis is typed as varying over it, while a replicated one (``P()`` in ``in_specs``, or
the result of ``psum``/``pmean``) is invariant. A per-device partial result (the sum of
squares of a local block) is combined over exactly the axes along which it varies, so
split leaves are summed across devices and replicated ones are counted once. A leaf
that is replicated in value but typed varying (the output of ``all_gather``) would be
counted once per device: pass the shard or the replicated value instead.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Hashable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import jax
import jax.numpy as jnp

_ACTIVE: ContextVar[tuple[Hashable, ...]] = ContextVar("optix_reduce_over", default=())

_NO_CHECK_VMA = (
    "optix reductions over the mesh axis {axis!r} need jax.shard_map(..., check_vma=True) "
    "(the default): with check_vma=False JAX does not record which values differ between "
    "devices, so split leaves cannot be told from replicated ones."
)


@contextlib.contextmanager
def reduce_over(axis_name: Hashable | Sequence[Hashable]) -> Iterator[None]:
    """Make optix's global reductions span the mesh axes ``axis_name`` inside ``shard_map``.

    Use it around ``tx.update`` (and ``tx.init``) in the function given to
    ``jax.shard_map``; ``optix.sharding.with_axis_name`` wraps a transformation so it
    always does. Outside ``shard_map``, where the axes are not bound, it changes
    nothing, so one transformation serves both ``jax.jit`` with shardings and
    ``shard_map``.

    Raises:
        ValueError: when a reduction runs inside a ``shard_map`` over one of the axes
            that was built with ``check_vma=False``.
    """
    # As in JAX, a tuple or list names several axes and any other hashable names one.
    names = tuple(axis_name) if isinstance(axis_name, tuple | list) else (axis_name,)
    active = _ACTIVE.get()
    token = _ACTIVE.set(active + tuple(n for n in names if n not in active))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _varying(x: Any) -> frozenset:
    """The manual mesh axes along which ``x`` may differ between devices."""
    try:
        aval = jax.typeof(x)
    except TypeError:  # not a JAX value (a ShapeDtypeStruct): the same everywhere
        return frozenset()
    manual = getattr(aval, "manual_axis_type", None)
    if manual is not None:
        return frozenset(manual.varying)
    return frozenset(getattr(aval, "vma", ()))


def _check_tracked(name: Hashable) -> None:
    """Raise if ``name`` is bound by a ``shard_map`` that does not track varying values."""
    try:
        jax.lax.axis_size(name)
    except NameError:  # not inside a shard_map over it: nothing to combine
        return
    # axis_index differs on every device, so it is typed varying unless the
    # shard_map was built with check_vma=False.
    if name not in _varying(jax.lax.axis_index(name)):
        raise ValueError(_NO_CHECK_VMA.format(axis=name))


def split_axes(x: Any, like: Any = None) -> tuple[Hashable, ...]:
    """The active mesh axes along which ``x`` differs between devices and ``like`` does not.

    ``x`` is a per-device partial result (a sum over the local block of a leaf);
    ``like`` is an array laid out as the full result should be (``None``: a scalar
    that every device shares). The partial must be combined over the returned axes.
    Empty outside ``reduce_over`` and outside ``shard_map``.
    """
    active = _ACTIVE.get()
    if not active:
        return ()
    varying = _varying(x)
    if like is not None:
        varying = varying - _varying(like)
    for name in active:
        if name not in varying:
            _check_tracked(name)
    return tuple(name for name in active if name in varying)


def combine(value: Any, axes: tuple[Hashable, ...], op: str = "sum") -> Any:
    """``value`` (a tree of partial results) summed, maxed or minned over mesh ``axes``."""
    if not axes:
        return value
    collective = {"sum": jax.lax.psum, "max": jax.lax.pmax, "min": jax.lax.pmin}[op]
    return collective(value, axes)


def combine_partials(values: list[Any], op: str = "sum") -> list[Any]:
    """Each per-leaf partial result combined over the axes along which it varies.

    Partials that vary over the same axes share one collective.
    """
    if not _ACTIVE.get():
        return values
    groups: dict[tuple[Hashable, ...], list[int]] = {}
    for index, value in enumerate(values):
        groups.setdefault(split_axes(value), []).append(index)
    combined = list(values)
    for axes, indices in groups.items():
        for index, value in zip(
            indices, combine([values[i] for i in indices], axes, op), strict=True
        ):
            combined[index] = value
    return combined


def axes_size(axes: tuple[Hashable, ...]) -> int:
    """The number of devices along mesh ``axes`` (1 for none)."""
    return math.prod(jax.lax.axis_size(name) for name in axes)


def leaf_total(partial: Any, like: Any = None, op: str = "sum") -> Any:
    """A per-device ``partial`` result of one leaf, completed over the devices it is split on."""
    return combine(partial, split_axes(partial, like), op)


def leaf_size(x: Any) -> int:
    """The number of entries of the whole leaf ``x`` (all its blocks)."""
    return jnp.size(x) * axes_size(split_axes(x))


def leaf_mean(x: jax.Array, axis: int | None = None, like: Any = None, keepdims=False):
    """``jnp.mean(x, axis)`` of the whole leaf when ``x`` is one device's block.

    ``like`` is laid out as the result (see ``split_axes``): the mean is taken across
    the devices along which the partial sums differ and ``like`` does not.
    """
    partial = jnp.sum(x, axis=axis, keepdims=keepdims)
    axes = split_axes(partial, like)
    if not axes:
        return jnp.mean(x, axis=axis, keepdims=keepdims)
    count = (jnp.size(x) if axis is None else x.shape[axis]) * axes_size(axes)
    return combine(partial, axes) / jnp.asarray(count, partial.dtype)
