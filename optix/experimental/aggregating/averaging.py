"""Averaging per-element updates over their batch axes and over successive microbatches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, chain, identity, init_empty_state
from optix.experimental.aggregating.pipeline import Aggregator, MaybeAxis
from optix.tree.math import where, zeros_like


def _axis(per_elt_axis: int | Sequence[int]) -> int | tuple[int, ...]:
    return per_elt_axis if isinstance(per_elt_axis, int) else tuple(per_elt_axis)


def average_per_element_updates(per_elt_axis: int | Sequence[int] = 0) -> Aggregator:
    """Average the per-element updates over their per-element axis (or axes).

    For each leaf: ``u = mean(g, axis=per_elt_axis)``. Stateless (``EmptyState``).

    Args:
        per_elt_axis: The axis, or axes, that index the elements.

    Returns:
        An ``Aggregator``.
    """
    axis = _axis(per_elt_axis)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda g: jnp.mean(g, axis=axis), updates), state

    return Aggregator(init_empty_state, update)


class AccumulateAvgUpdatesState(NamedTuple):
    """State of ``accumulate_avg_updates``."""

    micro_step: jax.Array
    """Microbatches averaged since the last output (int32)."""
    ready: jax.Array
    """Whether this step's output is the finished average (bool)."""
    avg_grad: jax.Array
    """The running average of the updates seen since the last output."""


def accumulate_avg_updates(accumulation_steps: int) -> GradientTransformation:
    """Average the updates of ``accumulation_steps`` successive calls, output every k-th.

    With k = ``accumulation_steps`` and n = micro_step + 1:

        avg_grad = avg_grad + (g - avg_grad) / n
        if n == k: output avg_grad; micro_step = 0, avg_grad = 0, ready = True
        else:      output zeros;    micro_step = n, ready = False

    Used as the aggregator of ``process``, the ``ready`` flag holds the optimizer back
    until the average is complete: k microbatches of size b then give the update of
    one batch of size k * b. With k = 1 this is ``identity()``.

    Args:
        accumulation_steps: The number of calls averaged, an int >= 1.

    Returns:
        A GradientTransformation with state ``AccumulateAvgUpdatesState``
        (``EmptyState`` when k = 1).

    References:
        Checked against optax.experimental.aggregating.accumulate_avg_updates in
        tests/experimental/test_aggregating.py.
    """
    _checks.integer_at_least("accumulate_avg_updates", "accumulation_steps", accumulation_steps, 1)
    if accumulation_steps == 1:
        return identity()

    def init(params):
        return AccumulateAvgUpdatesState(
            micro_step=jnp.zeros([], jnp.int32),
            ready=jnp.asarray(False),
            avg_grad=zeros_like(params),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        n = state.micro_step + 1
        avg = jax.tree.map(lambda g, a: a + (g - a) / n.astype(a.dtype), updates, state.avg_grad)
        done = AccumulateAvgUpdatesState(
            micro_step=jnp.zeros([], jnp.int32), ready=jnp.asarray(True), avg_grad=zeros_like(avg)
        )
        waiting = AccumulateAvgUpdatesState(micro_step=n, ready=jnp.asarray(False), avg_grad=avg)
        return where(n == accumulation_steps, (avg, done), (zeros_like(avg), waiting))

    return GradientTransformation(init, update)


def average_incrementally_updates(
    per_elt_axis: MaybeAxis, accumulation_steps: int
) -> Aggregator | GradientTransformation:
    """Average over the per-element axis, then over ``accumulation_steps`` calls.

    ``per_elt_axis=None`` (updates already averaged over the batch) gives
    ``accumulate_avg_updates(accumulation_steps)``; otherwise the ``Aggregator``
    ``chain(average_per_element_updates(per_elt_axis),
    accumulate_avg_updates(accumulation_steps))``.

    Args:
        per_elt_axis: The per-element axis (or axes), or ``None``.
        accumulation_steps: The number of calls averaged, an int >= 1.

    Returns:
        An ``Aggregator``, or a GradientTransformation when ``per_elt_axis`` is None.
    """
    if per_elt_axis is None:
        return accumulate_avg_updates(accumulation_steps)
    both = chain(
        average_per_element_updates(per_elt_axis), accumulate_avg_updates(accumulation_steps)
    )
    return Aggregator(both.init, both.update)
