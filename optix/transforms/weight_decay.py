"""Weight decay: add ``weight_decay * params`` to the updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    EmptyState,
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    safe_increment,
    zero_count,
)
from optix.transforms.masking import masked
from optix.tree.structure import check_same_structure

NO_PARAMS = (
    "{fn} needs the current params: call update(updates, state, params), "
    "e.g. tx.update(grads, opt_state, params)."
)


class WeightDecaySchedule(NamedTuple):
    """State of ``add_decayed_weights`` with a scheduled rate (a constant keeps ``EmptyState``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


AddDecayedWeightsState = EmptyState
"""Optax's name for the state of a constant decay: ``EmptyState``."""


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: MaskOrFn = None
) -> GradientTransformation:
    """Add ``weight_decay * p`` to each update.

    For each leaf, with g the incoming update and p the parameter:

        u = g + weight_decay * p

    Placed before a preconditioner this is L2 regularisation ("coupled" decay, as
    torch.optim.Adam's ``weight_decay``); placed after it and before the learning rate
    it is decoupled decay (AdamW). A schedule keeps a step count
    (``WeightDecaySchedule``), a constant keeps ``EmptyState()``, as in Optax;
    ``optix.serialization.migrate_state`` carries a checkpoint across a switch from
    one to the other.

    Args:
        weight_decay: Decay rate, >= 0, or a schedule of the step count.
        mask: Where to apply the decay: a tree of bools (or a prefix of the params), or
            a function of the params returning one. ``None`` applies it everywhere.
    """
    _checks.non_negative("add_decayed_weights", allow_schedule=True, weight_decay=weight_decay)
    return signed_decayed_weights(weight_decay, mask)


def signed_decayed_weights(
    weight_decay: ScalarOrSchedule, mask: MaskOrFn = None
) -> GradientTransformation:
    """``add_decayed_weights`` for a rate of either sign, unchecked: its state, its
    update. An optimizer written as a negative decay (Fromage) keeps Optax's chain."""
    scheduled = callable(weight_decay)

    def init(params):
        del params
        return WeightDecaySchedule(count=zero_count()) if scheduled else EmptyState()

    def update(updates: Any, state: Any, params: Any = None, **extra_args: Any) -> tuple[Any, Any]:
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="add_decayed_weights"))
        if updates is not None:  # no updates at all pass through, as in Optax
            check_same_structure("add_decayed_weights", updates=updates, params=params)
        if callable(weight_decay):
            rate = weight_decay(state.count)
            new_state = WeightDecaySchedule(safe_increment(state.count))
        else:
            rate, new_state = weight_decay, state
            if isinstance(weight_decay, int | float) and not weight_decay:
                # Adding 0 * p would turn an infinite parameter into NaN updates.
                return updates, new_state

        def decay(g, p):
            if g is None:
                return None
            return g + jnp.asarray(rate, g.dtype) * p.astype(g.dtype)

        return jax.tree.map(decay, updates, params, is_leaf=lambda x: x is None), new_state

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)
