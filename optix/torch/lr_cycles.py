"""torch's cyclical schedulers, OneCycleLR and CyclicLR, with their momentum cycles.

Both set the learning rate from their own arguments (torch overwrites the optimizer's
lr), so they take no ``lr``. When they cycle momentum, ``schedule.momentum`` is the
schedule of SGD's ``momentum`` or Adam's ``b1`` (torch's ``betas[0]``): pass it where
the optimizer takes that hyperparameter, through ``inject_hyperparams`` or directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import as_float, blend, cosine_weights, linear_weights
from optix.torch.lr_base import TorchLRSchedule, absolute_schedule, epoch_of, power_of


def _total_steps(fn, total_steps, epochs, steps_per_epoch) -> int:
    if total_steps is not None:
        _checks.integer_at_least(fn, "total_steps", total_steps, 1)
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError(f"{fn}: give total_steps, or both epochs and steps_per_epoch")
    _checks.integer_at_least(fn, "epochs", epochs, 1)
    _checks.integer_at_least(fn, "steps_per_epoch", steps_per_epoch, 1)
    return epochs * steps_per_epoch


def one_cycle_lr(
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.OneCycleLR: warm up to max_lr, then anneal far below the start.

    With T = total_steps, P = pct_start * T, lr0 = max_lr / div_factor and
    lr_min = lr0 / final_div_factor, the phases end at steps (torch's float arithmetic)

        two phases:    P - 1 (lr0 -> max_lr),  T - 1 (max_lr -> lr_min)
        three phases:  P - 1 (lr0 -> max_lr),  2P - 2 (max_lr -> lr0),  T - 1 (lr0 -> lr_min)

    Step k belongs to the first phase whose end is >= k; with s, f the phase's start and
    end steps and pct = (k - s) / (f - s), "cos" gives end + (start - end) *
    (1 + cos(pi * pct)) / 2 and "linear" gives start + (end - start) * pct, both
    computed as blends that stay exact near lr_min in float32. Momentum moves inversely:
    max_momentum -> base_momentum -> max_momentum (three phases: the last phase holds
    max_momentum). torch raises after T scheduler steps; here counts past T - 1 hold the
    value at T - 1. Optax's ``cosine_onecycle_schedule`` ends its phases one step later.

    Args:
        max_lr: Peak learning rate, >= 0.
        total_steps: Length of the cycle, an int >= 1; or give both ``epochs`` and
            ``steps_per_epoch`` instead.
        epochs: Number of epochs, an int >= 1; the length is ``epochs * steps_per_epoch``.
        steps_per_epoch: Steps in one epoch, an int >= 1.
        pct_start: Fraction of the cycle spent rising, in [0, 1].
        anneal_strategy: "cos" or "linear".
        cycle_momentum: Provide ``schedule.momentum`` (else it is None).
        base_momentum: Momentum at the peak learning rate.
        max_momentum: Momentum at the start and the end.
        div_factor: lr0 = max_lr / div_factor, > 0.
        final_div_factor: lr_min = lr0 / final_div_factor, > 0.
        three_phase: Use the paper's three phases instead of fastai's two.

    Returns:
        A ``TorchLRSchedule`` of kind "absolute", with ``momentum``.

    References:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using
        Large Learning Rates", 2017, arXiv:1708.07120.
        Checked against torch.optim.lr_scheduler.OneCycleLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.one_cycle_lr"
    total = _total_steps(fn, total_steps, epochs, steps_per_epoch)
    _checks.non_negative(fn, max_lr=max_lr)
    _checks.positive(fn, div_factor=div_factor, final_div_factor=final_div_factor)
    _checks.in_unit_interval(fn, closed_right=True, pct_start=pct_start)
    _checks.one_of(fn, "anneal_strategy", anneal_strategy, ("cos", "linear"))
    lr0 = max_lr / div_factor
    lr_min = lr0 / final_div_factor
    rise_end = float(pct_start * total) - 1
    if rise_end == 0.0:
        raise ValueError(
            f"{fn}: pct_start * total_steps must not be 1 (torch divides by zero), "
            f"got pct_start={pct_start!r}, total_steps={total!r}"
        )
    hi, lo = max_momentum, base_momentum
    if three_phase:
        phases = [
            (rise_end, lr0, max_lr, hi, lo),
            (float(2 * pct_start * total) - 2, max_lr, lr0, lo, hi),
            (total - 1, lr0, lr_min, hi, hi),
        ]
    else:
        phases = [(rise_end, lr0, max_lr, hi, lo), (total - 1, max_lr, lr_min, lo, hi)]
    weights_of = cosine_weights if anneal_strategy == "cos" else linear_weights

    def phase_values(e, column):
        k = jnp.clip(e, 0, total - 1)
        index = jnp.asarray(len(phases) - 1)
        for i in reversed(range(len(phases) - 1)):
            index = jnp.where(k <= math.floor(phases[i][0]), i, index)
        values, begin = [], 0.0
        for end, *ends in phases:
            weights = weights_of(as_float(k) - begin, end - begin)
            values.append(blend(ends[column], ends[column + 1], weights))
            begin = end
        return jnp.stack(values)[index]

    momentum = (lambda count: phase_values(epoch_of(count), 2)) if cycle_momentum else None
    return absolute_schedule("OneCycleLR", None, lambda e: phase_values(e, 0), momentum)


def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable | None = None,
    scale_mode: str = "cycle",
    cycle_momentum: bool = True,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.CyclicLR: triangular cycles between base_lr and max_lr.

    With U = step_size_up, D = step_size_down (U when None), cycle = 1 + e // (U + D)
    and p = e % (U + D): x = p / U while p <= U, else (U + D - p) / D, and

        lr(e) = base_lr + (max_lr - base_lr) * x * s
        momentum(e) = max_momentum - (max_momentum - base_momentum) * x * s

    with s = 1 ("triangular"), ``1 / 2**(cycle - 1)`` ("triangular2"), ``gamma**e``
    ("exp_range"), or ``scale_fn(cycle)`` / ``scale_fn(e)`` (scale_mode "cycle" /
    "iterations"; it then replaces ``mode`` and gets the integer as torch passes it).
    The built-in modes fix their scale mode, as torch does.

    Args:
        base_lr: Learning rate at the bottom of each cycle, >= 0.
        max_lr: Learning rate at the top of the first cycle, >= 0.
        step_size_up: Steps rising, an int >= 1.
        step_size_down: Steps falling, an int >= 0; None means step_size_up.
        mode: "triangular", "triangular2" or "exp_range".
        gamma: Decay per step of "exp_range", >= 0.
        scale_fn: A traceable function of the integer cycle or step, or None.
        scale_mode: "cycle" or "iterations", for ``scale_fn``.
        cycle_momentum: Provide ``schedule.momentum`` (else it is None).
        base_momentum: Momentum at the top of a cycle.
        max_momentum: Momentum at the bottom of a cycle.

    Returns:
        A ``TorchLRSchedule`` of kind "absolute", with ``momentum``.

    References:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
        arXiv:1506.01186.
        Checked against torch.optim.lr_scheduler.CyclicLR in tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.cyclic_lr"
    _checks.non_negative(fn, base_lr=base_lr, max_lr=max_lr, gamma=gamma)
    _checks.integer_at_least(fn, "step_size_up", step_size_up, 1)
    down = step_size_up if step_size_down is None else step_size_down
    _checks.integer_at_least(fn, "step_size_down", down, 0)
    if scale_fn is None:
        _checks.one_of(fn, "mode", mode, ("triangular", "triangular2", "exp_range"))
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
    else:
        _checks.one_of(fn, "scale_mode", scale_mode, ("cycle", "iterations"))
    total = step_size_up + down

    def scale(cycle, e):
        x = cycle if scale_mode == "cycle" else e
        if scale_fn is not None:
            return as_float(scale_fn(x))
        if mode == "triangular2":
            return jnp.ldexp(as_float(1.0), (1 - cycle).astype(jnp.int32))
        return power_of(gamma, e) if mode == "exp_range" else as_float(1.0)

    def height(e):
        cycle, p = 1 + e // total, e % total
        up = as_float(p) / step_size_up
        down_part = as_float(total - p) / max(down, 1)
        return jnp.where(p <= step_size_up, up, down_part) * scale(cycle, e)

    def value(e):
        return base_lr + as_float(max_lr - base_lr) * height(e)

    def momentum(count):
        return max_momentum - as_float(max_momentum - base_momentum) * height(epoch_of(count))

    return absolute_schedule("CyclicLR", None, value, momentum if cycle_momentum else None)
