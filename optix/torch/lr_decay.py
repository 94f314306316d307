"""torch.optim.lr_scheduler's step, warmup and decay schedulers (each step multiplies the lr).

Each function takes torch's arguments and defaults without ``optimizer`` and
``last_epoch``, plus the base learning rate ``lr`` first (torch reads it from the
optimizer), and returns a ``TorchLRSchedule``: a schedule ``count -> lr`` to pass as
any optix optimizer's learning rate. count k is ``get_last_lr()`` after k calls of
``scheduler.step()``, so count 0 is the learning rate of the first optimizer step.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import as_float, blend, linear_weights
from optix.torch.lr_base import TorchLRSchedule, check_lr, factor_schedule, power_of


def step_lr(lr: float, step_size: int, gamma: float = 0.1) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.StepLR: decay by ``gamma`` every ``step_size`` steps.

    lr(e) = lr * gamma ** (e // step_size), with e the count.

    Args:
        lr: Base learning rate (the optimizer's lr in torch), >= 0.
        step_size: Steps between decays, an int >= 1.
        gamma: Multiplicative decay, >= 0.

    Returns:
        A ``TorchLRSchedule``.

    References:
        Checked against torch.optim.lr_scheduler.StepLR in tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.step_lr"
    check_lr(fn, lr)
    _checks.integer_at_least(fn, "step_size", step_size, 1)
    _checks.non_negative(fn, gamma=gamma)
    return factor_schedule(
        "StepLR",
        lr,
        factor=lambda e: power_of(gamma, e // step_size),
        ratio=lambda e: jnp.where(e % step_size == 0, as_float(gamma), as_float(1.0)),
    )


def multi_step_lr(lr: float, milestones: Iterable[int], gamma: float = 0.1) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.MultiStepLR: decay by ``gamma`` at each milestone.

    lr(e) = lr * gamma ** n(e), n(e) = number of milestones <= e; a milestone listed
    twice counts twice, as in torch (which keeps them in a Counter).

    Args:
        lr: Base learning rate, >= 0.
        milestones: Steps at which to decay, ints >= 0 in non-decreasing order.
        gamma: Multiplicative decay, >= 0.

    Returns:
        A ``TorchLRSchedule``.

    References:
        Checked against torch.optim.lr_scheduler.MultiStepLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.multi_step_lr"
    check_lr(fn, lr)
    _checks.non_negative(fn, gamma=gamma)
    milestones = list(milestones)
    for m in milestones:
        _checks.integer_at_least(fn, "milestones", m, 0)
    if milestones != sorted(milestones):
        raise ValueError(
            f"{fn}: milestones must be in non-decreasing order, got milestones={milestones!r}"
        )

    def passed(e, compare):
        if not milestones:
            return jnp.zeros([], e.dtype)
        return jnp.sum(compare(jnp.asarray(milestones, e.dtype), e))

    return factor_schedule(
        "MultiStepLR",
        lr,
        factor=lambda e: power_of(gamma, passed(e, jnp.less_equal)),
        ratio=lambda e: power_of(gamma, passed(e, jnp.equal)),
    )


def constant_lr(lr: float, factor: float = 1.0 / 3, total_iters: int = 5) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.ConstantLR: ``lr * factor`` for ``total_iters`` steps, then lr.

    lr(e) = lr * factor if e < total_iters else lr.

    torch with ``total_iters=0`` keeps ``lr * factor`` forever (its closed form says
    lr); that degenerate case raises here.

    Args:
        lr: Base learning rate, >= 0.
        factor: Multiplier during the first steps, in [0, 1].
        total_iters: Number of scaled steps, an int >= 1.

    Returns:
        A ``TorchLRSchedule``.

    References:
        Checked against torch.optim.lr_scheduler.ConstantLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.constant_lr"
    check_lr(fn, lr)
    _checks.in_unit_interval(fn, closed_right=True, factor=factor)
    _checks.integer_at_least(fn, "total_iters", total_iters, 1)
    return factor_schedule(
        "ConstantLR",
        lr,
        factor=lambda e: jnp.where(e < total_iters, as_float(factor), as_float(1.0)),
        ratio=lambda e: jnp.where(e == total_iters, 1.0 / as_float(factor), as_float(1.0)),
    )


def linear_lr(
    lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.LinearLR: the factor moves linearly, then holds.

    lr(e) = lr * (start_factor + (end_factor - start_factor) * min(e, T) / T), with
    T = total_iters, computed as a blend of the two factors so a decay to 0 keeps its
    relative precision in float32.

    Args:
        lr: Base learning rate, >= 0.
        start_factor: Factor at step 0, in (0, 1].
        end_factor: Factor from step ``total_iters`` on, in [0, 1].
        total_iters: Steps of the linear change, an int >= 1 (torch divides by it).

    Returns:
        A ``TorchLRSchedule``.

    References:
        Checked against torch.optim.lr_scheduler.LinearLR in tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.linear_lr"
    check_lr(fn, lr)
    _checks.positive(fn, start_factor=start_factor)
    _checks.in_unit_interval(fn, closed_right=True, start_factor=start_factor)
    _checks.in_unit_interval(fn, closed_right=True, end_factor=end_factor)
    _checks.integer_at_least(fn, "total_iters", total_iters, 1)
    delta = end_factor - start_factor

    def ratio(e):
        moved = 1.0 + delta / (total_iters * start_factor + as_float(e - 1) * delta)
        return jnp.where(e <= total_iters, moved, as_float(1.0))

    return factor_schedule(
        "LinearLR",
        lr,
        factor=lambda e: blend(
            start_factor,
            end_factor,
            linear_weights(as_float(jnp.minimum(e, total_iters)), total_iters),
        ),
        ratio=ratio,
    )


def exponential_lr(lr: float, gamma: float) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.ExponentialLR: decay by ``gamma`` every step.

    lr(e) = lr * gamma ** e, computed as exp(e * log(gamma)) with log(gamma) taken in
    double precision: in float32 the relative error is about 6e-8 * |e * log(gamma)|.

    Args:
        lr: Base learning rate, >= 0.
        gamma: Multiplicative decay per step, >= 0.

    Returns:
        A ``TorchLRSchedule``.

    References:
        Checked against torch.optim.lr_scheduler.ExponentialLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.exponential_lr"
    check_lr(fn, lr)
    _checks.non_negative(fn, gamma=gamma)
    return factor_schedule(
        "ExponentialLR",
        lr,
        factor=lambda e: power_of(gamma, e),
        ratio=lambda e: as_float(gamma),
    )


def polynomial_lr(lr: float, total_iters: int = 5, power: float = 1.0) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.PolynomialLR: polynomial decay to 0 over ``total_iters`` steps.

    lr(e) = lr * ((T - min(e, T)) / T) ** power, with T = total_iters.

    Args:
        lr: Base learning rate, >= 0.
        total_iters: Steps of the decay, an int >= 1 (torch divides by it).
        power: Exponent of the decay, >= 0.

    Returns:
        A ``TorchLRSchedule``.

    References:
        Checked against torch.optim.lr_scheduler.PolynomialLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.polynomial_lr"
    check_lr(fn, lr)
    _checks.integer_at_least(fn, "total_iters", total_iters, 1)
    _checks.non_negative(fn, power=power)
    T = total_iters

    def factor(e):
        rest = as_float(T - jnp.minimum(e, T)) / T
        return rest ** as_float(power)

    def ratio(e):
        ef = as_float(e)
        moved = ((1.0 - ef / T) / (1.0 - (ef - 1.0) / T)) ** as_float(power)
        return jnp.where(e <= T, moved, as_float(1.0))

    return factor_schedule("PolynomialLR", lr, factor=factor, ratio=ratio)
