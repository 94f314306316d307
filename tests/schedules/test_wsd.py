"""Warmup-stable-decay against pytorch_optimizer's get_wsd_schedule, closed forms, laws, errors."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_optimizer.lr_scheduler.wsd import get_wsd_schedule

from optix.schedules.wsd import DECAY_WEIGHTS, warmup_stable_decay_schedule
from tests.schedules.common import (
    F32_RTOL,
    F64_RTOL,
    in_order,
    max_relative_difference,
    run,
    run64,
    values64,
)

SHAPES = {
    "linear": lambda x: 1 - x,
    "cosine": lambda x: (1 + math.cos(math.pi * x)) / 2,
    "1-sqrt": lambda x: 1 - math.sqrt(x),
    "1-square": lambda x: 1 - x * x,
}


def torch_lrs(peak, warmup, stable, decay, min_lr_ratio, kind, steps):
    """The learning rate pytorch_optimizer's scheduler sets before each of ``steps`` steps."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=peak)
    scheduler = get_wsd_schedule(
        optimizer, warmup, stable, decay, min_lr_ratio=min_lr_ratio, cooldown_type=kind
    )
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.asarray(lrs)


# pytorch_optimizer agrees with the WSD literature for min_lr_ratio=0, and for the
# cosine shape with any ratio.
CASES = [(kind, 0.0) for kind in SHAPES] + [("cosine", 0.1)]


@pytest.mark.parametrize(("kind", "ratio"), CASES)
@pytest.mark.parametrize(("warmup", "stable", "decay"), [(10, 30, 40), (0, 5, 17), (7, 0, 1)])
def test_matches_pytorch_optimizer_at_every_step(kind, ratio, warmup, stable, decay):
    steps = warmup + stable + decay + 10
    expected = torch_lrs(3e-4, warmup, stable, decay, ratio, kind, steps)
    schedule = warmup_stable_decay_schedule(
        0.0, 3e-4, warmup, stable, decay, end_value=3e-4 * ratio, decay_type=kind
    )
    assert max_relative_difference(run64(schedule, steps), expected) <= F64_RTOL
    assert max_relative_difference(run(schedule, steps), expected) <= F32_RTOL


@pytest.mark.parametrize("kind", ["linear", "1-sqrt", "1-square"])
def test_decay_ends_at_end_value_without_a_jump(kind):
    # pytorch_optimizer's non-cosine shapes fall towards 0 and jump up to min_lr_ratio
    # at the end; the decay here runs from peak_value to end_value.
    values = run64(warmup_stable_decay_schedule(0.5, 2.0, 4, 3, 10, 0.2, kind), 20)
    np.testing.assert_allclose(values[:5], [0.5, 0.875, 1.25, 1.625, 2.0], rtol=1e-15)
    np.testing.assert_array_equal(values[4:8], 2.0)
    for k in range(11):
        expected = 0.2 + 1.8 * SHAPES[kind](k / 10)
        assert values[7 + k] == pytest.approx(expected, rel=1e-14)
    np.testing.assert_array_equal(values[17:], 0.2)


def test_the_last_decay_steps_keep_float32_precision():
    values = run(warmup_stable_decay_schedule(0.0, 1.0, 0, 0, 1000, decay_type="1-sqrt"), 1001)
    assert values[999] == pytest.approx(1 - math.sqrt(0.999), rel=1e-6)
    assert values[1000] == 0.0


def test_zero_length_phases():
    values = run64(warmup_stable_decay_schedule(0.1, 1.0, 0, 0, 0, end_value=0.3), 3)
    np.testing.assert_array_equal(values, 0.3)
    values = run64(warmup_stable_decay_schedule(0.1, 1.0, 2, 0, 0, end_value=0.3), 4)
    np.testing.assert_allclose(values, [0.1, 0.55, 0.3, 0.3], rtol=1e-15)


levels = st.one_of(st.just(0.0), st.floats(1e-3, 10.0))


@settings(max_examples=100, deadline=None)
@given(
    levels,
    levels,
    levels,
    st.integers(0, 30),
    st.integers(0, 30),
    st.integers(1, 50),
    st.sampled_from(sorted(DECAY_WEIGHTS)),
)
def test_wsd_laws(init, peak, end, warmup, stable, decay, kind):
    schedule = warmup_stable_decay_schedule(init, peak, warmup, stable, decay, end, kind)
    values = values64(schedule)
    lo, hi = min(init, peak, end), max(init, peak, end)
    assert np.all(values >= lo - 1e-12 * hi) and np.all(values <= hi + 1e-12 * hi)
    if warmup:
        assert values[0] == init
    decay_begin = warmup + stable
    np.testing.assert_array_equal(values[warmup : decay_begin + 1], peak)
    np.testing.assert_array_equal(values[decay_begin + decay :], end)
    assert in_order(values[: warmup + 1], increasing=peak >= init)
    assert in_order(values[decay_begin:], increasing=end >= peak)


ERRORS = [
    (
        lambda: warmup_stable_decay_schedule(0.0, 1.0, -1, 10, 10),
        "warmup_stable_decay_schedule: warmup_steps must be finite and >= 0, got warmup_steps=-1",
    ),
    (
        lambda: warmup_stable_decay_schedule(0.0, 1.0, 1, -10, 10),
        "warmup_stable_decay_schedule: stable_steps must be finite and >= 0, got stable_steps=-10",
    ),
    (
        lambda: warmup_stable_decay_schedule(0.0, 1.0, 1, 10, float("inf")),
        "warmup_stable_decay_schedule: decay_steps must be finite and >= 0, got decay_steps=inf",
    ),
    (
        lambda: warmup_stable_decay_schedule(0.0, 1.0, 1, 10, 10, decay_type="sqrt"),
        "warmup_stable_decay_schedule: decay_type must be one of ('linear', 'cosine', "
        "'1-sqrt', '1-square'), got decay_type='sqrt'",
    ),
]


@pytest.mark.parametrize(("make", "text"), ERRORS, ids=[t.split(",")[0] for _, t in ERRORS])
def test_bad_arguments_raise(make, text):
    with pytest.raises(ValueError, match=re.escape(text)):
        make()
