"""Load the state of an Optax optimizer into the state of the same optix optimizer."""

from __future__ import annotations

from typing import Any

from optix.serialization.layout import section
from optix.serialization.migrate import (
    Count,
    check_count,
    logger,
    migrate_leaves,
    template_for,
)

# optix keeps a count in these states whatever the arguments; Optax's classes without it:
_OPTAX_NAMES = {
    "ScaleByRmsState": "ScaleByRmsWithCountState",
    "ScaleByRStdDevState": "ScaleByRStdDevWithCountState",
}


def from_optax(optax_state: Any, new: Any, params: Any = None, *, count: Count = "continue") -> Any:
    """The optix state that continues a run an Optax state comes from.

    optix keeps Optax's state classes and field names, with one difference: its learning
    rate and weight decay always keep a step count (``ScaleByScheduleState``,
    ``WeightDecaySchedule``), so that a constant and a schedule give the same state,
    where Optax keeps ``EmptyState()`` for a constant. Leaves move over by class and field
    names as in ``migrate_state``, and each count Optax lacks takes the step count of
    the nearest count that Optax has (``ScaleByAdamState.count`` for ``adam``). The state
    may come from a live Optax run or from an Optax checkpoint restored into
    ``jax.eval_shape(optax_tx.init, params)``. Optax's ``ScaleByRmsState`` and
    ``ScaleByRStdDevState`` (no count) become optix's ``...WithCountState``, and a typed
    PRNG key (``noisy_sgd``) becomes the key data optix stores.

    Args:
      optax_state: the state of the Optax optimizer.
      new: the same optimizer built with optix (then pass ``params``), or its state.
      params: the parameters, to build the optix state with ``new.init(params)``.
      count: the step count for counts Optax lacks: ``"continue"`` infers it from the
        nearest Optax count; pass the number of steps taken when the Optax state has no
        count at all (``sgd``: ``TraceState`` and ``EmptyState`` only).

    Returns:
      The optix state; training from it continues the Optax run.

    Raises:
      ValueError: if the two states do not correspond leaf for leaf (another optimizer,
        other arguments, other parameters); the message lists each leaf without a match.

    Checked against optax (continuing both runs) in tests/serialization/test_from_optax.py.
    """
    check_count("from_optax", count)
    template = template_for("from_optax", new, params)
    state, report = migrate_leaves(optax_state, template, None, count, _OPTAX_NAMES)
    logger.info("from_optax: %s", report)
    if report.fresh or report.problems or report.dropped:
        raise ValueError(
            "\n".join(
                [
                    "from_optax: the Optax state does not map onto this optix state; is it "
                    "the same optimizer, with the same arguments and parameters?",
                    *section("in the optix state, not in the Optax state", list(report.fresh)),
                    *section("in the Optax state, not in the optix state", list(report.dropped)),
                    *section("could not be copied", list(report.problems)),
                ]
            )
        )
    return state
