"""Load the state of an Optax optimizer into the state of the same optix optimizer."""

from __future__ import annotations

from typing import Any

from optix.serialization.layout import section
from optix.serialization.migrate import logger, migrate_leaves, template_for


def from_optax(optax_state: Any, new: Any, params: Any = None) -> Any:
    """The optix state holding the values of an Optax state of the same optimizer.

    optix's states have Optax's layout (class names, field names, nesting, leaf shapes
    and dtypes), so an Optax checkpoint also restores directly into optix's
    ``abstract_state``. This is the checked copy for a state already in memory (a live
    Optax run, or a checkpoint restored into ``jax.eval_shape(optax_tx.init, params)``):
    every leaf goes to the same place in optix's classes, as a JAX array on the sharding
    of the optix leaf. A state of a changed chain (a constant learning rate that became a
    schedule, added clipping) is ``migrate_state``'s job.

    Args:
      optax_state: the state of the Optax optimizer.
      new: the same optimizer built with optix (then pass ``params``), or its state.
      params: the parameters, to build the optix state with ``new.init(params)``.

    Returns:
      The optix state; training from it continues the Optax run.

    Raises:
      ValueError: if the two states do not correspond leaf for leaf (another optimizer,
        other arguments, other parameters); the message lists each leaf without a match.

    Checked against optax (continuing both runs) in tests/serialization/test_from_optax.py.
    """
    template = template_for("from_optax", new, params)
    state, report = migrate_leaves(optax_state, template, None, None, {})
    logger.info("from_optax: %s", report)
    moved = [f"{new} <- {old}" for new, old in report.copied.items() if new != old]
    if report.fresh or report.problems or report.dropped or moved:
        raise ValueError(
            "\n".join(
                [
                    "from_optax: the Optax state does not map onto this optix state; is it "
                    "the same optimizer, with the same arguments and parameters? "
                    "(migrate_state moves a state into a changed optimizer)",
                    *section("in the optix state, not in the Optax state", list(report.fresh)),
                    *section("in the Optax state, not in the optix state", list(report.dropped)),
                    *section("at another place in the optix state", moved),
                    *section("could not be copied", list(report.problems)),
                ]
            )
        )
    return state
