"""One-cycle schedules (Smith & Topin): up to a peak and back down, in phases."""

from __future__ import annotations

import jax

from optix import _checks
from optix.schedules._common import Schedule
from optix.schedules.basic import piecewise_interpolate_schedule


def _check_cycle(
    fn: str, transition_steps, peak_value, div_factor, final_div_factor, **pcts
) -> None:
    _checks.number(fn, peak_value=peak_value)
    _checks.positive(
        fn,
        transition_steps=transition_steps,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    _checks.in_unit_interval(fn, **pcts)


def _too_short(fn: str, condition: str, transition_steps) -> ValueError:
    return ValueError(
        f"{fn}: transition_steps must be large enough that {condition}, "
        f"got transition_steps={transition_steps!r}"
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: jax.typing.ArrayLike,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """One cycle along half cosines: up to ``peak_value``, then down to a small final value.

    With P = int(pct_start * transition_steps), T = int(transition_steps) and
    v0 = peak_value / div_factor: the value moves from v0 at step 0 to
    ``peak_value`` at step P, then to v0 / final_div_factor at step T and holds,
    each phase along (1 + cos(pi * x)) / 2.

    torch.optim.lr_scheduler.OneCycleLR ends its phases one step earlier
    (``pct_start * T - 1`` and ``T - 1``); ``optix.torch`` has that form.

    Args:
        transition_steps: Length of the cycle, > 0.
        peak_value: Value at step P.
        pct_start: Fraction of the cycle spent rising, in [0, 1).
        div_factor: ``peak_value / div_factor`` is the value at step 0, > 0.
        final_div_factor: The final value is the start value divided by this, > 0.

    Returns:
        A function of the step count.

    References:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks
        Using Large Learning Rates", 2017, arXiv:1708.07120.
        Checked against optax.cosine_onecycle_schedule in tests/schedules/test_cycles.py.
    """
    fn = "cosine_onecycle_schedule"
    _check_cycle(
        fn, transition_steps, peak_value, div_factor, final_div_factor, pct_start=pct_start
    )
    rise_end, end = int(pct_start * transition_steps), int(transition_steps)
    if not rise_end < end:
        raise _too_short(
            fn, "int(pct_start * transition_steps) < int(transition_steps)", transition_steps
        )
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {rise_end: div_factor, end: 1.0 / (div_factor * final_div_factor)},
    )


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: jax.typing.ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """One cycle in three linear phases: up to ``peak_value``, back down, then lower.

    With P = int(pct_start * T), F = int(pct_final * T), T = transition_steps and
    v0 = peak_value / div_factor: the value moves linearly from v0 at step 0 to
    ``peak_value`` at step P, back to v0 at step F, then to v0 / final_div_factor
    at step T and holds. (Optax's docstring says the last phase ends at
    ``peak_value / final_div_factor``; its code, and this one, end at v0 / final_div_factor.)

    Args:
        transition_steps: Length of the cycle, > 0.
        peak_value: Value at step P.
        pct_start: Fraction of the cycle spent rising, in [0, 1).
        pct_final: Fraction of the cycle at whose end the value is back at v0, in
            (pct_start, 1).
        div_factor: ``peak_value / div_factor`` is the value at step 0, > 0.
        final_div_factor: The final value is v0 divided by this, > 0.

    Returns:
        A function of the step count.

    References:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks
        Using Large Learning Rates", 2017, arXiv:1708.07120.
        Checked against optax.linear_onecycle_schedule in tests/schedules/test_cycles.py.
    """
    fn = "linear_onecycle_schedule"
    _check_cycle(
        fn,
        transition_steps,
        peak_value,
        div_factor,
        final_div_factor,
        pct_start=pct_start,
        pct_final=pct_final,
    )
    if not pct_final > pct_start:
        raise ValueError(
            f"{fn}: pct_final must be > pct_start = {pct_start!r}, got pct_final={pct_final!r}"
        )
    rise_end, fall_end = int(pct_start * transition_steps), int(pct_final * transition_steps)
    if not rise_end < fall_end < transition_steps:
        raise _too_short(
            fn,
            "int(pct_start * transition_steps) < int(pct_final * transition_steps)",
            transition_steps,
        )
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {
            rise_end: div_factor,
            fall_end: 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )
