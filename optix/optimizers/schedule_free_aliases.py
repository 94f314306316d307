"""Schedule-Free SGD and AdamW: ``schedule_free`` around momentum-free SGD and AdamW."""

from __future__ import annotations

from typing import Any, Literal, cast

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.optimizers.rmsprop import scale_by_rms
from optix.optimizers.schedule_free import BaseParams, check_args, schedule_free
from optix.optimizers.sgd import sgd
from optix.schedules import warmup_constant_schedule
from optix.schedules._common import Schedule
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights

WarmupConvention = Literal["optax", "official"]


def _learning_rates(
    fn: str, learning_rate: Any, warmup_steps: int | None, warmup_convention: str
) -> tuple[ScalarOrSchedule, ScalarOrSchedule]:
    """(the averaging weights' learning rate, the base optimizer's learning rate).

    ``schedule_free`` evaluates the first at step_count (1 on the first update), the base
    optimizer the second at its own count (0 on the first update).
    """
    _checks.one_of(fn, "warmup_convention", warmup_convention, ("optax", "official"))
    per_update: Any
    if warmup_steps is None:
        _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
        per_update = learning_rate
    else:
        _checks.finite(fn, learning_rate=learning_rate)
        _checks.integer_at_least(fn, "warmup_steps", warmup_steps, 0)
        warmup = warmup_constant_schedule(0.0, learning_rate, warmup_steps)
        if warmup_convention == "optax":
            return warmup, warmup
        per_update = lambda count: warmup(count + 1)  # lr * (count + 1) / W, as officially
    if warmup_convention == "optax" or not callable(per_update):
        return per_update, per_update
    schedule = cast(Schedule, per_update)

    def shifted(step_count: jax.typing.ArrayLike) -> jax.typing.ArrayLike:
        return schedule(jnp.asarray(step_count) - 1)

    return shifted, schedule


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: float = 2.0,
    state_dtype: jax.typing.DTypeLike | None = None,
    *,
    r: float = 0.0,
    warmup_convention: WarmupConvention = "optax",
) -> GradientTransformation:
    """Schedule-Free SGD: ``schedule_free(sgd(lr), lr, ...)``, with optional weight decay.

    For each leaf, with g the gradient at the params y, k = step_count (1 on the first
    update), lr_k the learning rate at step k and ck the averaging weight of
    ``schedule_free``:

        u = -lr_base * (g + weight_decay * y)
        z = z + u
        y = y + ck * (z - y) + (1 - ck) * (1 - b1) * u

    The base chain is ``chain(add_decayed_weights(weight_decay), sgd(lr))``, without the
    decay when ``weight_decay`` is None. With ``warmup_steps`` = W, s(k) = learning_rate *
    min(1, k / W); with a schedule s and no warmup, s is that schedule; otherwise both
    rates are learning_rate. The averaging weight's lr_k and the base's lr_base are:

        warmup_convention="optax":     lr_k = s(k),      lr_base = s(k - 1)
        warmup_convention="official":  with warmup:      lr_k = lr_base = s(k)
                                       with a schedule:  lr_k = lr_base = s(k - 1)

    "optax" is Optax's (the base optimizer counts from 0, the wrapper from 1: the first
    warmup step moves z by 0); "official" gives both the rate of the current update, as
    facebookresearch schedulefree's SGDScheduleFree does with its warmup
    (learning_rate * (k + 1) / W for its 0-based k) or with ``group["lr"]`` set before
    each step to s(number of steps so far). Evaluate at ``schedule_free_eval_params``.

    Args:
        learning_rate: Peak learning rate (a schedule only without ``warmup_steps``).
        warmup_steps: Length of the linear warmup from 0, an int >= 0 (0 or None: none).
        b1: Interpolation weight, in (0, 1] (the official ``momentum``).
        weight_decay: L2 coefficient, >= 0, applied at y and scaled by the learning rate,
            as in both references; None leaves it out of the chain.
        weight_lr_power: Power of the largest learning rate in the averaging weight.
        state_dtype: Dtype of z; ``None`` keeps the params' dtype.
        r: Power of the step count in the averaging weight (official only; Optax: 0).
        warmup_convention: ``"optax"`` (default) or ``"official"``, see above.

    Returns:
        A GradientTransformation whose state is ``ScheduleFreeState``.

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024, arXiv:2405.15682.
        Checked against optax.contrib.schedule_free_sgd and schedulefree.SGDScheduleFree
        (with its Reference and Closure forms) in tests/optimizers/test_schedule_free.py.
    """
    fn = "schedule_free_sgd"
    check_args(fn, b1, weight_lr_power, r, state_dtype)
    _checks.non_negative(fn, allow_schedule=True, allow_none=True, weight_decay=weight_decay)
    average_lr, base_lr = _learning_rates(fn, learning_rate, warmup_steps, warmup_convention)
    base = sgd(base_lr)
    if weight_decay is not None:
        base = chain(add_decayed_weights(weight_decay), base)
    return schedule_free(base, average_lr, b1, weight_lr_power, state_dtype, r=r)


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: float = 2.0,
    state_dtype: jax.typing.DTypeLike | None = None,
    *,
    r: float = 0.0,
    warmup_convention: WarmupConvention = "optax",
    decay_at_z: bool = False,
) -> GradientTransformation:
    """Schedule-Free AdamW: ``schedule_free`` around AdamW without its first moment.

    For each leaf, with g the gradient at the params y, t = k = step_count (1 on the
    first update), lr_base and ck as in ``schedule_free_sgd`` and ``schedule_free``, and
    w = z if ``decay_at_z`` else y:

        nu = b2 * nu + (1 - b2) * g**2
        u = -lr_base * (g / (sqrt(nu / (1 - b2**t)) + eps) + weight_decay * w)
        z = z + u
        y = y + ck * (z - y) + (1 - ck) * (1 - b1) * u

    The base chain is Optax's: ``chain(scale_by_rms(b2, eps, eps_in_sqrt=False,
    bias_correction=True), add_decayed_weights(weight_decay), scale_by_learning_rate(lr))``
    (Adam with b1 = 0, without storing a zero first moment). ``warmup_convention``
    chooses lr_base during warmup as in ``schedule_free_sgd``; "official" follows
    facebookresearch schedulefree's AdamWScheduleFree, whose averaging weight Optax's
    already matches. Evaluate at ``schedule_free_eval_params``.

    Args:
        learning_rate: Peak learning rate (a schedule only without ``warmup_steps``).
        warmup_steps: Length of the linear warmup from 0, an int >= 0 (0 or None: none).
        b1: Interpolation weight, in (0, 1] (the official ``betas[0]``).
        b2: Decay of the second moment, in [0, 1).
        eps: Added to the root of the second moment, >= 0.
        weight_decay: Decoupled decay coefficient, >= 0, scaled by the learning rate.
        weight_lr_power: Power of the largest learning rate in the averaging weight.
        state_dtype: Dtype of z; ``None`` keeps the params' dtype.
        r: Power of the step count in the averaging weight (official only; Optax: 0).
        warmup_convention: ``"optax"`` (default) or ``"official"``.
        decay_at_z: Decay at z instead of y (the official reference implementation's
            ``decay_at_z``; Optax and the official AdamWScheduleFree decay at y).

    Returns:
        A GradientTransformation whose state is ``ScheduleFreeState``.

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024, arXiv:2405.15682.
        Checked against optax.contrib.schedule_free_adamw and
        schedulefree.AdamWScheduleFree (with its Reference and Closure forms) in
        tests/optimizers/test_schedule_free.py.
    """
    fn = "schedule_free_adamw"
    check_args(fn, b1, weight_lr_power, r, state_dtype)
    _checks.in_interval(fn, "[0, 1)", b2=b2)
    _checks.non_negative(fn, eps=eps)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    average_lr, base_lr = _learning_rates(fn, learning_rate, warmup_steps, warmup_convention)
    base = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(base_lr),
    )
    at: BaseParams = "z" if decay_at_z else "y"
    return schedule_free(base, average_lr, b1, weight_lr_power, state_dtype, r=r, base_params=at)
