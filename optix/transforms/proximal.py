"""Proximal weight decay: the closed-form step of an L2 penalty around a plain step."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    stateless,
    zero_count,
)
from optix.transforms.masking import masked
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import NO_PARAMS, add_decayed_weights
from optix.tree.leafwise import compute_dtype
from optix.tree.structure import check_same_structure


class ProximalDecayState(NamedTuple):
    """State of ``proximal_decay``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


def proximal_decay(
    learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 0.0, mask: MaskOrFn = None
) -> GradientTransformation:
    """Turn a step d into the proximal weight-decay step ``p_new = (p + d) / (1 + lr * wd)``.

    For each leaf, with d the incoming update (already scaled by -lr) and p the param:

        u = (d - lr * weight_decay * p) / (1 + lr * weight_decay)

    so that p + u = (p + d) / (1 + lr * weight_decay): the closed-form minimiser of
    the L2 penalty around the plain step (Adan's default decay). Place it after
    ``scale_by_learning_rate``; both evaluate schedules at the same count.

    Args:
        learning_rate: The step's learning rate, >= 0, or a schedule of the step count.
        weight_decay: Decay rate, >= 0, or a schedule of the step count.
        mask: Where to apply the decay: a tree of bools or a function of the params.

    Returns:
        A GradientTransformation whose state is ``ProximalDecayState`` (inside a
        ``MaskedState`` when ``mask`` is given).

    References:
        Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
        Deep Models", arXiv:2208.06677, Algorithm 1 (the proximal step).
        Checked against pytorch_optimizer.Adan(weight_decouple=False) in
        tests/optimizers/test_adan.py, and against its closed form in
        tests/transforms/test_proximal.py.
    """
    _checks.non_negative(
        "proximal_decay",
        allow_schedule=True,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )
    inactive = not callable(weight_decay) and isinstance(weight_decay, int | float)
    inactive = inactive and not weight_decay

    def init(params):
        del params
        return ProximalDecayState(count=zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="proximal_decay"))
        check_same_structure("proximal_decay", updates=updates, params=params)
        new_state = ProximalDecayState(safe_increment(state.count))
        if inactive:
            return updates, new_state
        f = jnp.result_type(float)
        at = lambda h: jnp.asarray(h(state.count) if callable(h) else h, f)
        rate = at(learning_rate) * at(weight_decay)

        def decay(d, p):
            if d is None:
                return None
            dt = compute_dtype(d, p)
            r = rate.astype(dt)
            return ((d.astype(dt) - r * p.astype(dt)) / (1 + r)).astype(d.dtype)

        return jax.tree.map(decay, updates, params, is_leaf=lambda x: x is None), new_state

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)


def proximal_chain(
    preconditioner: GradientTransformation,
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """``chain(preconditioner, add_decayed_weights, scale_by_learning_rate)`` with the
    decay taken as a proximal step.

    For each leaf, with u the preconditioner's output and p the param, the chain's
    decoupled step d = -lr * (u + weight_decay * p) becomes

        d = -lr * (u + weight_decay * p) / (1 + lr * weight_decay)

    so that p + d = (p - lr * u) / (1 + lr * weight_decay), as ``proximal_decay``
    gives. The state is the plain chain's, so an optimizer whose Optax version uses
    the decoupled form (Adan) keeps Optax's state layout. Schedules are evaluated at
    the counts held by the decay and learning-rate states.

    Args:
        preconditioner: The transformation whose output is u.
        learning_rate: Step size, >= 0, or a schedule of the step count.
        weight_decay: Decay rate, >= 0, or a schedule of the step count.
        mask: Where to apply the decay: a tree of bools or a function of the params.

    Returns:
        A GradientTransformation whose state is the plain chain's.

    References:
        Checked against pytorch_optimizer.Adan(weight_decouple=False) in
        tests/optimizers/test_adan.py.
    """
    _checks.non_negative(
        "proximal_chain",
        allow_schedule=True,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )
    inner = chain(
        preconditioner,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
    if not callable(weight_decay) and isinstance(weight_decay, int | float) and not weight_decay:
        return inner

    def at(value, state):
        # The one leaf of a schedule's state (inside MaskedState with a mask) is its count.
        return value(jax.tree.leaves(state)[0]) if callable(value) else value

    def update(updates, state, params=None, **extra_args):
        f = jnp.result_type(float)
        lr, wd = at(learning_rate, state[2]), at(weight_decay, state[1])
        rate = jnp.asarray(lr, f) * jnp.asarray(wd, f)
        updates, new_state = inner.update(updates, state, params, **extra_args)

        def shrink(d):
            dt = compute_dtype(d)
            return (d.astype(dt) / (1 + rate.astype(dt))).astype(d.dtype)

        tx = stateless(lambda u, _: jax.tree.map(shrink, u))
        tx = tx if mask is None else masked(tx, mask)
        updates, _ = tx.update(updates, tx.init(updates), params)
        return updates, new_state

    return GradientTransformation(inner.init, update)
