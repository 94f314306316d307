"""Scale the updates down when a monitored value stops improving (reduce on plateau).

One implementation serves Optax's ``contrib.reduce_on_plateau`` (its defaults) and
torch's ``ReduceLROnPlateau`` (``optix.torch.reduce_lr_on_plateau`` sets the options).
The value arrives through ``update(updates, state, params, value=loss)``; it may be a
traced scalar, so every decision is a ``jnp.where`` and the step compiles once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, safe_increment, zero_count
from optix.transforms.scaling import scale_leaves
from optix.tree.leafwise import compute_dtype


class ReduceLROnPlateauState(NamedTuple):
    """State of ``reduce_on_plateau`` (Optax's class and fields)."""

    scale: jax.Array  # multiplier of the updates (torch: current lr / base lr)
    best_value: jax.Array  # best value so far (torch's best)
    plateau_count: jax.Array  # int32: decisions without improvement (torch's num_bad_epochs)
    cooldown_count: jax.Array  # int32: decisions left in cooldown (torch's cooldown_counter)
    # int32: values accumulated toward the next decision
    count: jax.Array  # type: ignore[assignment]
    avg_value: jax.Array  # mean of the values accumulated so far


def reduce_on_plateau(
    factor: float = 0.1,
    patience: jax.typing.ArrayLike = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: jax.typing.ArrayLike = 0,
    accumulation_size: jax.typing.ArrayLike = 1,
    min_scale: jax.typing.ArrayLike = 0.0,
    *,
    mode: str = "min",
    eps: float | None = None,
    lagged: bool = False,
    sign_aware_rtol: bool = False,
) -> GradientTransformation:
    """Multiply updates by a scale that drops by ``factor`` when the value plateaus.

    For each leaf, with g the incoming update: u = scale * g, with the scale after this
    call's decision (before it, with ``lagged``). Values are averaged over
    ``accumulation_size`` calls; each full average v makes one decision (s = 1 for mode
    "min", -1 for "max"; r = 1, or sign(best) with ``sign_aware_rtol``):

        improved = s * v < s * (best * (1 - s * r * rtol) - s * atol)
        best = v if improved;  plateau_count = 0 if improved else plateau_count + 1
        if cooldown_count > 0:  cooldown_count -= 1;  plateau_count = 0
        elif plateau_count == patience:
            scale = max(scale * factor, min_scale);  plateau_count = 0;
            cooldown_count = cooldown

    The first value always improves (best starts at +inf, or -inf for "max"). With a
    negative best, the plain relative margin moves the wrong way (both Optax and torch
    count a small worsening as an improvement, so a flat negative loss never reduces:
    pytorch/pytorch#47513, google-deepmind/optax PR #1767); ``sign_aware_rtol`` takes the
    margin from |best| instead. Optax reduces when the count reaches ``patience``; torch
    when it exceeds its patience, i.e. this ``patience`` = torch's + 1.

    Args:
        factor: Multiplier of the scale at each reduction, in [0, 1).
        patience: Decisions without improvement that trigger a reduction, >= 0 (as in
            Optax, 0 never reduces: the count is at least 1 when it is compared).
        rtol: Relative margin an improvement must beat, >= 0.
        atol: Absolute margin an improvement must beat, >= 0.
        cooldown: Decisions after a reduction during which no plateau is counted, >= 0.
        accumulation_size: Values averaged into one decision, >= 1.
        min_scale: Floor of the scale, >= 0.
        mode: "min" (the value should decrease) or "max".
        eps: If set, a reduction smaller than ``eps`` is skipped (torch's eps, in scale
            units); None applies every reduction, as Optax does.
        lagged: The scale a decision sets applies from the next update (torch's order,
            ``optimizer.step()`` then ``scheduler.step(value)``), not this one (Optax).
        sign_aware_rtol: Use the margin rtol * |best| (correct for negative values).

    Returns:
        A GradientTransformation whose state is ``ReduceLROnPlateauState``; ``update``
        needs ``value=`` and ignores other extra arguments.

    References:
        Checked against optax.contrib.reduce_on_plateau and
        torch.optim.lr_scheduler.ReduceLROnPlateau in tests/transforms/test_reduce_on_plateau.py.
    """
    fn = "reduce_on_plateau"
    _checks.in_unit_interval(fn, factor=factor)
    _checks.non_negative(fn, patience=patience, rtol=rtol, atol=atol, cooldown=cooldown)
    _checks.non_negative(fn, min_scale=min_scale)
    _checks.positive(fn, accumulation_size=accumulation_size)
    _checks.one_of(fn, "mode", mode, ("min", "max"))
    if eps is not None:
        _checks.non_negative(fn, eps=eps)
    sign = 1.0 if mode == "min" else -1.0

    def init(params):
        dt = compute_dtype(*jax.tree.leaves(params))
        return ReduceLROnPlateauState(
            scale=jnp.ones([], dt),
            best_value=jnp.asarray(sign * jnp.inf, dt),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], dt),
        )

    def decide(state, v):
        best = state.best_value
        r = jnp.sign(best) if sign_aware_rtol else 1.0
        improved = sign * v < sign * (best * (1 - sign * r * rtol) - sign * atol)
        plateau = jnp.where(improved, 0, safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = ~cooling & (plateau == patience)
        candidate = jnp.maximum(
            jnp.where(reduce, state.scale * factor, state.scale), jnp.asarray(min_scale, v.dtype)
        )
        if eps is not None:
            candidate = jnp.where(state.scale - candidate > eps, candidate, state.scale)
        cooldown_left = jnp.where(reduce, jnp.asarray(cooldown, jnp.int32), 0)
        return ReduceLROnPlateauState(
            scale=jnp.where(cooling, state.scale, candidate).astype(state.scale.dtype),
            best_value=jnp.where(improved, v, best),
            plateau_count=jnp.where(cooling | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(cooling, state.cooldown_count - 1, cooldown_left),
            count=zero_count(),
            avg_value=jnp.zeros_like(state.avg_value),
        )

    def update(updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        if value is None:
            raise _checks.MissingExtraArgumentError(
                f"{fn}: update needs the monitored value, as "
                "update(updates, state, params, value=loss)"
            )
        dt = state.avg_value.dtype
        count = safe_increment(state.count)
        avg = (state.count.astype(dt) * state.avg_value + jnp.asarray(value, dt)) / count.astype(dt)
        waiting = state._replace(count=count, avg_value=avg)
        decided = decide(waiting, avg)
        ready = count == accumulation_size
        new_state = jax.tree.map(lambda d, w: jnp.where(ready, d, w), decided, waiting)
        applied = state.scale if lagged else new_state.scale
        return scale_leaves(applied, updates), new_state

    return GradientTransformation(init, update)
