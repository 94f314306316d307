"""join_schedules: Optax, which piece runs when and on which count, errors, use in an optimizer."""

import bisect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix.schedules as ours
from optix.optimizers.sgd import sgd
from optix.schedules.basic import constant_schedule, linear_schedule
from optix.schedules.cosine import cosine_decay_schedule, warmup_cosine_decay_schedule
from optix.schedules.join import join_schedules
from tests.schedules.common import F32_RTOL, F64_RTOL, max_relative_difference, run, run64


def pieces(lib):
    return [
        lib.constant_schedule(1.0),
        lib.linear_schedule(1.0, 0.1, 10),
        lib.cosine_decay_schedule(0.5, 30, alpha=0.01),
    ]


@pytest.mark.parametrize("boundaries", [[5, 15], [0, 40], [12, 12], [5.0, 15.0]])
def test_matches_optax_join_at_every_step(boundaries):
    schedule = join_schedules(pieces(ours), boundaries)
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        theirs = optax.join_schedules(pieces(optax), boundaries)
        expected = np.asarray([float(theirs(jnp.asarray(c, jnp.int64))) for c in range(80)])
    assert max_relative_difference(run64(schedule, 80), expected) <= F64_RTOL
    assert max_relative_difference(run(schedule, 80), expected) <= F32_RTOL


def test_each_piece_sees_the_steps_since_its_boundary():
    identity = lambda count: count
    schedule = join_schedules([constant_schedule(-1.0), identity, identity], [3, 7])
    np.testing.assert_array_equal(run64(schedule, 10), [-1, -1, -1, 0, 1, 2, 3, 0, 1, 2])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=5).map(sorted), st.integers(0, 50))
def test_the_piece_of_the_last_boundary_passed_runs(boundaries, count):
    tagged = [lambda c, i=i: 100.0 * i + c for i in range(len(boundaries) + 1)]
    value = float(join_schedules(tagged, boundaries)(count))
    i = bisect.bisect_right(boundaries, count)
    since = count - (boundaries[i - 1] if i else 0)
    assert value == 100.0 * i + since


def test_float_counts_fractional_boundaries_and_foreign_dtypes():
    schedule = join_schedules([constant_schedule(1.0), lambda c: jnp.float32(2.0)], [2.5])
    with jax.enable_x64(True):
        assert schedule(jnp.int32(2)) == 1.0 and schedule(3).dtype == jnp.float64
        assert float(schedule(2.75)) == 2.0


def test_an_optimizer_with_a_joined_schedule_compiles_once():
    lr = warmup_cosine_decay_schedule(0.0, 0.1, 5, 25, end_value=0.01)
    tx = sgd(learning_rate=lr)
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones((), jnp.float32)}
    traces = []

    @jax.jit
    def step(state, grads):
        traces.append(None)
        return tx.update(grads, state, params)

    state = tx.init(params)
    grads = {"w": jnp.full(3, 2.0, jnp.bfloat16), "b": jnp.asarray(2.0, jnp.float32)}
    for count in range(30):
        updates, state = step(state, grads)
        assert updates["w"].dtype == jnp.bfloat16
        assert float(updates["b"]) == pytest.approx(-2.0 * float(lr(count)), rel=1e-6)
    assert len(traces) == 1


ERRORS = [
    (
        lambda: join_schedules([], []),
        "join_schedules: schedules must be a non-empty sequence of functions of the step "
        "count, got schedules=[]",
    ),
    (
        lambda: join_schedules([constant_schedule(1.0), 0.5], [3]),
        "join_schedules: schedules must be a non-empty sequence of functions",
    ),
    (
        lambda: join_schedules([constant_schedule(1.0)] * 3, [10]),
        "join_schedules: boundaries must have len(schedules) - 1 = 2 entries, got boundaries=[10]",
    ),
    (
        lambda: join_schedules([constant_schedule(1.0)] * 2, []),
        "join_schedules: boundaries must have len(schedules) - 1 = 1 entries, got boundaries=[]",
    ),
    (
        lambda: join_schedules([constant_schedule(1.0)] * 2, [-1]),
        "join_schedules: boundaries must be steps >= 0, got boundaries=[-1]",
    ),
    (
        lambda: join_schedules([constant_schedule(1.0)] * 3, [10, 5]),
        "join_schedules: boundaries must be non-decreasing, got boundaries=[10, 5]",
    ),
]


@pytest.mark.parametrize(("make", "text"), ERRORS, ids=[t.split(",")[0][-40:] for _, t in ERRORS])
def test_bad_arguments_raise(make, text):
    with pytest.raises(ValueError, match=re.escape(text)):
        make()


def test_linear_schedule_is_a_building_block_of_joins():
    schedule = join_schedules([linear_schedule(0.0, 1.0, 4), cosine_decay_schedule(1.0, 4)], [4])
    half = (1 + np.cos(np.pi * np.arange(5) / 4)) / 2
    expected = np.concatenate([np.arange(4) / 4, half])
    np.testing.assert_allclose(run64(schedule, 9), expected, rtol=1e-15, atol=1e-16)
