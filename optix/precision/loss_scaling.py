"""Dynamic loss scaling for float16 training, with non-finite steps skipped.

The loss is multiplied by a scale before differentiation so that small float16
gradients do not flush to zero; ``dynamic_loss_scale`` divides the gradients by it,
halves the scale when they overflow, and doubles it after a run of finite steps.
``apply_if_finite`` (after it in a chain) skips the overflowing steps.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, chain, zero_count
from optix.transforms.finite import all_finite, apply_if_finite
from optix.tree import get as get_field
from optix.tree.leafwise import compute_dtype

# Safe-incremented int32 counts saturate here, so apply_if_finite never gives up.
_NEVER = 2**31 - 1


class DynamicLossScaleState(NamedTuple):
    """State of ``dynamic_loss_scale``."""

    loss_scale: jax.Array  # float32 scalar: the scale the loss is multiplied by
    good_steps: jax.Array  # int32 scalar: finite steps in a row since the scale last changed


def _at_least_one(fn: str, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, int | float) and not 1 <= value < math.inf:
            raise ValueError(f"{fn}: {name} must be finite and >= 1, got {name}={value!r}")


def dynamic_loss_scale(
    init_scale: float = 2.0**16,
    growth_interval: int = 2000,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    *,
    min_scale: float = 1.0,
) -> GradientTransformation:
    """Unscale loss-scaled gradients and adapt the scale, as torch.amp.GradScaler does.

    With s = loss_scale, g the gradient of ``s * loss`` and finite whether every entry
    of g / s is finite:

        out = g / s                                  (in at least float32)
        good_steps = good_steps + 1 if finite else 0
        s = max(s * backoff_factor, min_scale)       if not finite
        s = s * growth_factor, good_steps = 0        if good_steps == growth_interval
                                                     (kept if s * growth_factor is inf)

    Non-finite gradients pass on unscaled (still non-finite): put ``apply_if_finite``
    after this transform to skip them, or use ``with_dynamic_loss_scale``. The outputs
    are at least float32 whatever the gradients' dtype, since unscaled float16 gradients
    would underflow again. Read the scale with ``current_loss_scale(state)`` and apply
    it with ``scale_loss``. These are torch.amp.GradScaler's defaults and rules (jmp's
    ``DynamicLossScale`` has one ``factor`` for both directions); ``min_scale`` is
    jmp's ``min_loss_scale`` (torch has no floor: pass 0).

    Args:
        init_scale: The first scale, > 0.
        growth_interval: Finite steps in a row before the scale grows, an int >= 1.
        growth_factor: Growth multiplier, >= 1.
        backoff_factor: Multiplier after a non-finite step, in (0, 1].
        min_scale: The scale never backs off below this, >= 0.

    Returns:
        A GradientTransformation whose state is ``DynamicLossScaleState``.

    References:
        Micikevicius et al., "Mixed Precision Training", ICLR 2018, arXiv:1710.03740,
        section 3.2.
        Checked against torch.amp.GradScaler in tests/precision/test_loss_scaling.py.
    """
    fn = "dynamic_loss_scale"
    _checks.positive(fn, init_scale=init_scale, backoff_factor=backoff_factor)
    _checks.in_unit_interval(fn, closed_right=True, backoff_factor=backoff_factor)
    _checks.integer_at_least(fn, "growth_interval", growth_interval, 1)
    _at_least_one(fn, growth_factor=growth_factor)
    _checks.non_negative(fn, min_scale=min_scale)

    def init(params):
        del params
        return DynamicLossScaleState(jnp.asarray(init_scale, jnp.float32), zero_count())

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        scale = state.loss_scale
        unscaled = unscale_grads(updates, scale)
        finite = all_finite(unscaled)
        good_steps = jnp.where(finite, state.good_steps + 1, zero_count())
        grow = good_steps >= growth_interval
        grown = scale * jnp.asarray(growth_factor, scale.dtype)
        grown = jnp.where(jnp.isfinite(grown), grown, scale)
        backed_off = jnp.maximum(
            scale * jnp.asarray(backoff_factor, scale.dtype), jnp.asarray(min_scale, scale.dtype)
        )
        scale = jnp.where(finite, jnp.where(grow, grown, scale), backed_off)
        good_steps = jnp.where(grow, zero_count(), good_steps)
        return unscaled, DynamicLossScaleState(scale, good_steps)

    return GradientTransformation(init, update)


def with_dynamic_loss_scale(
    inner: GradientTransformation,
    init_scale: float = 2.0**16,
    growth_interval: int = 2000,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    *,
    min_scale: float = 1.0,
    max_consecutive_errors: int | None = None,
) -> GradientTransformation:
    """``chain(dynamic_loss_scale(...), apply_if_finite(inner, max_consecutive_errors))``.

    A step whose unscaled gradients are not finite backs the scale off and outputs zero
    updates, leaving ``inner``'s state untouched. ``max_consecutive_errors=None`` skips
    every such step; an int gives up after that many in a row, as ``apply_if_finite``
    does. Update rule and other arguments: see ``dynamic_loss_scale``.

    The float16 recipe: ``with_dynamic_loss_scale(with_master_weights(optix.adamw(...)))``
    and, in the train step, the gradient of ``scale_loss(loss, current_loss_scale(state))``
    (a float16 backward pass overflows at 2**16 already: the first step backs off).

    Returns:
        A GradientTransformation whose state is ``(DynamicLossScaleState,
        ApplyIfFiniteState)``.
    """
    limit = _NEVER if max_consecutive_errors is None else max_consecutive_errors
    return chain(
        dynamic_loss_scale(
            init_scale, growth_interval, growth_factor, backoff_factor, min_scale=min_scale
        ),
        apply_if_finite(inner, limit),
    )


def current_loss_scale(opt_state: Any) -> jax.Array:
    """The ``loss_scale`` held in an optimizer state (the single one in the tree).

    Raises:
        KeyError: if the state holds no loss scale, or several.
    """
    scale = get_field(opt_state, "loss_scale")
    if scale is None:
        raise KeyError(
            "current_loss_scale: the state holds no loss_scale; build the optimizer with "
            "dynamic_loss_scale or with_dynamic_loss_scale."
        )
    return scale


def scale_loss(loss: jax.Array, loss_scale: jax.typing.ArrayLike) -> jax.Array:
    """``loss * loss_scale``, in at least float32 (differentiate this, not the loss)."""
    loss = jnp.asarray(loss)
    dt = compute_dtype(loss)
    return loss.astype(dt) * jnp.asarray(loss_scale).astype(dt)


def unscale_grads(grads: Any, loss_scale: jax.typing.ArrayLike) -> Any:
    """Each gradient divided by ``loss_scale``, in at least float32; ``None`` leaves pass."""

    def unscale(g):
        dt = compute_dtype(g)
        return g.astype(dt) / jnp.asarray(loss_scale).astype(dt)

    return jax.tree.map(unscale, grads)
