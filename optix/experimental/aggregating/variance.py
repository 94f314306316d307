"""Per-element gradient mean and variance: Chan's pooled sums over microbatches, an EMA
over steps, and an optimizer wrapper that tracks both."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    chain,
    identity,
    init_empty_state,
    safe_increment,
    zero_count,
)
from optix.experimental.aggregating.pipeline import Aggregator, process
from optix.tree.math import where, zeros_like
from optix.tree.state import get


def _axis(per_elt_axis: int | Sequence[int]) -> int | tuple[int, ...]:
    return per_elt_axis if isinstance(per_elt_axis, int) else tuple(per_elt_axis)


def get_batch_size_from_per_elt_updates(
    per_elt_updates: Any, per_elt_axis: int | Sequence[int]
) -> int:
    """The number of elements: the size of the per-element axis (product over axes).

    Args:
        per_elt_updates: Per-element updates.
        per_elt_axis: The per-element axis or axes.

    Returns:
        The batch size, the same for every leaf.

    Raises:
        ValueError: If the leaves disagree.
    """
    axes = (per_elt_axis,) if isinstance(per_elt_axis, int) else tuple(per_elt_axis)
    sizes = [math.prod(jnp.shape(g)[a] for a in axes) for g in jax.tree.leaves(per_elt_updates)]
    if len(set(sizes)) > 1:
        raise ValueError(f"Per-element updates must have the same batch size, got {sizes}")
    return sizes[0]


def _batch_moments(updates: Any, axis: int | tuple[int, ...]) -> tuple[Any, Any]:
    """Per leaf: the mean over ``axis`` and the sum of squared deviations from it."""
    means = jax.tree.map(lambda g: jnp.mean(g, axis=axis, keepdims=True), updates)
    ssd = jax.tree.map(lambda g, m: jnp.sum(jnp.square(g - m), axis=axis), updates, means)
    return jax.tree.map(lambda m: jnp.squeeze(m, axis=axis), means), ssd


class PerElementMeanAndSumSqDiffGradsState(NamedTuple):
    """State of ``get_per_element_mean_and_sum_sq_diff_grads`` with accumulation."""

    micro_step: jax.Array
    """Microbatches pooled since the last output (int32)."""
    ready: jax.Array
    """Whether this step's output is the finished pool (bool)."""
    mean_grads: Any
    """The mean of the per-element gradients pooled so far."""
    sum_sq_diff_grads: Any
    """Their sum of squared deviations from that mean."""


def get_per_element_mean_and_sum_sq_diff_grads(
    per_elt_axis: int | Sequence[int] = 0, accumulation_steps: int = 1
) -> Aggregator:
    """The mean of per-element gradients and their sum of squared deviations, pooled.

    Over one microbatch of b elements: mean m_b and sum of squared deviations S_b per
    entry. Over k = ``accumulation_steps`` microbatches they are pooled exactly (Chan,
    Golub & LeVeque), with s = micro_step microbatches already pooled:

        d = m_b - mean
        mean = mean + d / (s + 1)
        S = S + S_b + d**2 * s * b / (s + 1)

    The update is ``(mean, {"sum_sq_diff_grads": S, "sample_size": (s + 1) * b})``
    after the k-th microbatch (zeros before it; ``ready`` says which), so the unbiased
    variance is ``S / (sample_size - 1)``. Use with ``process(...,
    aggregator_has_aux=True)``, which passes the dict on as extra arguments.

    Args:
        per_elt_axis: The per-element axis or axes.
        accumulation_steps: The number of microbatches pooled, >= 1.

    Returns:
        An ``Aggregator`` (state ``EmptyState`` for one step, else
        ``PerElementMeanAndSumSqDiffGradsState``).

    References:
        Chan, Golub & LeVeque, "Updating Formulae and a Pairwise Algorithm for
        Computing Sample Variances", 1979.
        Checked against optax.experimental.aggregating in
        tests/experimental/test_aggregating.py.
    """
    _checks.integer_at_least(
        "get_per_element_mean_and_sum_sq_diff_grads", "accumulation_steps", accumulation_steps, 1
    )
    axis = _axis(per_elt_axis)

    def single(updates, state, params=None, **extra_args):
        del params, extra_args
        size = get_batch_size_from_per_elt_updates(updates, per_elt_axis)
        mean, ssd = _batch_moments(updates, axis)
        return (mean, {"sum_sq_diff_grads": ssd, "sample_size": size}), state

    if accumulation_steps == 1:
        return Aggregator(init_empty_state, single)

    def init(params):
        return PerElementMeanAndSumSqDiffGradsState(
            micro_step=jnp.zeros([], jnp.int32),
            ready=jnp.asarray(False),
            mean_grads=zeros_like(params),
            sum_sq_diff_grads=zeros_like(params),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        size = get_batch_size_from_per_elt_updates(updates, per_elt_axis)
        s = state.micro_step
        batch_mean, batch_ssd = _batch_moments(updates, axis)
        delta = jax.tree.map(jnp.subtract, batch_mean, state.mean_grads)
        mean = jax.tree.map(lambda a, d: a + d / (s + 1).astype(a.dtype), state.mean_grads, delta)
        factor = s * size / (s + 1)
        ssd = jax.tree.map(
            lambda a, sb, d: a + sb + d**2 * factor.astype(a.dtype),
            state.sum_sq_diff_grads,
            batch_ssd,
            delta,
        )
        outputs = (mean, {"sum_sq_diff_grads": ssd, "sample_size": size * (s + 1)})
        done = PerElementMeanAndSumSqDiffGradsState(
            micro_step=jnp.zeros([], jnp.int32),
            ready=jnp.asarray(True),
            mean_grads=zeros_like(mean),
            sum_sq_diff_grads=zeros_like(ssd),
        )
        waiting = PerElementMeanAndSumSqDiffGradsState(
            micro_step=s + 1, ready=jnp.asarray(False), mean_grads=mean, sum_sq_diff_grads=ssd
        )
        return where(s + 1 == accumulation_steps, (outputs, done), (zeros_like(outputs), waiting))

    return Aggregator(init, update)


class PerElementMeanAndVarianceEMAState(NamedTuple):
    """State of ``track_per_element_mean_and_variance_with_ema``."""

    count: jax.Array  # type: ignore[assignment]
    """Updates tracked so far (int32)."""
    ema_decay: jax.Array
    """The EMA decay, stored for the bias correction."""
    mean_grads_ema: Any
    """EMA of the mean gradient."""
    variance_grads_ema: Any
    """EMA of the per-element gradient variance."""


def track_per_element_mean_and_variance_with_ema(
    ema_decay: jax.typing.ArrayLike = 0.9,
) -> GradientTransformation:
    """Track EMAs of the gradient mean and per-element variance; pass updates through.

    With the extra arguments ``sum_sq_diff_grads`` (S) and ``sample_size`` (n) from
    ``get_per_element_mean_and_sum_sq_diff_grads`` and d = ``ema_decay``:

        mean_grads_ema = (1 - d) * g + d * mean_grads_ema
        variance_grads_ema = (1 - d) * S / (n - 1) + d * variance_grads_ema

    ``get_unbiased_mean_and_variance_ema`` reads them with the bias correction.

    Args:
        ema_decay: The EMA decay d, in [0, 1].

    Returns:
        A GradientTransformation with state ``PerElementMeanAndVarianceEMAState``; its
        ``update`` needs the keyword arguments ``sum_sq_diff_grads`` and ``sample_size``.
    """
    fn = "track_per_element_mean_and_variance_with_ema"
    _checks.in_unit_interval(fn, closed_right=True, ema_decay=ema_decay)

    def init(params):
        return PerElementMeanAndVarianceEMAState(
            count=zero_count(),
            ema_decay=jnp.asarray(ema_decay),
            mean_grads_ema=zeros_like(params),
            variance_grads_ema=zeros_like(params),
        )

    # 1 - d is formed before casting, so a Python float decay rounds once.
    keep, mix = ema_decay, 1 - ema_decay

    def ema(new, old):
        mix_, keep_ = jnp.asarray(mix, old.dtype), jnp.asarray(keep, old.dtype)
        return mix_ * new.astype(old.dtype) + keep_ * old

    def update(updates, state, params=None, *, sum_sq_diff_grads=None, sample_size=None, **kw):
        del params, kw
        if sum_sq_diff_grads is None or sample_size is None:
            raise ValueError(
                f"{fn}: update needs the keyword arguments sum_sq_diff_grads and sample_size; "
                "run it after get_per_element_mean_and_sum_sq_diff_grads inside "
                "aggregating.process(..., aggregator_has_aux=True)"
            )
        inv = 1 / (sample_size - 1)
        variance = jax.tree.map(lambda s: s * jnp.asarray(inv, s.dtype), sum_sq_diff_grads)
        return updates, state._replace(
            count=safe_increment(state.count),
            mean_grads_ema=jax.tree.map(ema, updates, state.mean_grads_ema),
            variance_grads_ema=jax.tree.map(ema, variance, state.variance_grads_ema),
        )

    return GradientTransformation(init, update)


def get_unbiased_mean_and_variance_ema(state: Any) -> tuple[Any, Any]:
    """The bias-corrected EMAs of the mean and variance, from anywhere in ``state``.

    Each EMA is divided by ``1 - ema_decay**count``.

    Args:
        state: A state holding one ``PerElementMeanAndVarianceEMAState``.

    Returns:
        ``(mean_grads_ema, variance_grads_ema)``, bias-corrected.

    Raises:
        ValueError: If ``state`` holds no ``PerElementMeanAndVarianceEMAState``.
    """
    found = get(state, "PerElementMeanAndVarianceEMAState", None)
    if found is None:
        raise ValueError(
            "get_unbiased_mean_and_variance_ema: the state holds no "
            "PerElementMeanAndVarianceEMAState; build the optimizer with "
            "add_mean_variance_to_opt or track_per_element_mean_and_variance_with_ema"
        )

    def correct(x):
        return x / (1 - found.ema_decay.astype(x.dtype) ** found.count.astype(x.dtype))

    return (
        jax.tree.map(correct, found.mean_grads_ema),
        jax.tree.map(correct, found.variance_grads_ema),
    )


def add_mean_variance_to_opt(
    opt: GradientTransformation,
    ema_decay: jax.typing.ArrayLike = 0.9,
    per_elt_axis: int | Sequence[int] = 0,
    accumulation_steps: int = 1,
) -> Aggregator:
    """``opt`` on per-element gradients, tracking EMAs of their mean and variance.

    ``process(identity(), get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis,
    accumulation_steps), chain(track_per_element_mean_and_variance_with_ema(ema_decay),
    opt), aggregator_has_aux=True)``: ``opt`` sees the mean gradient (of
    ``accumulation_steps`` microbatches); ``get_unbiased_mean_and_variance_ema(state)``
    reads the statistics.

    Args:
        opt: The optimizer.
        ema_decay: The EMA decay of the tracked statistics.
        per_elt_axis: The per-element axis or axes of the gradients.
        accumulation_steps: Microbatches per optimizer step.

    Returns:
        An ``Aggregator`` taking per-element gradients.

    References:
        Checked against optax.experimental.aggregating.add_mean_variance_to_opt in
        tests/experimental/test_aggregating.py.
    """
    pipeline = process(
        identity(),
        get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis, accumulation_steps),
        chain(track_per_element_mean_and_variance_with_ema(ema_decay), opt),
        aggregator_has_aux=True,
    )
    return cast(Aggregator, pipeline)  # an Aggregator, since its aggregator is one
