"""Cosine decay, the warmup schedules built on it, and SGDR's warm restarts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax

from optix import _checks
from optix.schedules._common import (
    Schedule,
    as_float,
    blend,
    clipped_position,
    cosine_weights,
    power_weights,
)
from optix.schedules.basic import constant_schedule, exponential_decay, linear_schedule
from optix.schedules.join import join_schedules


def _cosine_decay_weights(count, decay_steps, exponent):
    """``(c**exponent, 1 - c**exponent)`` with c = (1 + cos(pi * k / decay_steps)) / 2."""
    k = clipped_position(count, 0, decay_steps)
    return power_weights(cosine_weights(k, decay_steps), exponent)


def cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    decay_steps: int,
    alpha: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> Schedule:
    """Decay ``init_value`` to ``alpha * init_value`` along half a cosine, then hold.

    At step count, with k = min(count, decay_steps):

        c = (1 + cos(pi * k / decay_steps)) / 2
        value = init_value * ((1 - alpha) * c**exponent + alpha)

    Args:
        init_value: Value at step 0.
        decay_steps: Length of the decay, > 0.
        alpha: Final value as a fraction of ``init_value``.
        exponent: Power applied to c, >= 0 (0 holds ``init_value``; a negative power
            divides by zero at the end).

    Returns:
        A function of the step count (counts below 0 read as 0).

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
        ICLR 2017, arXiv:1608.03983.
        Checked against optax.cosine_decay_schedule in tests/schedules/test_cosine.py.
    """
    fn = "cosine_decay_schedule"
    _checks.number(fn, init_value=init_value, alpha=alpha)
    _checks.positive(fn, decay_steps=decay_steps)
    _checks.non_negative(fn, exponent=exponent)

    def schedule(count):
        init = as_float(init_value)
        w, rest = _cosine_decay_weights(count, decay_steps, exponent)
        return init * w + as_float(alpha) * init * rest

    return schedule


def warmup_constant_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
) -> Schedule:
    """Warm up linearly from ``init_value`` to ``peak_value`` in ``warmup_steps``, then hold.

    Args:
        init_value: Value at step 0.
        peak_value: Value from step ``warmup_steps`` on.
        warmup_steps: Length of the warmup, >= 0. With 0 the value is ``peak_value``
            from the start; Optax's returns ``init_value`` forever then.

    Returns:
        A function of the step count.

    References:
        Checked against optax.warmup_constant_schedule in tests/schedules/test_cosine.py.
    """
    fn = "warmup_constant_schedule"
    _checks.number(fn, init_value=init_value, peak_value=peak_value)
    _checks.non_negative(fn, warmup_steps=warmup_steps)
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    return join_schedules([warmup, constant_schedule(peak_value)], [warmup_steps])


def warmup_cosine_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 1.0,
) -> Schedule:
    """Linear warmup to ``peak_value``, then a cosine decay to ``end_value``.

    At step count, with W = warmup_steps and D = decay_steps - warmup_steps:

        count < W:   init_value + (peak_value - init_value) * count / W
        otherwise:   k = min(count - W, D), c = (1 + cos(pi * k / D)) / 2
                     value = peak_value * c**exponent + end_value * (1 - c**exponent)

    ``decay_steps`` is the length of the whole schedule, warmup included.

    Args:
        init_value: Value at step 0.
        peak_value: Value at the end of the warmup.
        warmup_steps: Length of the warmup, >= 0.
        decay_steps: Total length, warmup included, > warmup_steps.
        end_value: Value from step ``decay_steps`` on. (Optax decays to 0 whatever
            ``end_value`` is when ``peak_value`` is 0.)
        exponent: Power applied to c, >= 0.

    Returns:
        A function of the step count.

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
        ICLR 2017, arXiv:1608.03983.
        Checked against optax.warmup_cosine_decay_schedule in tests/schedules/test_cosine.py.
    """
    fn = "warmup_cosine_decay_schedule"
    _checks.number(fn, init_value=init_value, peak_value=peak_value, end_value=end_value)
    _checks.number(fn, decay_steps=decay_steps)
    _checks.non_negative(fn, warmup_steps=warmup_steps, exponent=exponent)
    if not decay_steps > warmup_steps:
        raise ValueError(
            f"{fn}: decay_steps must be > warmup_steps = {warmup_steps!r} (it counts the "
            f"warmup too), got decay_steps={decay_steps!r}"
        )
    length = decay_steps - warmup_steps

    def decay(count):
        return blend(peak_value, end_value, _cosine_decay_weights(count, length, exponent))

    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    return join_schedules([warmup, decay], [warmup_steps])


def warmup_exponential_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: jax.typing.ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: jax.typing.ArrayLike | None = None,
) -> Schedule:
    """Linear warmup to ``peak_value``, then ``exponential_decay`` from there.

    The decay sees the steps since the end of the warmup: it holds ``peak_value`` for
    ``transition_begin`` more steps, then multiplies by ``decay_rate`` every
    ``transition_steps`` steps (see ``exponential_decay``).

    Args:
        init_value: Value at step 0.
        peak_value: Value at the end of the warmup.
        warmup_steps: Length of the warmup, >= 0.
        transition_steps: Steps per factor of ``decay_rate``; <= 0 holds ``peak_value``
            after the warmup, as in Optax.
        decay_rate: Factor per ``transition_steps``, >= 0; 0 holds ``peak_value``, as in
            Optax.
        transition_begin: Steps at ``peak_value`` after the warmup (negative counts as 0).
        staircase: Decay in whole factors of ``decay_rate``.
        end_value: Bound the decay stops at; ``None`` for no bound.

    Returns:
        A function of the step count.

    References:
        Checked against optax.warmup_exponential_decay_schedule in
        tests/schedules/test_cosine.py.
    """
    fn = "warmup_exponential_decay_schedule"
    _checks.number(fn, init_value=init_value, peak_value=peak_value)
    _checks.number(fn, allow_none=True, end_value=end_value)
    _checks.number(fn, transition_steps=transition_steps, transition_begin=transition_begin)
    _checks.non_negative(fn, warmup_steps=warmup_steps, decay_rate=decay_rate)
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return join_schedules([warmup, decay], [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[dict[str, Any]]) -> Schedule:
    """Warm restarts: ``warmup_cosine_decay_schedule`` cycles, one after another.

    Cycle i is ``warmup_cosine_decay_schedule(**cosine_kwargs[i])`` and lasts its
    ``decay_steps``; it restarts from its own step 0. The last cycle holds its
    ``end_value`` after it ends.

    Args:
        cosine_kwargs: Non-empty iterable of keyword dicts for
            ``warmup_cosine_decay_schedule``, each with ``decay_steps``.

    Returns:
        A function of the step count.

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
        ICLR 2017, arXiv:1608.03983.
        Checked against optax.sgdr_schedule in tests/schedules/test_cosine.py.
    """
    cycles = list(cosine_kwargs)
    if not cycles:
        raise ValueError(
            f"sgdr_schedule: cosine_kwargs must be a non-empty iterable of dicts, "
            f"got cosine_kwargs={cosine_kwargs!r}"
        )
    schedules, ends, end = [], [], 0
    for i, kwargs in enumerate(cycles):
        try:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
        except (TypeError, ValueError) as error:
            raise type(error)(f"sgdr_schedule: cosine_kwargs[{i}] is invalid: {error}") from None
        end += kwargs["decay_steps"]
        ends.append(end)
    return join_schedules(schedules, ends[:-1])
