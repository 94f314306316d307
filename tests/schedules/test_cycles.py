"""One-cycle schedules: Optax, closed forms, the rise-then-fall law, errors."""

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from optix.schedules.cycles import cosine_onecycle_schedule, linear_onecycle_schedule
from tests.schedules.common import assert_matches_optax, in_order, run64, values64

OPTAX_CASES = [
    (cosine_onecycle_schedule, (100, 1.0), {}),
    (cosine_onecycle_schedule, (37, 2.0), {"pct_start": 0.25, "div_factor": 10.0}),
    (cosine_onecycle_schedule, (50, 3e-3), {"pct_start": 0.0, "final_div_factor": 100.0}),
    (cosine_onecycle_schedule, (3, 1.0), {}),
    (linear_onecycle_schedule, (100, 1.0), {}),
    (linear_onecycle_schedule, (50, 0.5, 0.2, 0.6, 5.0, 50.0), {}),
    (linear_onecycle_schedule, (7, 1.0), {}),
]


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"), OPTAX_CASES, ids=lambda x: getattr(x, "__name__", "")
)
def test_matches_optax_at_every_step(fn, args, kwargs):
    assert_matches_optax(fn, fn.__name__, args, kwargs, 130)


def test_cosine_onecycle_closed_form():
    values = run64(cosine_onecycle_schedule(100, 1.0), 111)
    start, final = 1.0 / 25, 1.0 / 25 / 1e4
    assert values[0] == start and values[30] == 1.0
    assert values[15] == pytest.approx(start + (1 - start) / 2, rel=1e-14)
    k = 40 / 70
    expected = final + (1 - final) * (1 + math.cos(math.pi * k)) / 2
    assert values[70] == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(values[100:], final, rtol=1e-14)


def test_linear_onecycle_ends_at_start_over_final_div_factor():
    # Optax's docstring says peak_value / final_div_factor (1e-4); its code and ours
    # end at peak_value / div_factor / final_div_factor.
    values = run64(linear_onecycle_schedule(100, 1.0), 101)
    assert values[0] == 0.04 and values[30] == 1.0 and values[85] == pytest.approx(0.04)
    assert values[100] == pytest.approx(0.04 / 1e4, rel=1e-14)
    assert values[50] == pytest.approx(1.0 - (1.0 - 0.04) * 20 / 55, rel=1e-14)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 100),
    st.floats(1e-3, 10.0),
    st.floats(0.0, 0.9),
    st.floats(1.5, 100.0),
    st.floats(1.0, 1e4),
)
def test_cosine_onecycle_rises_to_the_peak_then_falls(steps, peak, pct, div, final_div):
    values = values64(cosine_onecycle_schedule(steps, peak, pct, div, final_div))
    top = int(pct * steps)
    assert values[top] == pytest.approx(peak, rel=1e-14)
    assert values[0] == pytest.approx(peak / div if top else peak, rel=1e-14)
    np.testing.assert_allclose(values[steps:], peak / div / final_div, rtol=1e-13)
    assert in_order(values[: top + 1], increasing=True)
    assert in_order(values[top:], increasing=False)
    assert np.max(values) <= peak * (1 + 1e-14)


@settings(max_examples=100, deadline=None)
@given(st.integers(10, 100), st.floats(1e-3, 10.0), st.floats(0.05, 0.45), st.floats(0.5, 0.95))
def test_linear_onecycle_three_phases(steps, peak, pct_start, pct_final):
    top, back = int(pct_start * steps), int(pct_final * steps)
    assume(top < back)
    values = values64(linear_onecycle_schedule(steps, peak, pct_start, pct_final))
    assert values[top] == pytest.approx(peak, rel=1e-14)
    assert values[back] == pytest.approx(peak / 25, rel=1e-13)
    assert in_order(values[: top + 1], increasing=True)
    assert in_order(values[top:], increasing=False)
    np.testing.assert_allclose(values[steps:], peak / 25 / 1e4, rtol=1e-13)


ERRORS = [
    (
        lambda: cosine_onecycle_schedule(0, 1.0),
        "cosine_onecycle_schedule: transition_steps must be > 0, got transition_steps=0",
    ),
    (
        lambda: cosine_onecycle_schedule(100, 1.0, pct_start=1.0),
        "cosine_onecycle_schedule: pct_start must be in [0, 1), got pct_start=1.0",
    ),
    (
        lambda: cosine_onecycle_schedule(100, 1.0, div_factor=0.0),
        "cosine_onecycle_schedule: div_factor must be > 0, got div_factor=0.0",
    ),
    (
        lambda: linear_onecycle_schedule(100, 1.0, pct_start=-0.1),
        "linear_onecycle_schedule: pct_start must be in [0, 1), got pct_start=-0.1",
    ),
    (
        lambda: linear_onecycle_schedule(100, 1.0, pct_final=1.2),
        "linear_onecycle_schedule: pct_final must be in [0, 1), got pct_final=1.2",
    ),
    (
        lambda: linear_onecycle_schedule(100, 1.0, pct_start=0.5, pct_final=0.4),
        "linear_onecycle_schedule: pct_final must be > pct_start = 0.5, got pct_final=0.4",
    ),
    (
        lambda: linear_onecycle_schedule(10, 1.0, pct_start=0.3, pct_final=0.35),
        "linear_onecycle_schedule: transition_steps must be large enough that "
        "int(pct_start * transition_steps) < int(pct_final * transition_steps), "
        "got transition_steps=10",
    ),
    (
        lambda: linear_onecycle_schedule(100, 1.0, final_div_factor=-1.0),
        "linear_onecycle_schedule: final_div_factor must be > 0, got final_div_factor=-1.0",
    ),
]


@pytest.mark.parametrize(("make", "text"), ERRORS, ids=[t.split(",")[0] for _, t in ERRORS])
def test_bad_arguments_raise(make, text):
    with pytest.raises(ValueError, match=re.escape(text)):
        make()
