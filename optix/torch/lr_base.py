"""What the torch learning-rate schedulers share: the schedule object and step arithmetic.

Counting: count 0 is the learning rate of the first optimizer step, which is torch's
``get_last_lr()`` right after the scheduler is built; count k is ``get_last_lr()``
after k calls of ``scheduler.step()`` (torch's ``last_epoch == k``), the learning rate
of the (k + 1)-th optimizer step. torch's ``last_epoch`` argument has no counterpart:
resuming is evaluating the schedule at the restored count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import as_float, log_of

Lr = Callable[[jax.Array], jax.Array]
Step = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class TorchLRSchedule:
    """A torch learning-rate scheduler as a pure schedule ``count -> lr``.

    Calling it gives the learning rate at a count (any integer, traced or not), in the
    default float dtype. The other fields say how torch's scheduler acts on the
    optimizer's current learning rate x, which is what ``chained_scheduler`` and
    ``sequential_lr`` compose:

        start(x)    the lr after the scheduler is built (torch's initial step)
        step(e, x)  the lr after the e-th ``scheduler.step()``, e >= 1 (torch's get_lr)
        factor(e)   lr(e) / lr, for kind "factor"

    ``kind`` is "factor" when every step multiplies x, "absolute" when steps ignore x,
    "affine" otherwise, and "composite" for sequential and chained schedulers (which
    cannot be members of another composite). ``continues`` marks the one scheduler
    (MultiplicativeLR) that resumes from the current lr when ``sequential_lr`` switches
    to it instead of restarting from its own first value. ``momentum`` is the schedule
    of SGD's momentum or Adam's b1 for the schedulers that cycle it, else None.

    References:
        Checked against torch.optim.lr_scheduler (every scheduler, at every step) in
        tests/torch/test_lr_scheduler.py.
    """

    name: str
    lr: Any
    kind: str
    value: Lr
    start: Callable[[jax.Array], jax.Array] | None = None
    step: Step | None = None
    factor: Lr | None = None
    continues: bool = False
    momentum: Lr | None = None

    def __call__(self, count: jax.typing.ArrayLike) -> jax.Array:
        return self.value(epoch_of(count))


def epoch_of(count: jax.typing.ArrayLike) -> jax.Array:
    """The step count in the default integer dtype (float counts are floored).

    The default integer (int64 under x64) makes ``1 / (1 + e)`` in a user's
    ``lr_lambda`` a float64 under x64, where the optimizer's int32 count would give float32.
    """
    count = jnp.asarray(count)
    if not jnp.issubdtype(count.dtype, jnp.integer):
        count = jnp.floor(count)
    return count.astype(jnp.result_type(int))


def power_of(base: Any, exponent: jax.typing.ArrayLike) -> jax.Array:
    """``base ** exponent`` for ``base >= 0`` and ``exponent >= 0``, in the default float dtype.

    Goes through the double-precision logarithm of a concrete base (``log_of``), so
    ``0.99 ** 1000`` in float32 is not off by 1000 times the rounding of 0.99; a zero
    base gives 1 at exponent 0 and 0 after, as Python does.
    """
    exponent = as_float(exponent)
    if isinstance(base, int | float) and base == 0:
        return jnp.where(exponent == 0, as_float(1.0), as_float(0.0))
    return jnp.exp(exponent * log_of(base))


def factor_schedule(
    name: str,
    lr: Any,
    factor: Lr,
    ratio: Lr,
    *,
    continues: bool = False,
) -> TorchLRSchedule:
    """A scheduler whose steps multiply the current lr: lr(e) = lr * factor(e).

    ``ratio(e)`` is torch's multiplier at step e >= 1 (``get_lr`` reads
    ``group["lr"] * ratio``); ``factor(0)`` is the one applied when it is built.
    """

    def value(e):
        return as_float(lr) * factor(e)

    return TorchLRSchedule(
        name=name,
        lr=lr,
        kind="factor",
        value=value,
        start=lambda x: x * factor(jnp.zeros([], jnp.int32)),
        step=lambda e, x: x * ratio(e),
        factor=factor,
        continues=continues,
    )


def absolute_schedule(name: str, lr: Any, value: Lr, momentum: Lr | None = None):
    """A scheduler whose every step sets the lr from the count alone."""
    return TorchLRSchedule(
        name=name,
        lr=lr,
        kind="absolute",
        value=value,
        start=lambda x: value(jnp.zeros([], jnp.int32)),
        step=lambda e, x: value(e),
        momentum=momentum,
    )


def recurse(start: jax.Array, step: Step, e: jax.Array) -> jax.Array:
    """Run torch's recursion: x = start, then x = step(j, x) for j = 1..e.

    O(e) work: used only where torch's numbers depend on the recursion itself.
    """
    return jax.lax.fori_loop(1, jnp.maximum(e, 0) + 1, step, as_float(start))


def check_lr(fn: str, lr: Any) -> None:
    """The base learning rate must be >= 0."""
    _checks.non_negative(fn, lr=lr)


def check_lambda(fn: str, lr_lambda: Any) -> None:
    """torch takes a list of functions for several parameter groups; optix has one group."""
    if not callable(lr_lambda):
        raise TypeError(
            f"{fn}: lr_lambda must be a function of the epoch (one function: an optix "
            f"schedule serves one learning rate), got lr_lambda={lr_lambda!r}"
        )
