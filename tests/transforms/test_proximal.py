"""proximal_decay: the update it emits realises p_new = (p + d) / (1 + lr * wd)."""

import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.transforms.proximal import ProximalDecayState, proximal_decay

PARAMS = {"a": np.asarray([1.0, -4.0]), "b": np.asarray([2.0, 0.5])}
STEP = {"a": np.asarray([0.1, 0.2]), "b": np.asarray([-0.3, 0.0])}


def test_realises_the_proximal_step_where_the_mask_is_true(x64):
    lr, wd = 0.2, 0.5
    tx = proximal_decay(lr, wd, mask={"a": True, "b": False})
    updates, _ = tx.update(STEP, tx.init(PARAMS), PARAMS)
    new = optix.apply_updates(PARAMS, updates)
    np.testing.assert_allclose(new["a"], (PARAMS["a"] + STEP["a"]) / (1 + lr * wd), rtol=1e-15)
    np.testing.assert_array_equal(new["b"], PARAMS["b"] + STEP["b"])


def test_schedules_are_evaluated_at_the_count(x64):
    steps = lambda c: jnp.asarray(c, jnp.float64) + 1
    tx = proximal_decay(lambda c: 0.1 * steps(c), lambda c: 0.5 / steps(c))
    state = tx.init(PARAMS)
    for count in range(3):
        updates, state = tx.update(STEP, state, PARAMS)
        rate = 0.1 * (count + 1) * 0.5 / (count + 1)
        new = optix.apply_updates(PARAMS, updates)
        np.testing.assert_allclose(new["a"], (PARAMS["a"] + STEP["a"]) / (1 + rate), rtol=1e-15)
    assert state == ProximalDecayState(count=jnp.asarray(3, jnp.int32))


def test_zero_decay_passes_updates_through_even_for_infinite_params():
    params = {"w": jnp.asarray([jnp.inf, 1.0])}
    tx = proximal_decay(0.1, 0.0)
    updates, _ = tx.update({"w": jnp.asarray([0.5, 0.5])}, tx.init(params), params)
    np.testing.assert_array_equal(updates["w"], [0.5, 0.5])


def test_needs_params_and_valid_hyperparameters():
    tx = proximal_decay(0.1, 0.5)
    with pytest.raises(ValueError, match="proximal_decay needs the current params"):
        tx.update(STEP, tx.init(PARAMS))
    with pytest.raises(ValueError, match="proximal_decay: weight_decay must be finite and >= 0"):
        proximal_decay(0.1, -1.0)
