"""Optax's own reduce_on_plateau cases (optax/contrib/_reduce_on_plateau_test.py), run on
optix in float32 and float64, with states built field by field as Optax's test builds them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optix.contrib import ReduceLROnPlateauState, reduce_on_plateau

PATIENCE = COOLDOWN = 5
UPDATES = {"params": jnp.array(1.0)}


def make():
    return reduce_on_plateau(
        factor=0.1,
        patience=PATIENCE,
        rtol=1e-4,
        atol=0.0,
        cooldown=COOLDOWN,
        accumulation_size=1,
        min_scale=0.01,
    )


def state_with(best_value, plateau_count, scale, cooldown_count):
    return ReduceLROnPlateauState(
        best_value=jnp.array(best_value),
        plateau_count=jnp.array(plateau_count, jnp.int32),
        scale=jnp.array(scale),
        cooldown_count=jnp.array(cooldown_count, jnp.int32),
        count=jnp.array(0, jnp.int32),
        avg_value=jnp.array(0.0),
    )


def assert_state(state, scale, best_value, plateau_count, cooldown_count):
    np.testing.assert_allclose(state.scale, scale, rtol=1e-6)
    np.testing.assert_allclose(state.best_value, best_value, rtol=1e-6)
    assert int(state.plateau_count) == plateau_count
    assert int(state.cooldown_count) == cooldown_count


@pytest.fixture(params=[False, True], ids=["f32", "f64"])
def precision(request):
    with jax.enable_x64(request.param):
        yield


def test_the_scale_drops_when_patience_runs_out_then_cooldown_counts_down(precision):
    tx = make()
    state = tx.init(UPDATES["params"])
    for _ in range(PATIENCE + 1):
        updates, state = tx.update(updates=UPDATES, state=state, value=jnp.asarray(1.0, float))
    assert_state(state, 0.1, 1.0, 0, COOLDOWN)
    np.testing.assert_allclose(updates["params"], 0.1, rtol=1e-6)
    _, state = tx.update(updates=updates, state=state, value=jnp.asarray(1.0, float))
    assert_state(state, 0.1, 1.0, 0, COOLDOWN - 1)


def test_a_new_best_value_resets_the_plateau_count(precision):
    _, state = make().update(UPDATES, state_with(1.0, 3, 0.1, 0), value=jnp.asarray(0.1, float))
    assert_state(state, 0.1, 0.1, 0, 0)


def test_a_worse_value_during_cooldown_changes_nothing_but_the_cooldown(precision):
    _, state = make().update(UPDATES, state_with(1.0, 0, 0.1, 3), value=jnp.asarray(2.0, float))
    assert_state(state, 0.1, 1.0, 0, 2)


def test_the_scale_stays_at_min_scale(precision):
    tx, state = make(), state_with(1.0, 0, 0.01, 0)
    for _ in range(PATIENCE + 1):
        updates, state = tx.update(updates=UPDATES, state=state, value=0.1)
    assert_state(state, 0.01, 0.1, 0, COOLDOWN)
    np.testing.assert_allclose(updates["params"], 0.01, rtol=1e-6)
