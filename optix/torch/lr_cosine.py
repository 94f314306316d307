"""torch's cosine schedulers: CosineAnnealingLR (closed and recursive forms) and SGDR restarts."""

from __future__ import annotations

import math

import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import as_float, blend, cosine_weights
from optix.torch.lr_base import TorchLRSchedule, absolute_schedule, check_lr, recurse

_INT32_MAX = 2**31 - 1


def cosine_annealing_lr(
    lr: float, T_max: int, eta_min: float = 0.0, *, form: str = "closed"
) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.CosineAnnealingLR: half a cosine from lr to eta_min and back.

    form="closed": lr(e) = eta_min + (lr - eta_min) * (1 + cos(pi * e / T_max)) / 2 for
    every e. Past T_max it rises again (period 2 T_max), as torch does; Optax's
    ``cosine_decay_schedule`` holds instead. The weight is computed as
    sin(pi * |T_max - e mod 2 T_max| / (2 T_max))**2, exact near the minimum in float32.

    form="recursive": torch's own update, run from count 0 (torch's ``get_lr``):

        x = x + (lr - eta_min) * (1 - cos(pi / T_max)) / 2      if (e - 1 - T_max) % (2 T_max) == 0
        x = eta_min + (1 + cos(pi e / T_max)) / (1 + cos(pi (e - 1) / T_max)) * (x - eta_min)
                                                                 otherwise

    Where the two differ: the same function in exact arithmetic, but the recursion
    rounds at every step; with eta_min > 0 it cancels near the minimum and carries the
    error up the next rise, so torch's numbers leave the closed form by (relative)
    1.6e-13 at T_max=1e3, 7.6e-12 at 1e4 and 1.1e-9 at 1e5 (eta_min = lr / 100). The
    recursive form reproduces that drift in float64, within 1.3e-13 of torch (it is for
    parity checks: O(count) work per call, and in float32 its cancellation loses more
    digits than the closed form). Inside
    ``chained_scheduler``, torch's step acts on the lr other schedulers left, which is
    not a product of closed forms; that composition always follows the recursion.

    Args:
        lr: Base learning rate, >= 0.
        T_max: Half period in steps, an int >= 1.
        eta_min: Learning rate at the bottom of the cosine, >= 0.
        form: "closed" or "recursive".

    Returns:
        A ``TorchLRSchedule`` of kind "affine".

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
        ICLR 2017, arXiv:1608.03983.
        Checked against torch.optim.lr_scheduler.CosineAnnealingLR in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.cosine_annealing_lr"
    check_lr(fn, lr)
    _checks.integer_at_least(fn, "T_max", T_max, 1)
    _checks.non_negative(fn, eta_min=eta_min)
    _checks.one_of(fn, "form", form, ("closed", "recursive"))
    restart_step = (lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2

    def step(e, x):
        ef, pi = as_float(e), as_float(math.pi)
        ratio = (1 + jnp.cos(pi * ef / T_max)) / (1 + jnp.cos(pi * (ef - 1) / T_max))
        at_restart = (e - 1 - T_max) % (2 * T_max) == 0
        return jnp.where(at_restart, x + restart_step, ratio * (x - eta_min) + eta_min)

    def closed(e):
        u = e % (2 * T_max)
        return blend(lr, eta_min, cosine_weights(as_float(jnp.minimum(u, 2 * T_max - u)), T_max))

    def recursive(e):
        return recurse(as_float(lr), step, e)

    return TorchLRSchedule(
        name="CosineAnnealingLR",
        lr=lr,
        kind="affine",
        value=closed if form == "closed" else recursive,
        start=lambda x: x,
        step=step,
    )


def cosine_annealing_warm_restarts(
    lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> TorchLRSchedule:
    """torch.optim.lr_scheduler.CosineAnnealingWarmRestarts: SGDR's cosine cycles.

    lr(e) = eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where cycle n
    starts at ``S_n = T_0 * (T_mult**n - 1) / (T_mult - 1)`` (n * T_0 when T_mult == 1),
    lasts ``T_i = T_0 * T_mult**n`` steps, and T_cur = e - S_n: torch's ``step()`` without
    an epoch argument, which counts T_cur in integers. The weight is computed as
    ``sin(pi * (T_i - T_cur) / (2 T_i))**2``, exact near the end of a cycle in float32.

    Args:
        lr: Base learning rate (the value at each restart), >= 0.
        T_0: Length of the first cycle, an int >= 1.
        T_mult: Growth factor of the cycle length, an int >= 1.
        eta_min: Learning rate approached at the end of each cycle, >= 0.

    Returns:
        A ``TorchLRSchedule`` of kind "absolute".

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
        ICLR 2017, arXiv:1608.03983.
        Checked against torch.optim.lr_scheduler.CosineAnnealingWarmRestarts in
        tests/torch/test_lr_scheduler.py.
    """
    fn = "optix.torch.cosine_annealing_warm_restarts"
    check_lr(fn, lr)
    _checks.integer_at_least(fn, "T_0", T_0, 1)
    _checks.integer_at_least(fn, "T_mult", T_mult, 1)
    _checks.non_negative(fn, eta_min=eta_min)
    starts, lengths = [0], [T_0]
    while T_mult > 1 and starts[-1] + lengths[-1] <= _INT32_MAX:
        starts.append(starts[-1] + lengths[-1])
        lengths.append(lengths[-1] * T_mult)

    def value(e):
        if T_mult == 1:
            t_cur, t_i = e % T_0, as_float(T_0)
        else:
            n = jnp.sum(jnp.asarray(starts[1:], e.dtype) <= e)
            t_cur = e - jnp.asarray(starts, e.dtype)[n]
            t_i = as_float(jnp.asarray(lengths, jnp.result_type(float))[n])
        return blend(lr, eta_min, cosine_weights(as_float(t_cur), t_i))

    return absolute_schedule("CosineAnnealingWarmRestarts", lr, value)
