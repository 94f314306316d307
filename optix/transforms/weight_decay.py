"""Weight decay: add ``weight_decay * params`` to the updates."""

from __future__ import annotations

from typing import NamedTuple

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
    """State of ``add_decayed_weights``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


AddDecayedWeightsState = EmptyState
"""Optax's name for the state of a constant decay (``EmptyState``), kept for code that
imports it; optix's ``add_decayed_weights`` keeps ``WeightDecaySchedule`` in every case.
"""


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: MaskOrFn = None
) -> GradientTransformation:
    """Add ``weight_decay * p`` to each update.

    For each leaf, with g the incoming update and p the parameter:

        u = g + weight_decay * p

    Placed before a preconditioner this is L2 regularisation ("coupled" decay, as
    torch.optim.Adam's ``weight_decay``); placed after it and before the learning rate
    it is decoupled decay (AdamW). The state keeps a count whether ``weight_decay`` is a
    number or a schedule, so switching between them keeps checkpoints loadable.

    Args:
        weight_decay: Decay rate, >= 0, or a schedule of the step count.
        mask: Where to apply the decay: a tree of bools (or a prefix of the params), or
            a function of the params returning one. ``None`` applies it everywhere.
    """
    _checks.non_negative("add_decayed_weights", weight_decay=weight_decay)

    def init(params):
        del params
        return WeightDecaySchedule(count=zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="add_decayed_weights"))
        check_same_structure("add_decayed_weights", updates=updates, params=params)
        rate = weight_decay(state.count) if callable(weight_decay) else weight_decay

        def decay(g, p):
            if g is None:
                return None
            return g + jnp.asarray(rate, g.dtype) * p.astype(g.dtype)

        if (
            not callable(weight_decay)
            and isinstance(weight_decay, int | float)
            and not weight_decay
        ):
            # Adding 0 * p would turn an infinite parameter into NaN updates.
            return updates, WeightDecaySchedule(safe_increment(state.count))
        new_updates = jax.tree.map(decay, updates, params, is_leaf=lambda x: x is None)
        return new_updates, WeightDecaySchedule(safe_increment(state.count))

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)
