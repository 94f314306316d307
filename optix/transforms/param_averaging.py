"""Polyak averaging: an exponential moving average of the params, for evaluation."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    apply_updates,
    safe_increment,
    zero_count,
)
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, map_leaves


class EmaParamsState(NamedTuple):
    """State of ``ema_params``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    ema_params: Any  # param-shaped: the averaged params (dtype accumulator_dtype)


def ema_params(
    decay: ScalarOrSchedule,
    debias: bool = False,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
    *,
    copy_first: bool = False,
) -> GradientTransformation:
    """Keep an exponential moving average of the params in the state; updates pass through.

    Place it last in the chain, after the learning rate, so that params + updates are the
    new params. Read the average with ``optix.tree.get(state, "ema_params")``.

    For each leaf, with p the params, u the incoming update, p_new = p + u (cast to p's
    dtype, as ``apply_updates`` does) and t = count + 1:

        ema_params = w_old * ema_params + w_new * p_new     (starts at the initial params)
        (w_old, w_new) = (decay, 1 - decay)
        (w_old, w_new) = (0, 1) at t = 1                       if copy_first
        w_new = (1 - decay) / (1 - decay**t), w_old = 1 - w_new   if debias
        u is returned unchanged

    The default is ``incremental_update(p_new, ema_params, 1 - decay)`` after every step,
    an average that starts at the initial params. ``copy_first`` starts it at the params
    after the first step: torch.optim.swa_utils.AveragedModel with
    ``get_ema_multi_avg_fn(decay)``, updated after every step. ``debias`` is the bias-
    corrected average of a zero-started EMA (Optax's ``ema(decay, debias=True)`` fed the
    params), which weighs the params of the first steps more. A schedule ``decay`` warms
    the average up (e.g. ``lambda n: jnp.minimum(0.999, (1 + n) / (10 + n))``).

    Args:
        decay: Weight of the old average, in [0, 1], or a schedule of the step count.
        debias: Use the bias-corrected weights (needs a constant decay < 1).
        accumulator_dtype: Dtype of the average; ``None`` keeps the params' dtype.
            float32 keeps the small steps of an average of bf16 params.
        copy_first: The first update replaces the average by the params.

    Returns:
        A GradientTransformation whose state is ``EmaParamsState``.

    References:
        Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging",
        SIAM J. Control Optim. 30(4), 1992.
        Checked against torch.optim.swa_utils.AveragedModel, optix.incremental_update and
        optax.ema in tests/transforms/test_param_averaging.py.
    """
    _checks.in_unit_interval("ema_params", closed_right=True, allow_schedule=True, decay=decay)
    if debias and copy_first:
        raise ValueError("ema_params: debias and copy_first are two starts; pass one of them")
    if debias and callable(decay):
        raise ValueError("ema_params: debias needs a constant decay, got a schedule")
    if debias:
        _checks.in_unit_interval("ema_params", decay=decay)

    def weights(count):
        dtype = jnp.result_type(float)
        if debias and not callable(decay):  # debias with a schedule was rejected above
            c = bias_correction_factor(decay, safe_increment(count))
            w_new = jnp.asarray(1 - decay, dtype) / c
            return 1 - w_new, w_new
        rate = decay(count) if callable(decay) else decay
        w_old, w_new = ema_weights(rate, dtype)
        if copy_first:
            first = count == 0
            return jnp.where(first, 0, w_old).astype(dtype), jnp.where(first, 1, w_new)
        return w_old, w_new

    def leaf(p, e, w_old, w_new):
        dt = compute_dtype(p, e)
        new_e = w_old.astype(dt) * e.astype(dt) + w_new.astype(dt) * p.astype(dt)
        return (new_e.astype(e.dtype),)

    def init(params):
        averaged = jax.tree.map(lambda p: jnp.array(p, dtype=accumulator_dtype), params)
        return EmaParamsState(count=zero_count(), ema_params=averaged)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="ema_params"))
        w_old, w_new = weights(state.count)
        (averaged,) = map_leaves(
            lambda p, e: leaf(p, e, w_old, w_new),
            apply_updates(params, updates),
            state.ema_params,
            n_out=1,
        )
        return updates, EmaParamsState(count=safe_increment(state.count), ema_params=averaged)

    return GradientTransformation(init, update)
