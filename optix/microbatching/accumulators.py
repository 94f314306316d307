"""How the outputs of successive microbatches combine: sum, mean, running mean, concat."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optix.microbatching.reshape import merge_microbatch_axis


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """A fold over the outputs x_0, ..., x_{n-1} of n microbatch evaluations.

    The microbatched function runs the program

        carry = init(shape and dtype of x_0)
        for i in range(n):
            carry = update(carry, x_i, i)
        return finalize(carry)

    as a ``lax.fori_loop``. ``aggregate`` reduces values stacked along a leading axis
    in one step (``micro_vmap`` uses it inside each microbatch).

    Attributes:
        init: ``init(shape_dtype) -> carry``: the starting carry, from the
            ``jax.ShapeDtypeStruct`` (tree) of one microbatch's output.
        update: ``update(carry, value, index) -> carry``: fold in microbatch ``index``.
        finalize: ``finalize(carry) -> result``.
        aggregate: ``aggregate(values) -> result``: reduce values stacked on axis 0.
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in ways to combine microbatch outputs (or a pytree of them).

    A member equals the member of the same name of Optax's ``AccumulationType``, which
    is accepted wherever this one is.
    """

    MEAN = enum.auto()
    """The mean over microbatches: the sum divided by their number."""
    SUM = enum.auto()
    """The sum over microbatches."""
    RUNNING_MEAN = enum.auto()
    """The mean over the microbatches actually run (``num_real_microbatches``)."""
    CONCAT = enum.auto()
    """The outputs concatenated along axis 0, in the order of the original batch."""

    def __eq__(self, other: object) -> bool:
        if type(other).__name__ == "AccumulationType" and isinstance(other, enum.Enum):
            return self.name == other.name
        return NotImplemented

    __hash__ = enum.Enum.__hash__


def _floating_only(init: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value):
        if not jnp.issubdtype(value.dtype, jnp.inexact):
            raise ValueError(
                "MEAN and RUNNING_MEAN accumulators need floating-point outputs, got dtype "
                f"{value.dtype}; use SUM for integer outputs"
            )
        return init(value)

    return checked


def _zeros(value) -> jax.Array:
    # zeros_like keeps the sharding of a jax.ShapeDtypeStruct (explicit meshes).
    return jnp.zeros_like(value)


def _leafwise(acc: Accumulator) -> Accumulator:
    """An accumulator of arrays applied to every leaf of a tree."""
    return Accumulator(
        init=lambda value: jax.tree.map(acc.init, value),
        update=lambda carry, value, i: jax.tree.map(lambda c, v: acc.update(c, v, i), carry, value),
        finalize=lambda carry: jax.tree.map(acc.finalize, carry),
        aggregate=lambda values: jax.tree.map(acc.aggregate, values),
    )


def _check_count(num_microbatches: int | None) -> None:
    if num_microbatches is None or num_microbatches <= 0:
        raise ValueError(f"num_microbatches must be > 0, got num_microbatches={num_microbatches!r}")


def _sum() -> Accumulator:
    return _leafwise(
        Accumulator(
            init=_zeros,
            update=lambda carry, value, _: carry + value,
            finalize=lambda carry: carry,
            aggregate=functools.partial(jnp.sum, axis=0),
        )
    )


def _mean(num_microbatches: int) -> Accumulator:
    _check_count(num_microbatches)
    return _leafwise(
        Accumulator(
            init=_floating_only(_zeros),
            update=lambda carry, value, _: carry + value,
            finalize=lambda carry: carry / num_microbatches,
            aggregate=functools.partial(jnp.mean, axis=0),
        )
    )


def _running_mean_update(carry: jax.Array, value: jax.Array, index: jax.Array) -> jax.Array:
    # mean_{i+1} = mean_i * i / (i + 1) + x_i / (i + 1), in the carry's dtype.
    p = (index / (index + 1)).astype(carry.dtype)
    return carry * p + value * (1 - p)


def _running_mean() -> Accumulator:
    return _leafwise(
        Accumulator(
            init=_floating_only(_zeros),
            update=_running_mean_update,
            finalize=lambda carry: carry,
            aggregate=functools.partial(jnp.mean, axis=0),
        )
    )


def _concat(num_microbatches: int) -> Accumulator:
    _check_count(num_microbatches)
    return _leafwise(
        Accumulator(
            init=lambda value: jnp.broadcast_to(_zeros(value), (num_microbatches, *value.shape)),
            update=lambda carry, value, index: carry.at[index].set(value),
            finalize=merge_microbatch_axis,
            aggregate=lambda values: values,
        )
    )


def _builtin(kind: Any, num_microbatches: int | None) -> Accumulator:
    # Any enum named AccumulationType counts by member name (Optax's enum included).
    name = getattr(kind, "name", None) if type(kind).__name__ == "AccumulationType" else None
    if name == "SUM":
        return _sum()
    if name == "MEAN":
        return _mean(num_microbatches)  # type: ignore[arg-type]
    if name == "RUNNING_MEAN":
        return _running_mean()
    if name == "CONCAT":
        return _concat(num_microbatches)  # type: ignore[arg-type]
    raise ValueError(
        f"Unknown accumulator: {kind!r}; expected an Accumulator or an AccumulationType "
        "(MEAN, SUM, RUNNING_MEAN, CONCAT), or a pytree of them"
    )


def canonicalize(tree: Any, num_microbatches: int | None) -> Accumulator:
    """One Accumulator from an Accumulator, an AccumulationType, or a pytree of them.

    The tree is a prefix of the function's output: each entry combines the subtree of
    the output at its position. MEAN and CONCAT need ``num_microbatches``.
    """
    accumulators = jax.tree.map(
        lambda acc: acc if isinstance(acc, Accumulator) else _builtin(acc, num_microbatches),
        tree,
    )

    def each(method: str) -> Callable[..., Any]:
        def apply(*trees: Any) -> Any:
            return jax.tree.map(
                lambda acc, *rest: getattr(acc, method)(*rest), accumulators, *trees
            )

        return apply

    return Accumulator(
        init=each("init"),
        update=lambda carry, value, index: jax.tree.map(
            lambda acc, c, v: acc.update(c, v, index), accumulators, carry, value
        ),
        finalize=each("finalize"),
        aggregate=each("aggregate"),
    )
