"""Constant, polynomial, exponential and piecewise schedules: Optax, closed forms, laws."""

import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optix.schedules.basic import (
    constant_schedule,
    exponential_decay,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
)
from tests.schedules.common import (
    assert_matches_optax,
    in_order,
    optax_values,
    run,
    run64,
    values64,
)

OPTAX_CASES = [
    (polynomial_schedule, (1.0, 0.01, 2, 100), {"transition_begin": 5}),
    (polynomial_schedule, (0.0, 1.0, 0.5, 50), {}),
    (linear_schedule, (0.0, 1e-3, 100), {}),
    (linear_schedule, (1.0, 0.0, 37), {"transition_begin": 3}),
    (exponential_decay, (1.0, 10, 0.5), {}),
    (
        exponential_decay,
        (2.0, 7, 0.9),
        {"transition_begin": 5, "staircase": True, "end_value": 1.0},
    ),
    (exponential_decay, (0.1, 10, 1.5), {"end_value": 0.5}),
    (exponential_decay, (3e-4, 25, 0.96), {"transition_begin": 10}),
    (piecewise_constant_schedule, (1.0, {30: 0.1, 60: 0.01}), {}),
    (piecewise_constant_schedule, (1.0, {0: 2.0, 7: 0.5, 90: 3.0}), {}),
    (piecewise_interpolate_schedule, ("linear", 1.0, {4: 0.1, 8: 0.01}), {}),
    (piecewise_interpolate_schedule, ("linear", 2.0, {0: 0.5, 50: 0.0, 120: 1.0}), {}),
    (piecewise_interpolate_schedule, ("cosine", 1.0, {0: 0.5, 10: 4.0, 25: 0.25}), {}),
    (piecewise_interpolate_schedule, ("cosine", 0.1, {100: 10.0, 140: 1e-3}), {}),
]


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"), OPTAX_CASES, ids=lambda x: getattr(x, "__name__", "")
)
def test_matches_optax_at_every_step(fn, args, kwargs):
    assert_matches_optax(fn, fn.__name__, args, kwargs, 160)


def test_constant_matches_optax():
    expected = optax_values("constant_schedule", (0.3,), {}, 5)
    np.testing.assert_array_equal(run64(constant_schedule(0.3), 5), expected)
    np.testing.assert_array_equal(run(constant_schedule(0.3), 5), np.float32(0.3))


def test_polynomial_crossing_zero_matches_optax():
    args, kwargs = (-1.0, 2.0, 3.0, 40), {"transition_begin": 7}
    assert_matches_optax(
        polynomial_schedule, "polynomial_schedule", args, kwargs, 60, f32_floor=2.0
    )


def test_polynomial_closed_form():
    # Optax's docstring example: (1 - 0.01) * (1 - k / 100)**2 + 0.01 with k = count - 5.
    schedule = polynomial_schedule(1.0, 0.01, power=2, transition_steps=100, transition_begin=5)
    values = run64(schedule, 111)
    for count in [0, 5, 6, 50, 104, 105, 110]:
        k = min(max(count - 5, 0), 100)
        assert values[count] == pytest.approx(0.99 * (1 - k / 100) ** 2 + 0.01, rel=1e-15)
    assert values[6] == pytest.approx(0.980299, abs=1e-6)


def test_linear_warmup_from_zero_keeps_float32_precision():
    # 1e-3 * k / 1000 at k = 1: Optax's float32 form (init - end) * (1 - k/T) + end cancels.
    values = run(linear_schedule(0.0, 1e-3, 1000), 3)
    np.testing.assert_allclose(values, [0.0, 1e-6, 2e-6], rtol=1e-7)


def test_zero_transition_steps_hold_init_value_as_in_optax():
    np.testing.assert_array_equal(run64(linear_schedule(0.5, 1.0, 0), 4), np.full(4, 0.5))
    np.testing.assert_array_equal(run64(polynomial_schedule(0.5, 1.0, 2.0, 0), 4), np.full(4, 0.5))


def test_exponential_decay_closed_form():
    schedule = exponential_decay(2.0, 7, 0.9, transition_begin=5, staircase=True, end_value=1.0)
    values = run64(schedule, 80)
    for count in range(80):
        k = count - 5
        expected = 2.0 if k <= 0 else max(2.0 * 0.9 ** math.floor(k / 7), 1.0)
        assert values[count] == pytest.approx(expected, rel=1e-15)
    growth = run64(exponential_decay(0.1, 10, 1.5, end_value=0.5), 60)
    expected = [min(0.1 * 1.5 ** (c / 10), 0.5) for c in range(60)]
    np.testing.assert_allclose(growth, expected, rtol=1e-14)


def test_piecewise_constant_closed_form():
    values = run64(piecewise_constant_schedule(1.0, {100: 0.1, 200: 0.01}), 251)
    assert values[99] == 1.0 and values[100] == pytest.approx(0.1, rel=1e-15)
    assert values[199] == pytest.approx(0.1, rel=1e-15)
    assert values[200] == pytest.approx(1e-3, rel=1e-15) and values[250] == values[200]
    np.testing.assert_array_equal(run64(piecewise_constant_schedule(0.7), 3), np.full(3, 0.7))
    np.testing.assert_array_equal(run64(piecewise_constant_schedule(0.7, {}), 3), np.full(3, 0.7))


def test_piecewise_interpolate_closed_form():
    # Optax's docstring example.
    schedule = piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
    values = run64(schedule, 11)
    expected = [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001]
    np.testing.assert_allclose(values[::2], expected, rtol=1e-14)
    cosine = run64(piecewise_interpolate_schedule("cosine", 1.0, {4: 0.1}), 6)
    np.testing.assert_allclose(cosine[2], 0.1 + 0.9 * (1 + math.cos(math.pi / 2)) / 2, rtol=1e-14)
    np.testing.assert_allclose(cosine[4:], [0.1, 0.1], rtol=1e-15)


def test_default_float_dtype_and_traced_hyperparameters():
    with jax.enable_x64(True):
        assert linear_schedule(np.float32(1.0), 0.0, 10)(3).dtype == jnp.float64
        assert constant_schedule(jnp.float32(2.0))(0).dtype == jnp.float64
    assert exponential_decay(1.0, 10, 0.5)(3).dtype == jnp.float32
    traced = jax.jit(lambda init, end: linear_schedule(init, end, 10)(5))(1.0, 3.0)
    assert float(traced) == pytest.approx(2.0, rel=1e-6)
    traced_rate = jax.jit(lambda rate: exponential_decay(1.0, 10, rate)(20))(0.5)
    assert float(traced_rate) == pytest.approx(0.25, rel=1e-6)


finite = st.floats(-10.0, 10.0, allow_nan=False, allow_subnormal=False)
positive = st.floats(1e-3, 10.0, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(finite, finite, st.floats(0.1, 4.0), st.integers(1, 50), st.integers(0, 10))
def test_polynomial_laws(init, end, power, steps, begin):
    values = values64(polynomial_schedule(init, end, power, steps, begin))
    lo, hi = min(init, end), max(init, end)
    assert np.all(values >= lo - 1e-12) and np.all(values <= hi + 1e-12)
    np.testing.assert_array_equal(values[: begin + 1], init)
    np.testing.assert_allclose(values[begin + steps :], end, rtol=1e-12, atol=1e-12)
    assert in_order(values, increasing=end >= init)


@settings(max_examples=100, deadline=None)
@given(
    positive,
    st.integers(1, 20),
    st.one_of(st.floats(0.05, 0.99), st.floats(1.01, 3.0)),
    st.integers(0, 10),
    st.booleans(),
    st.one_of(st.none(), positive),
)
def test_exponential_laws(init, steps, rate, begin, staircase, end):
    values = values64(exponential_decay(init, steps, rate, begin, staircase, end))
    decays = rate < 1
    assert in_order(values, increasing=not decays)
    np.testing.assert_array_equal(values[: begin + 1], init if end is None else values[0])
    if end is not None:
        assert np.all(values >= end - 1e-12) if decays else np.all(values <= end + 1e-12)
    if staircase:
        windows = values[begin : begin + 5 * steps].reshape(-1, steps)[1:]
        assert np.all(windows == windows[:, :1])


scales = st.one_of(st.just(0.0), st.floats(0.01, 4.0))
boundary_dicts = st.dictionaries(st.integers(0, 60), scales, max_size=4)


@settings(max_examples=100, deadline=None)
@given(positive, boundary_dicts)
def test_piecewise_constant_is_the_product_of_passed_scales(init, scales):
    values = values64(piecewise_constant_schedule(init, scales))
    for count in range(len(values)):
        expected = init * math.prod(s for b, s in scales.items() if count >= b)
        assert values[count] == pytest.approx(expected, rel=1e-14, abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["linear", "cosine"]), positive, boundary_dicts)
def test_piecewise_interpolate_hits_each_boundary_and_stays_between(kind, init, scales):
    values = values64(piecewise_interpolate_schedule(kind, init, scales))
    bounds, levels = [0], [init]
    for b, s in sorted(scales.items()):
        bounds.append(b)
        levels.append(levels[-1] * s)
    pieces = zip(itertools.pairwise(bounds), itertools.pairwise(levels), strict=True)
    for (b0, b1), (v0, v1) in pieces:
        assert values[b1] == pytest.approx(v1, rel=1e-12, abs=1e-300)
        piece = values[b0 : b1 + 1]
        assert np.all(piece >= min(v0, v1) * (1 - 1e-12)) and np.all(
            piece <= max(v0, v1) * (1 + 1e-12)
        )
        assert in_order(piece, increasing=v1 >= v0)
    np.testing.assert_allclose(values[bounds[-1] :], levels[-1], rtol=1e-12)


def message(text):
    return re.escape(text)


MAP = "boundaries_and_scales must map steps >= 0 to finite scales >= 0"
ERRORS = [
    (
        lambda: polynomial_schedule(1.0, 0.0, -1.0, 10),
        "polynomial_schedule: power must be finite and >= 0, got power=-1.0",
    ),
    (
        lambda: exponential_decay(1.0, 10, -0.5),
        "exponential_decay: decay_rate must be finite and >= 0, got decay_rate=-0.5",
    ),
    (
        lambda: piecewise_constant_schedule(1.0, {10: -0.1}),
        f"piecewise_constant_schedule: {MAP}, got boundaries_and_scales={{10: -0.1}}",
    ),
    (
        lambda: piecewise_constant_schedule(1.0, {-3: 0.1}),
        f"piecewise_constant_schedule: {MAP}, got boundaries_and_scales={{-3: 0.1}}",
    ),
    (
        lambda: piecewise_interpolate_schedule("cubic", 1.0),
        "piecewise_interpolate_schedule: interpolate_type must be one of ('linear', 'cosine'), "
        "got interpolate_type='cubic'",
    ),
    (
        lambda: piecewise_interpolate_schedule("linear", 1.0, {5: float("inf")}),
        f"piecewise_interpolate_schedule: {MAP}, got boundaries_and_scales={{5: inf}}",
    ),
]


@pytest.mark.parametrize(("make", "text"), ERRORS, ids=[text.split(",")[0] for _, text in ERRORS])
def test_bad_arguments_raise(make, text):
    with pytest.raises(ValueError, match=message(text)):
        make()


# Degenerate arguments Optax gives a meaning to: a non-positive length or a zero rate holds
# init_value, a negative transition_begin counts as 0, a zero power never moves.
DEGENERATE_CASES = [
    (exponential_decay, (1.0, 10, 0.0), {}),
    (exponential_decay, (2.0, 0, 0.5), {}),
    (exponential_decay, (2.0, -3, 0.5), {"end_value": 0.1}),
    (exponential_decay, (1.0, 4, 0.5), {"transition_begin": -2}),
    (polynomial_schedule, (1.0, 0.5, 2.0, -5), {}),
    (polynomial_schedule, (1.0, 0.5, 0.0, 10), {}),
    (linear_schedule, (1.0, 0.0, 10), {"transition_begin": -4}),
    (linear_schedule, (1.0, 0.0, 0), {}),
]


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"), DEGENERATE_CASES, ids=lambda x: getattr(x, "__name__", "")
)
def test_degenerate_arguments_match_optax(fn, args, kwargs):
    expected = optax_values(fn.__name__, args, kwargs, 16)
    np.testing.assert_allclose(run64(fn(*args, **kwargs), 16), expected, rtol=1e-12)


def test_decay_rate_zero_holds_init_value():
    # A decaying schedule reaching 0 is a valid configuration (Optax holds init_value).
    np.testing.assert_array_equal(run64(exponential_decay(0.3, 5, 0.0), 12), 0.3)


def test_non_numeric_boundary_raises_type_error():
    with pytest.raises(
        TypeError, match="piecewise_constant_schedule: boundaries_and_scales must be a real number"
    ):
        piecewise_constant_schedule(1.0, {"10": 0.5})
