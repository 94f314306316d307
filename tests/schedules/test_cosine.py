"""Cosine decay, warmup schedules and SGDR: Optax, closed forms, laws, errors."""

import math
import re

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optix.schedules.cosine import (
    cosine_decay_schedule,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from tests.schedules.common import assert_matches_optax, in_order, run, run64, values64

CYCLES = [
    {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 40, "end_value": 0.01},
    {"init_value": 0.1, "peak_value": 0.5, "warmup_steps": 0, "decay_steps": 30},
    {"init_value": 0.0, "peak_value": 0.25, "warmup_steps": 10, "decay_steps": 50, "exponent": 2.0},
]

OPTAX_CASES = [
    (cosine_decay_schedule, (1.0, 100), {}),
    (cosine_decay_schedule, (0.5, 77), {"alpha": 0.1, "exponent": 2.0}),
    (cosine_decay_schedule, (3e-4, 120), {"alpha": 0.0, "exponent": 0.5}),
    (warmup_constant_schedule, (0.0, 1.0, 10), {}),
    (warmup_constant_schedule, (0.5, 0.1, 25), {}),
    (warmup_cosine_decay_schedule, (0.0, 1.0, 10, 100), {"end_value": 0.1, "exponent": 1.5}),
    (warmup_cosine_decay_schedule, (0.1, 1.0, 0, 100), {}),
    (warmup_cosine_decay_schedule, (1e-6, 3e-4, 30, 130), {"end_value": 3e-5}),
    (warmup_exponential_decay_schedule, (0.0, 1.0, 10, 20, 0.5), {}),
    (
        warmup_exponential_decay_schedule,
        (0.0, 1.0, 10, 20, 0.5),
        {"transition_begin": 5, "staircase": True, "end_value": 0.05},
    ),
    (sgdr_schedule, (CYCLES,), {}),
]


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"), OPTAX_CASES, ids=lambda x: getattr(x, "__name__", "")
)
def test_matches_optax_at_every_step(fn, args, kwargs):
    assert_matches_optax(fn, fn.__name__, args, kwargs, 160)


def test_cosine_decay_closed_form():
    values = run64(cosine_decay_schedule(0.5, 77, alpha=0.1, exponent=2.0), 90)
    for k in range(90):
        c = 0.5 * (1 + math.cos(math.pi * min(k, 77) / 77))
        assert values[k] == pytest.approx(0.5 * (0.9 * c**2 + 0.1), rel=1e-14)


def test_cosine_tail_keeps_float32_precision():
    # One step before the end the value is init * sin(pi / (2 T))**2 ~ 2.5e-6 * init;
    # Optax's float32 form 0.5 * (1 + cos(pi k / T)) loses most of its digits there.
    steps = 1000
    values = run(cosine_decay_schedule(1.0, steps), steps + 1)
    expected = math.sin(math.pi / (2 * steps)) ** 2
    assert values[steps - 1] == pytest.approx(expected, rel=1e-6)
    assert values[steps] == 0.0


def test_warmup_cosine_closed_form():
    # decay_steps counts the warmup: at 550 the cosine is halfway (450 of 900 steps).
    values = run64(warmup_cosine_decay_schedule(0.0, 1.0, 100, 1000), 1001)
    assert values[550] == pytest.approx(0.5, rel=1e-14)
    assert values[50] == pytest.approx(0.5, rel=1e-14)
    assert values[100] == 1.0 and values[1000] == 0.0


def test_zero_warmup_starts_at_the_peak():
    # Optax's warmup_constant_schedule returns init_value forever when warmup_steps=0.
    np.testing.assert_array_equal(run64(warmup_constant_schedule(0.0, 1.0, 0), 3), [1, 1, 1])
    values = run64(warmup_cosine_decay_schedule(0.3, 1.0, 0, 10), 3)
    assert values[0] == 1.0


def test_zero_peak_still_reaches_end_value():
    # Optax's alpha = end_value / peak_value is set to 0 for peak 0, which drops end_value.
    values = run64(warmup_cosine_decay_schedule(0.0, 0.0, 2, 12, end_value=0.1), 15)
    np.testing.assert_array_equal(values[:3], 0.0)
    np.testing.assert_allclose(values[7], 0.05, rtol=1e-14)
    np.testing.assert_allclose(values[12:], 0.1, rtol=0)


def test_sgdr_restarts_each_cycle():
    values = run64(sgdr_schedule(CYCLES), 130)
    assert values[0] == 0.0 and values[5] == 1.0
    assert values[40] == 0.5 and values[70] == 0.0 and values[80] == 0.25
    assert values[120] == 0.0 and values[129] == 0.0


def test_traced_peak_value():
    value = jax.jit(lambda peak: warmup_cosine_decay_schedule(0.0, peak, 10, 110)(60))(2.0)
    assert float(value) == pytest.approx(1.0, rel=1e-6)


# No subnormals: XLA on CPU flushes them to zero.
levels = st.one_of(st.just(0.0), st.floats(1e-3, 10.0))
fractions = st.one_of(st.just(0.0), st.floats(1e-3, 1.0))


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-3, 10.0), st.integers(1, 100), fractions, st.floats(0.25, 4.0))
def test_cosine_decay_laws(init, steps, alpha, exponent):
    values = values64(cosine_decay_schedule(init, steps, alpha, exponent))
    assert values[0] == pytest.approx(init, rel=1e-15)
    np.testing.assert_allclose(values[steps:], alpha * init, rtol=1e-14)
    assert np.all(values >= alpha * init * (1 - 1e-14)) and np.all(values <= init * (1 + 1e-14))
    assert in_order(values, increasing=False)


@settings(max_examples=100, deadline=None)
@given(levels, levels, levels, st.integers(0, 40), st.integers(1, 60), st.floats(0.25, 4.0))
def test_warmup_cosine_laws(init, peak, end, warmup, decay, exponent):
    values = values64(
        warmup_cosine_decay_schedule(init, peak, warmup, warmup + decay, end, exponent)
    )
    lo, hi = min(init, peak, end), max(init, peak, end)
    assert np.all(values >= lo - 1e-12 * hi) and np.all(values <= hi + 1e-12 * hi)
    if warmup:
        assert values[0] == init
    assert values[warmup] == peak
    np.testing.assert_allclose(values[warmup + decay :], end, rtol=1e-14)
    assert in_order(values[: warmup + 1], increasing=peak >= init)
    assert in_order(values[warmup:], increasing=end >= peak)


@settings(max_examples=100, deadline=None)
@given(levels, st.floats(1e-3, 10.0), st.integers(0, 40), st.integers(1, 10), st.floats(0.1, 0.99))
def test_warmup_exponential_laws(init, peak, warmup, steps, rate):
    values = values64(warmup_exponential_decay_schedule(init, peak, warmup, steps, rate))
    assert values[warmup] == peak
    assert in_order(values[: warmup + 1], increasing=peak >= init)
    assert in_order(values[warmup:], increasing=False)
    assert np.all(values[warmup:] > 0)


ERRORS = [
    (
        lambda: cosine_decay_schedule(1.0, 0),
        "cosine_decay_schedule: decay_steps must be > 0, got decay_steps=0",
    ),
    (
        lambda: cosine_decay_schedule(1.0, 10, exponent=-1.0),
        "cosine_decay_schedule: exponent must be finite and >= 0, got exponent=-1.0",
    ),
    (
        lambda: warmup_constant_schedule(0.0, 1.0, -1),
        "warmup_constant_schedule: warmup_steps must be finite and >= 0, got warmup_steps=-1",
    ),
    (
        lambda: warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
        "warmup_cosine_decay_schedule: decay_steps must be > warmup_steps = 10 (it counts the "
        "warmup too), got decay_steps=10",
    ),
    (
        lambda: warmup_cosine_decay_schedule(0.0, 1.0, -5, 10),
        "warmup_cosine_decay_schedule: warmup_steps must be finite and >= 0, got warmup_steps=-5",
    ),
    (
        lambda: warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, -0.5),
        "warmup_exponential_decay_schedule: decay_rate must be finite and >= 0, "
        "got decay_rate=-0.5",
    ),
    (
        lambda: sgdr_schedule([]),
        "sgdr_schedule: cosine_kwargs must be a non-empty iterable of dicts, got cosine_kwargs=[]",
    ),
    (
        lambda: sgdr_schedule([CYCLES[0], {**CYCLES[1], "decay_steps": 0}]),
        "sgdr_schedule: cosine_kwargs[1] is invalid: warmup_cosine_decay_schedule: decay_steps "
        "must be > warmup_steps = 0 (it counts the warmup too), got decay_steps=0",
    ),
]


@pytest.mark.parametrize(("make", "text"), ERRORS, ids=[t.split(":")[0] for _, t in ERRORS])
def test_bad_arguments_raise(make, text):
    with pytest.raises(ValueError, match=re.escape(text)):
        make()
