"""torch schedulers built from user functions (LambdaLR, MultiplicativeLR) or from other
schedulers (SequentialLR, ChainedScheduler)."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import as_float
from optix.torch.lr_base import (
    TorchLRSchedule,
    absolute_schedule,
    check_lambda,
    check_lr,
    factor_schedule,
    recurse,
)


def lambda_lr(lr: float, lr_lambda: Callable) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.LambdaLR: the base lr times a function of the step.

    lr(e) = lr * lr_lambda(e). ``lr_lambda`` gets the count as an integer JAX array, as
    torch passes an int, and must be traceable (``jnp.minimum``, not Python's ``min``).

    Args:
        lr: Base learning rate, >= 0.
        lr_lambda: Function of the integer step returning the factor.

    Returns:
        A ``TorchLRSchedule`` of kind "absolute".

    References:
        Checked against torch.optim.lr_scheduler.LambdaLR in tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.lambda_lr"
    check_lr(fn, lr)
    check_lambda(fn, lr_lambda)
    return absolute_schedule("LambdaLR", lr, lambda e: as_float(lr) * as_float(lr_lambda(e)))


def multiplicative_lr(lr: float, lr_lambda: Callable) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.MultiplicativeLR: each step multiplies the lr by a function of it.

    lr(e) = lr * lr_lambda(1) * ... * lr_lambda(e). With an arbitrary function the
    product has no closed form: it takes O(count) work per call (a ``fori_loop``).
    ``lr_lambda`` gets the integer step as a JAX array and must be traceable. Inside
    ``sequential_lr`` torch resumes it from the current lr times ``lr_lambda(0)``
    rather than restarting it; that is reproduced.

    Args:
        lr: Base learning rate, >= 0.
        lr_lambda: Function of the integer step returning the factor of that step.

    Returns:
        A ``TorchLRSchedule`` of kind "factor".

    References:
        Checked against torch.optim.lr_scheduler.MultiplicativeLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.multiplicative_lr"
    check_lr(fn, lr)
    check_lambda(fn, lr_lambda)

    def ratio(e):
        return as_float(lr_lambda(e))

    return factor_schedule(
        "MultiplicativeLR",
        lr,
        factor=lambda e: recurse(as_float(1.0), lambda j, x: x * ratio(j), e),
        ratio=ratio,
        continues=True,
    )


def _members(fn: str, schedulers: Sequence[TorchLRSchedule]) -> tuple[list, Any]:
    """The member schedulers and their common base lr (torch's share one optimizer)."""
    members = list(schedulers)
    if not members:
        raise ValueError(f"{fn}: schedulers must hold at least one scheduler, got schedulers=[]")
    for i, member in enumerate(members):
        if not isinstance(member, TorchLRSchedule) or member.kind == "composite":
            raise TypeError(
                f"{fn}: schedulers[{i}] must be an optix.torch learning-rate scheduler "
                f"(not sequential_lr or chained_scheduler), got {member!r}; "
                "plain schedules join with optix.join_schedules"
            )
    lrs = [m.lr for m in members if isinstance(m.lr, numbers.Real)]
    if any(lr != lrs[0] for lr in lrs):
        raise ValueError(
            f"{fn}: the schedulers must share one base lr (in torch they share one "
            f"optimizer), got lrs={lrs!r}"
        )
    others = [m.lr for m in members if m.lr is not None]
    return members, (lrs or others or [None])[0]


def sequential_lr(
    schedulers: Sequence[TorchLRSchedule], milestones: Sequence[int]
) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.SequentialLR: run each scheduler from its milestone on.

    With milestones m_1 < m_2 < ...: scheduler j runs on steps [m_j, m_{j+1}) at its
    own step e - m_j, restarted from its first value as torch's ``_update_lr(0)`` does
    (MultiplicativeLR instead resumes from the lr the previous scheduler left, times
    ``lr_lambda(0)``, as in torch).

    Args:
        schedulers: optix.torch schedulers built with the same lr.
        milestones: One fewer than ``schedulers``: strictly increasing ints >= 1.

    Returns:
        A ``TorchLRSchedule`` of kind "composite".

    References:
        Checked against torch.optim.lr_scheduler.SequentialLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.sequential_lr"
    members, base = _members(fn, schedulers)
    milestones = list(milestones)
    if len(milestones) != len(members) - 1:
        raise ValueError(
            f"{fn}: milestones must hold len(schedulers) - 1 = {len(members) - 1} "
            f"steps, got milestones={milestones!r}"
        )
    for m in milestones:
        _checks.integer_at_least(fn, "milestones", m, 1)
    if any(b <= a for a, b in itertools.pairwise(milestones)):
        raise ValueError(f"{fn}: milestones must increase strictly, got milestones={milestones!r}")
    begins = [0, *milestones]

    def segment(j, e):
        """The lr at step e while scheduler j runs."""
        member, begin = members[j], begins[j]
        local = jnp.maximum(e - begin, 0)
        if j > 0 and member.continues:
            left = segment(j - 1, jnp.asarray(begin - 1, e.dtype))
            return member.step(jnp.zeros_like(e), left) * member.factor(local)
        return member.value(local)

    def value(e):
        index = jnp.sum(jnp.asarray(milestones, e.dtype) <= e) if milestones else 0
        return jnp.stack([segment(j, e) for j in range(len(members))])[index]

    return TorchLRSchedule("SequentialLR", base, "composite", value)


def chained_scheduler(schedulers: Sequence[TorchLRSchedule]) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.ChainedScheduler: every scheduler steps, in order, each step.

    torch's recursion, lr_e = step_n(e, ... step_1(e, lr_{e-1})) from the members'
    initial steps, evaluated in closed form when it has one: the product
    lr * factor_1(e) * ... * factor_n(e) when every member multiplies the lr (StepLR,
    MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, MultiplicativeLR),
    or the later members' steps applied to the last member that sets the lr outright
    (LambdaLR, CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts). A chain whose last
    such member is CosineAnnealingLR follows the recursion itself: O(count) work per call.

    Args:
        schedulers: optix.torch schedulers built with the same lr.

    Returns:
        A ``TorchLRSchedule`` of kind "composite".

    References:
        Checked against torch.optim.lr_scheduler.ChainedScheduler in
        tests/torch/test_lr_scheduler.py.
    """
    members, base = _members("optix.torch.chained_scheduler", schedulers)
    absolute = [i for i, m in enumerate(members) if m.kind == "absolute"]
    later = members[absolute[-1] + 1 :] if absolute else members

    def start(x):
        for member in later:
            x = member.start(x)
        return x

    def step(e, x):
        for member in later:
            x = member.step(e, x)
        return x

    def value(e):
        if absolute:
            first = members[absolute[-1]]
            return jnp.where(e == 0, start(first.value(jnp.zeros_like(e))), step(e, first.value(e)))
        if all(m.kind == "factor" for m in members):
            product = as_float(base)
            for member in members:
                product = product * member.factor(e)
            return product
        return recurse(start(as_float(base)), step, e)

    return TorchLRSchedule("ChainedScheduler", base, "composite", value)
