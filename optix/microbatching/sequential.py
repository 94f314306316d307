"""Run a function, and jax.vmap, one microbatch at a time in a loop, combining the outputs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.microbatching.accumulators import AccumulationType, Accumulator, canonicalize
from optix.microbatching.reshape import reshape_batch_axis


def _as_tuple(value: Any, kind: type) -> tuple:
    return (value,) if isinstance(value, kind) else tuple(value)


def _batch_size(fn: str, batch_args: list[Any], axes: Sequence[int]) -> int:
    sizes = [
        jnp.shape(leaf)[axis]
        for arg, axis in zip(batch_args, axes, strict=True)
        for leaf in jax.tree.leaves(arg)
    ]
    if not sizes:
        raise ValueError(f"{fn}: the batch arguments hold no arrays to split into microbatches")
    if len(set(sizes)) > 1:
        raise ValueError(f"{fn}: batch arguments must have equal-size batch axes, got {sizes}")
    return sizes[0]


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Accumulator | AccumulationType | Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """``fun`` evaluated one microbatch at a time, in a sequential loop, outputs combined.

    For a batch of B rows split into n = B // microbatch_size microbatches (microbatch
    i holds rows i, i + n, i + 2n, ..., see ``reshape_batch_axis``), the returned
    function computes, with the SUM accumulator,

        out = sum_i fun(..., batch_i, ...)      as a lax.fori_loop over i

    so only one microbatch's intermediates are alive at a time: peak memory falls
    with ``microbatch_size`` while the work stays the same. The accumulator says how
    the outputs combine (SUM, MEAN, RUNNING_MEAN, CONCAT, or a custom Accumulator);
    the result equals ``fun`` on the whole batch when ``fun`` decomposes that way over
    rows (a sum of per-row terms for SUM, a mean for MEAN, a per-row map for CONCAT).

    Args:
        fun: Any function.
        argnums: The positions of the arguments that carry a batch axis.
        microbatch_size: The rows per microbatch; it must divide the batch size.
            ``None`` returns ``fun`` unchanged.
        accumulator: How outputs combine: an Accumulator, an AccumulationType, or a
            pytree of them that is a prefix of ``fun``'s output.
        argnames: The names of keyword arguments that carry a batch axis.
        in_axes: The batch axis of each argument of ``argnums`` then ``argnames`` (an
            int applies to all).
        num_real_microbatches: Stop after this many microbatches (may be traced): a
            batch padded to a fixed size runs without recompiling.

    Returns:
        A function with ``fun``'s arguments.

    References:
        Checked against optax.microbatching.microbatch in
        tests/microbatching/test_sequential.py.
    """
    fn = "microbatch"
    if microbatch_size is None:
        return fun
    _checks.integer_at_least(fn, "microbatch_size", microbatch_size, 1)
    argnums = _as_tuple(argnums, int)
    argnames = _as_tuple(argnames, str)
    axes = (in_axes,) * (len(argnums) + len(argnames)) if isinstance(in_axes, int) else in_axes
    axes = tuple(axes)
    if len(axes) != len(argnums) + len(argnames):
        raise ValueError(
            f"{fn}: in_axes needs one axis per entry of argnums then argnames "
            f"({len(argnums) + len(argnames)}), got in_axes={in_axes!r}"
        )
    positional = tuple(zip(argnums, axes, strict=False))
    named = tuple(zip(argnames, axes[len(argnums) :], strict=True))

    def microbatched(*args, **kwargs):
        batch_args = [args[i] for i, _ in positional] + [kwargs[k] for k, _ in named]
        batch = _batch_size(fn, batch_args, axes)
        if batch % microbatch_size:
            raise ValueError(
                f"{fn}: the batch size must be divisible by microbatch_size, "
                f"got batch_size={batch}, microbatch_size={microbatch_size}"
            )
        num_microbatches = batch // microbatch_size
        split_args, split_kwargs = list(args), dict(kwargs)
        for i, axis in positional:
            split_args[i] = reshape_batch_axis(args[i], microbatch_size, axis)
        for k, axis in named:
            split_kwargs[k] = reshape_batch_axis(kwargs[k], microbatch_size, axis)
        acc = canonicalize(accumulator, num_microbatches)

        def on_microbatch(index):
            take = lambda axis: functools.partial(jnp.take, indices=index, axis=axis)
            a, kw = list(split_args), dict(split_kwargs)
            for i, axis in positional:
                a[i] = jax.tree.map(take(axis), a[i])
            for k, axis in named:
                kw[k] = jax.tree.map(take(axis), kw[k])
            return fun(*a, **kw)

        def body(index, carry):
            return acc.update(carry, on_microbatch(index), index)

        carry = acc.init(jax.eval_shape(on_microbatch, 0))
        stop = num_microbatches if num_real_microbatches is None else num_real_microbatches
        return acc.finalize(jax.lax.fori_loop(0, stop, body, carry))

    return microbatched


def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] | None = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Callable[..., Any]] = jax.vmap,
    accumulator: Accumulator | AccumulationType | Any = AccumulationType.CONCAT,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """``jax.vmap`` run one microbatch at a time, optionally reducing over the batch.

    Within a microbatch ``fun`` is vmapped; across microbatches the outputs are
    combined by ``accumulator``. With the default CONCAT the result is
    ``jax.vmap(fun, in_axes)(*args)``; with SUM or MEAN it is that result summed or
    averaged over the batch axis, without ever holding the full per-row output.

    Args:
        fun: The function to map.
        in_axes: The mapped axis of each positional argument (``None``: not mapped),
            or one int for all of them. Keyword arguments are mapped over axis 0, as
            in ``jax.vmap``.
        out_axes: Must be 0.
        microbatch_size: The rows per microbatch (``None``: one vmap over the batch).
        vmap_fn: A function with ``jax.vmap``'s signature (to pass vmap options).
        accumulator: How outputs combine over the batch (CONCAT keeps the batch axis).
        num_real_microbatches: Stop after this many microbatches (may be traced).

    Returns:
        The mapped function.

    Raises:
        NotImplementedError: If ``out_axes`` is not 0.

    References:
        Checked against jax.vmap and optax.microbatching.micro_vmap in
        tests/microbatching/test_sequential.py.
    """
    if out_axes != 0:
        raise NotImplementedError(f"micro_vmap: out_axes must be 0, got out_axes={out_axes!r}")

    def reduce_within(axes, *args, kwargs):
        # vmap over one microbatch, then reduce its rows as the accumulator would.
        output = vmap_fn(fun, axes, out_axes)(*args, **kwargs)
        leaves = jax.tree.leaves(output)
        if not leaves:
            return output
        return canonicalize(accumulator, leaves[0].shape[0]).aggregate(output)

    def mapped(*args, **kwargs):
        axes = (in_axes,) * len(args) if in_axes is None or isinstance(in_axes, int) else in_axes
        axes = tuple(axes)
        batched = tuple(i for i, axis in enumerate(axes) if axis is not None)
        inner = microbatch(
            functools.partial(reduce_within, axes),
            argnums=batched,
            argnames="kwargs",
            microbatch_size=microbatch_size,
            accumulator=accumulator,
            in_axes=(*(axis for axis in axes if axis is not None), 0),
            num_real_microbatches=num_real_microbatches,
        )
        return inner(*args, kwargs=kwargs)

    return mapped
