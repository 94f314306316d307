"""Aggregators (transformations of per-example gradients) and ``process``, which runs a
preprocessor, an aggregator and a postprocessor in turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

import jax

from optix.core import GradientTransformation, OptState, Params, with_extra_args_support
from optix.tree.math import zeros_like
from optix.tree.state import get

PerElementUpdates = Any
"""Per-element updates: a pytree like the params, each leaf with extra batch axes."""
AggregatedUpdates = Any
"""Aggregated updates: a pytree with the params' structure and shapes."""
MaybeAxis = int | Sequence[int] | None
"""An axis, several axes, or ``None`` (no per-element axis)."""


class AggregatorUpdateFn(Protocol):
    """``update(per_elt_updates, state, params=None, **extra_args) -> (updates, state)``.

    The input holds one update per element (per example) along the batch axes; the
    output has the params' shapes.
    """

    def __call__(
        self,
        per_elt_updates: PerElementUpdates,
        state: OptState,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[AggregatedUpdates, OptState]: ...


class Aggregator(GradientTransformation):
    """A transformation whose ``update`` takes per-element updates and aggregates them.

    The same ``(init, update)`` pair as a ``GradientTransformation`` (and an instance
    of it); the class marks that ``update`` expects updates with batch axes, e.g.
    ``jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)``, and returns one
    update shaped like the params.
    """


def process(
    preprocessor: GradientTransformation,
    aggregator: GradientTransformation | Aggregator,
    postprocessor: GradientTransformation,
    aggregator_has_aux: bool = False,
) -> GradientTransformation | Aggregator:
    """Run per-element preprocessing, aggregation and postprocessing as one transformation.

    One ``update(per_elt_grads, state, params, **extra_args)`` does

        u, s_pre = preprocessor.update(per_elt_grads, s_pre, params, **extra_args)
        a, s_agg = aggregator.update(u, s_agg, params, **extra_args)
        if aggregator_has_aux: a, aux = a; extra_args |= aux
        if ready(s_agg): out, s_post = postprocessor.update(a, s_post, params, **extra_args)
        else:            out = zeros like a

    where ``ready`` is the aggregator state's ``ready`` field (``True`` if it has
    none): an accumulating aggregator holds the postprocessor (the optimizer) back
    until its last microbatch. The state is the tuple ``(s_pre, s_agg, s_post)``.
    Each member receives the extra arguments it accepts.

    Args:
        preprocessor: Maps per-element gradients to per-element updates (clipping).
        aggregator: Reduces the per-element updates to one update.
        postprocessor: Transforms the aggregated update (an optimizer).
        aggregator_has_aux: The aggregator returns ``(updates, aux)``, ``aux`` a dict
            passed on to the postprocessor as extra keyword arguments.

    Returns:
        An ``Aggregator`` if ``aggregator`` is one, else a GradientTransformation.

    References:
        Checked against optax.experimental.aggregating.process in
        tests/experimental/test_aggregating.py.
    """
    pre = with_extra_args_support(preprocessor)
    agg = with_extra_args_support(aggregator)
    post = with_extra_args_support(postprocessor)

    def init(params):
        return pre.init(params), agg.init(params), post.init(params)

    def update(updates, state, params=None, **extra_args):
        # updates: the per-element gradients
        pre_state, agg_state, post_state = state
        updates, pre_state = pre.update(updates, pre_state, params, **extra_args)
        aggregated, agg_state = agg.update(updates, agg_state, params, **extra_args)
        if aggregator_has_aux:
            aggregated, aux = cast(tuple[Any, dict[str, Any]], aggregated)
            extra_args = {**extra_args, **aux}
        ready = get(agg_state, "ready", True)

        def run():
            return post.update(aggregated, post_state, params, **extra_args)

        def hold():
            # Zeros of the postprocessor's output dtypes, so both branches agree.
            return zeros_like(jax.eval_shape(run)[0]), post_state

        # Closures, not operands: extra arguments need not be arrays.
        out, post_state = run() if ready is True else jax.lax.cond(ready, run, hold)
        return out, (pre_state, agg_state, post_state)

    if isinstance(aggregator, Aggregator):
        return Aggregator(init, update)
    return GradientTransformation(init, update)
