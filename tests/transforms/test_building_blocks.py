"""scale, scale_by_schedule, scale_by_learning_rate, trace, ema, momentum_buffer,
add_decayed_weights and masked against Optax's transforms of the same names."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix

PARAMS = {"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.asarray([0.1, -0.3])}


def grads(t):
    return jax.tree.map(lambda p: jnp.sin(p * (t + 1)) + 0.1 * t, PARAMS)


def trajectory(tx, steps=6, standard=False):
    """Updates of ``tx`` over a few steps (``standard``: Optax needs standard promotion)."""
    with jax.numpy_dtype_promotion("standard" if standard else "strict"):
        state, out = tx.init(PARAMS), []
        for t in range(steps):
            updates, state = tx.update(grads(t), state, PARAMS)
            out.append(updates)
        return out


PAIRS = [
    ("scale", lambda m: m.scale(-0.3)),
    (
        "scale_by_schedule",
        lambda m: m.scale_by_schedule(lambda c: 1.0 / (c.astype(jnp.float32) + 1.0)),
    ),
    ("scale_by_learning_rate", lambda m: m.scale_by_learning_rate(0.1)),
    (
        "scale_by_learning_rate_schedule",
        lambda m: m.scale_by_learning_rate(lambda c: 0.1 * c.astype(jnp.float32)),
    ),
    ("scale_by_learning_rate_no_flip", lambda m: m.scale_by_learning_rate(0.1, flip_sign=False)),
    ("trace", lambda m: m.trace(0.9)),
    ("trace_nesterov", lambda m: m.trace(0.9, nesterov=True)),
    ("ema", lambda m: m.ema(0.8)),
    ("ema_no_debias", lambda m: m.ema(0.8, debias=False)),
    ("add_decayed_weights", lambda m: m.add_decayed_weights(0.1)),
    (
        "add_decayed_weights_schedule",
        lambda m: m.add_decayed_weights(lambda c: 0.1 * c.astype(jnp.float32)),
    ),
    (
        "add_decayed_weights_mask",
        lambda m: m.add_decayed_weights(0.1, mask={"w": True, "b": False}),
    ),
    (
        "add_decayed_weights_mask_fn",
        lambda m: m.add_decayed_weights(0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)),
    ),
    ("masked_trace", lambda m: m.masked(m.trace(0.5), {"w": False, "b": True})),
]


@pytest.mark.parametrize(("name", "build"), PAIRS, ids=[n for n, _ in PAIRS])
def test_matches_optax(name, build):
    for ours, theirs in zip(
        trajectory(build(optix)), trajectory(build(optax), standard=True), strict=True
    ):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), ours, theirs
        )


def test_masked_state_holds_masked_nodes_where_the_mask_is_false():
    state = optix.masked(optix.trace(0.5), {"w": False, "b": True}).init(PARAMS)
    assert isinstance(state, optix.MaskedState)
    assert state.inner_state.trace["w"] == optix.MaskedNode()
    assert state.inner_state.trace["b"].shape == (2,)


def test_masked_with_a_wrong_mask_names_both_structures():
    with pytest.raises(ValueError, match="masked: the mask must have the structure of the params"):
        optix.masked(optix.trace(0.5), {"kernel": True}).init(PARAMS)


@settings(deadline=None, max_examples=25)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=2))
def test_masked_all_false_is_identity(values):
    tx = optix.masked(optix.scale(7.0), {"w": False, "b": False})
    g = {"w": jnp.ones((2, 2)), "b": jnp.asarray(values, jnp.float32)}
    out, _ = tx.update(g, tx.init(PARAMS))
    jax.tree.map(np.testing.assert_array_equal, out, g)


def test_scale_by_learning_rate_keeps_a_count_only_for_schedules_as_optax():
    constant = optix.scale_by_learning_rate(0.1).init(PARAMS)
    schedule = optix.scale_by_learning_rate(lambda c: 0.1).init(PARAMS)
    assert type(constant) is optix.EmptyState
    assert type(schedule) is optix.ScaleByScheduleState and int(schedule.count) == 0
    updates, _ = optix.scale_by_learning_rate(0.1).update(PARAMS, constant)
    jax.tree.map(lambda u, p: np.testing.assert_array_equal(u, -0.1 * p), updates, PARAMS)


def test_add_decayed_weights_needs_params():
    tx = optix.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="add_decayed_weights needs the current params"):
        tx.update(PARAMS, tx.init(PARAMS))


def test_momentum_buffer_first_step_is_the_gradient_then_dampened():
    tx = optix.momentum_buffer(0.9, dampening=0.5)
    state = tx.init({"w": jnp.zeros(1)})
    u1, state = tx.update({"w": jnp.asarray([2.0])}, state)
    u2, state = tx.update({"w": jnp.asarray([4.0])}, state)
    np.testing.assert_allclose(u1["w"], [2.0])
    np.testing.assert_allclose(u2["w"], [0.9 * 2.0 + 0.5 * 4.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: optix.trace(-1.0), "trace: decay must be in (-1, inf), got decay=-1.0"),
        (lambda: optix.ema(1.5), "ema: decay must be in (-1, 1], got decay=1.5"),
        (
            lambda: optix.momentum_buffer(0.9, dampening=2.0),
            "momentum_buffer: dampening must be in [0, 1]",
        ),
        (
            lambda: optix.add_decayed_weights(-1e-4),
            "add_decayed_weights: weight_decay must be finite and >= 0",
        ),
        (
            lambda: optix.scale_by_learning_rate(float("inf")),
            "learning_rate must be finite",
        ),
        (
            lambda: optix.scale_by_schedule(0.1),
            "scale_by_schedule: step_size_fn must be a callable",
        ),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert message in str(info.value)
