"""Optax's own schedule cases (optax/schedules/{_schedule,_join}_test.py), run on optix:
each schedule's values at the steps Optax checks, the arguments it refuses, and a constant
schedule as the learning rate of every optimizer Optax lists."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
import optix.schedules as s


def values(schedule, steps):
    """Values at int32 step counts, as an optimizer calls the schedule."""
    return np.asarray([schedule(jnp.asarray(step, jnp.int32)) for step in steps])


def cosine_multipliers(fractions):
    return 0.5 + 0.5 * np.cos(np.pi * np.asarray(fractions))


def staircased(count, staircase):
    p = count / 2
    return np.floor(p) if staircase else p


def exponential_expected(staircase, begin, steps=15):
    return [1.0] * begin + [2.0 ** staircased(c, staircase) for c in range(steps)]


def exponential_with_end(rate, end, staircase):
    raw = [1.0] * 3 + [rate ** staircased(c, staircase) for c in range(11)]
    return (np.maximum if rate < 1.0 else np.minimum)(raw, end)


SCHEDULE_CASES = {
    "constant": (s.constant_schedule(10), range(15), [10.0] * 15),
    "linear": (
        s.polynomial_schedule(10.0, 20.0, power=1, transition_steps=10),
        range(15),
        list(range(10, 20)) + [20] * 5,
    ),
    "polynomial_minus_one_steps": (
        s.polynomial_schedule(10.0, 20.0, 1, -1),
        range(15),
        [10.0] * 15,
    ),
    "polynomial_zero_steps": (s.polynomial_schedule(10.0, 20.0, 1, 0), range(15), [10.0] * 15),
    "quadratic": (
        s.polynomial_schedule(25.0, 10.0, power=2, transition_steps=10),
        range(15),
        [10.0 + 15.0 * (1.0 - n / 10) ** 2 for n in range(10)] + [10] * 5,
    ),
    "quadratic_begin": (
        s.polynomial_schedule(30.0, 10.0, power=2, transition_steps=10, transition_begin=4),
        range(20),
        [30.0] * 4 + [10.0 + 20.0 * (1.0 - n / 10) ** 2 for n in range(10)] + [10] * 6,
    ),
    "piecewise_positive": (
        s.piecewise_constant_schedule(0.1, {3: 2.0, 6: 0.5}),
        range(10),
        [0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1],
    ),
    "piecewise_negative": (
        s.piecewise_constant_schedule(-0.1, {3: 2.0, 6: 0.5}),
        range(10),
        [-0.1, -0.1, -0.1, -0.2, -0.2, -0.2, -0.1, -0.1, -0.1, -0.1],
    ),
    "exponential_immutable_count": (
        s.exponential_decay(32.0, transition_steps=1, decay_rate=0.5),
        range(5),
        [32, 16, 8, 4, 2],
    ),
    "cosine_full": (
        s.cosine_decay_schedule(0.1, 10, 0.0),
        range(10),
        0.1 * cosine_multipliers(np.arange(10) / 10),
    ),
    "cosine_part": (
        s.cosine_decay_schedule(0.1, 5, 0.0),
        range(12),
        0.1 * cosine_multipliers(np.minimum(np.arange(12) / 5, 1.0)),
    ),
    "cosine_part_alpha": (
        s.cosine_decay_schedule(0.1, 5, 0.1),
        range(12),
        0.1 * (0.9 * cosine_multipliers(np.minimum(np.arange(12) / 5, 1.0)) + 0.1),
    ),
    "cosine_exponent": (
        s.cosine_decay_schedule(0.1, decay_steps=100, alpha=0.0, exponent=2),
        [0, 10, 50, 75, 100],
        [0.1, 0.09516553580760956, 0.025, 0.0021446612663567066, 0.0],
    ),
    "warmup_cosine_exponent": (
        s.warmup_cosine_decay_schedule(0.2, 1.21, 50, 100, -3.0, exponent=2),
        [0, 10, 50, 75, 100],
        [0.2, 0.402, 1.21, -1.9475, -3.0],
    ),
    # Deliberate difference: with a peak of 0, Optax decays to 0 and drops end_value
    # (its alpha = end_value / peak_value is set to 0); optix decays to end_value.
    "warmup_cosine_zero_peak": (
        s.warmup_cosine_decay_schedule(0.2, 0, 50, 100, -3.0, exponent=2),
        [0, 10, 50, 75, 100],
        [0.2, 0.16, 0.0, -3.0 * 0.75, -3.0],
    ),
    "interpolate_linear": (
        s.piecewise_interpolate_schedule("linear", 200.0, {5: 1.5, 10: 0.25}),
        range(13),
        [200, 220, 240, 260, 280, 300, 255, 210, 165, 120, 75, 75, 75],
    ),
    "interpolate_cosine": (
        s.piecewise_interpolate_schedule("cosine", 400.0, {5: 1.2, 3: 0.6, 7: 1.0}),
        range(9),
        [400, 360, 280, 240, 264, 288, 288, 288, 288],
    ),
    "interpolate_empty": (
        s.piecewise_interpolate_schedule("linear", 13.0, {}),
        range(5),
        [13.0] * 5,
    ),
    "interpolate_none": (s.piecewise_interpolate_schedule("cosine", 17.0), range(3), [17.0] * 3),
    "interpolate_zero_interval": (
        s.piecewise_interpolate_schedule("linear", 13.0, {0: 2.0, 5: 3.0}),
        [0, 5],
        [26.0, 78.0],
    ),
    "linear_onecycle": (
        s.linear_onecycle_schedule(10, 1000, 0.3, 0.7, 10.0, 100.0),
        range(12),
        [100, 400, 700, 1000, 775, 550, 325, 100, 67, 34, 1, 1],
    ),
    "cosine_onecycle": (
        s.cosine_onecycle_schedule(5, 1000.0, 0.4, 10.0, 100.0),
        range(7),
        [100, 550, 1000, 750.25, 250.75, 1, 1],
    ),
    "join": (
        s.join_schedules([s.constant_schedule(c) for c in (1.0, 2.0, 1.0)], [3, 6]),
        range(7),
        [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0],
    ),
}
for staircase in (False, True):
    for steps in (15, -1, 0):
        SCHEDULE_CASES[f"exponential_rate_one_{staircase}_{steps}"] = (
            s.exponential_decay(1.0, steps, 1.0, staircase=staircase),
            range(15),
            [1.0] * 15,
        )
    SCHEDULE_CASES[f"exponential_rate_zero_{staircase}"] = (
        s.exponential_decay(1.0, 2, 0.0, staircase=staircase),
        range(15),
        [1.0] * 15,
    )
    for begin in (0, 5):
        SCHEDULE_CASES[f"exponential_{staircase}_{begin}"] = (
            s.exponential_decay(1.0, 2, 2.0, transition_begin=begin, staircase=staircase),
            range(15 + begin),
            exponential_expected(staircase, begin),
        )
    for rate, end in [(0.2, 0.1), (1.0, 0.1), (2.0, 3.0)]:
        SCHEDULE_CASES[f"exponential_end_{rate}_{staircase}"] = (
            s.exponential_decay(1.0, 2, rate, 3, staircase, end),
            range(14),
            exponential_with_end(rate, end, staircase),
        )


@pytest.mark.parametrize("name", sorted(SCHEDULE_CASES))
def test_values_at_the_steps_optax_checks(name):
    schedule, steps, expected = SCHEDULE_CASES[name]
    np.testing.assert_allclose(values(schedule, list(steps)), expected, rtol=1e-6, atol=1e-5)


def test_cosine_decay_with_a_decay_length_beyond_int32():
    schedule = s.cosine_decay_schedule(1000.0, decay_steps=int(1e10), alpha=0.0, exponent=1)
    np.testing.assert_allclose(jax.jit(schedule)(int(1e9)), 975.52826, rtol=1e-6)


@pytest.mark.parametrize(("init", "peak", "end"), [(10, 0.5, 1e-4), (5, 3, 0.0)])
def test_warmup_cosine_starts_at_init_peaks_and_ends(init, peak, end):
    out = values(s.warmup_cosine_decay_schedule(init, peak, 100, 1000, end), [0, 100, 1000])
    np.testing.assert_allclose(out[:2], [init, peak], rtol=1e-6)
    np.testing.assert_allclose(out[2], end, rtol=1e-3, atol=1e-7)


def test_warmup_cosine_rises_then_falls_and_a_larger_exponent_falls_faster():
    steps = np.arange(26)
    regular = values(s.warmup_cosine_decay_schedule(0.0, 1.0, 5, 25, 0.1, exponent=1.0), steps)
    steep = values(s.warmup_cosine_decay_schedule(0.0, 1.0, 5, 25, 0.1, exponent=2.0), steps)
    assert np.all(np.diff(regular[:6]) > 0) and np.all(np.diff(regular[5:]) <= 0)
    assert regular[5] == pytest.approx(1.0, abs=1e-6) and regular[-1] == pytest.approx(
        0.1, abs=1e-6
    )
    assert np.all(steep[5:] <= regular[5:] + 1e-12)


@pytest.mark.parametrize(("lr0", "lr1", "lr2"), [(1.6, 0.8, 0.4), (1.6, 1.6, 1.6)])
def test_sgdr_peaks_of_each_cycle(lr0, lr1, lr2):
    cycles = [
        dict(decay_steps=steps, peak_value=lr, init_value=0, end_value=0.0, warmup_steps=500)
        for steps, lr in zip([2000, 3000, 5000], [lr0, lr1, lr2], strict=True)
    ]
    out = values(s.sgdr_schedule(cycles), [500, 2500, 5500])
    np.testing.assert_allclose(out, [lr0, lr1, lr2], rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: s.warmup_cosine_decay_schedule(0.2, 1.2, warmup_steps=10, decay_steps=10),
        lambda: s.piecewise_interpolate_schedule("linar", 13.0),
        lambda: s.piecewise_interpolate_schedule("", 13.0, {5: 3.0}),
        lambda: s.piecewise_interpolate_schedule(None, 13.0, {}),
        lambda: s.piecewise_interpolate_schedule("linear", 13.0, {5: -3}),
        lambda: s.cosine_onecycle_schedule(transition_steps=0, peak_value=5.0),
        lambda: s.linear_onecycle_schedule(transition_steps=0, peak_value=5.0),
    ],
    ids=["decay_is_warmup", "linar", "empty_type", "none_type", "negative_scale", "cos1", "lin1"],
)
def test_arguments_optax_refuses(make):
    with pytest.raises(ValueError):
        make()


# Optax's optimizers under test (alias_test.py) that take a learning rate schedule (rprop's
# learning rate is its initial step size, as in torch, and cannot be one).
OPTIMIZERS = {
    "adabelief": {"learning_rate": 1e-2},
    "adadelta": {"learning_rate": 0.1},
    "adafactor": {"learning_rate": 5e-3},
    "adagrad": {"learning_rate": 1.0},
    "adam": {"learning_rate": 1e-1},
    "adamax": {"learning_rate": 1e-1},
    "adamaxw": {"learning_rate": 1e-1},
    "adamw": {"learning_rate": 1e-1},
    "adan": {"learning_rate": 1e-1},
    "amsgrad": {"learning_rate": 1e-1},
    "fromage": {"learning_rate": 5e-3},
    "lamb": {"learning_rate": 1e-3},
    "lars": {"learning_rate": 1.0},
    "lion": {"learning_rate": 1e-2, "weight_decay": 1e-4},
    "nadam": {"learning_rate": 1e-2},
    "nadamw": {"learning_rate": 1e-2},
    "noisy_sgd": {"learning_rate": 1e-3, "eta": 1e-4, "key": 0},
    "novograd": {"learning_rate": 1e-3},
    "optimistic_adam_v2": {"learning_rate": 2e-3},
    "optimistic_gradient_descent": {"learning_rate": 2e-3, "alpha": 0.7, "beta": 0.1},
    "radam": {"learning_rate": 5e-3},
    "rmsprop": {"learning_rate": 5e-3, "momentum": 0.9},
    "sgd": {"learning_rate": 1e-3, "momentum": 0.9},
    "sign_sgd": {"learning_rate": 1e-1},
    "signum": {"learning_rate": 1e-2},
    "sm3": {"learning_rate": 1.0},
    "yogi": {"learning_rate": 1e-1},
}


def test_a_constant_schedule_as_learning_rate_gives_the_numbers_of_the_constant():
    target = jnp.array([1.0, -1.0, 1.0])
    objective = lambda p: jnp.sum((p - target) ** 2)
    for name, kwargs in OPTIMIZERS.items():
        runs = []
        for lr in (1e-3, s.constant_schedule(1e-3)):
            tx = getattr(optix, name)(**(kwargs | {"learning_rate": lr}))
            params = jnp.array([-1.0, 10.0, 1.0])
            state = tx.init(params)
            for _ in range(3):
                updates, state = tx.update(jax.grad(objective)(params), state, params)
                params = optix.apply_updates(params, updates)
            runs.append(params)
        np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6, err_msg=name)
        assert np.any(np.asarray(runs[0]) != [-1.0, 10.0, 1.0]), name
