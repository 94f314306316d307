"""Optax's own accumulation cases (optax/transforms/_accumulation_test.py), run on optix:
ema with and without debiasing, the skip functions, MultiSteps with a schedule of k, under
lax.scan, around zero_nans, and with every pair of gradient and parameter dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.accumulation import MultiSteps
from optix.transforms.finite import skip_large_updates, skip_not_finite


def test_ema_without_debias_is_the_plain_moving_average():
    tx = optix.ema(decay=0.9, debias=False)
    update = jax.jit(tx.update)
    mean, state = update(jnp.asarray(5.0), tx.init(jnp.asarray(5.0)))
    np.testing.assert_allclose(mean, 0.1 * 5.0, rtol=1e-6)
    mean, _ = update(jnp.asarray(7.0), state)
    np.testing.assert_allclose(mean, 0.1 * (7.0 + 0.9 * 5.0), rtol=1e-6)


def test_ema_debias_divides_the_output_but_not_the_state():
    tx = optix.ema(decay=0.9)
    update = jax.jit(tx.update)
    mean, state = update(jnp.asarray(5.0), tx.init(jnp.asarray(5.0)))
    np.testing.assert_allclose(mean, 5.0, rtol=1e-6)
    mean, state = update(jnp.asarray(7.0), state)
    raw = 0.1 * 7.0 + 0.9 * 0.1 * 5.0
    np.testing.assert_allclose(mean, raw / (1 - 0.9**2), rtol=1e-6)
    np.testing.assert_allclose(state.ema, raw, rtol=1e-6)


@pytest.mark.parametrize("bad", [jnp.inf, -jnp.inf, jnp.nan])
def test_skip_not_finite_counts_the_bad_entries(bad):
    step = jnp.zeros([], jnp.int32)
    skip, state = skip_not_finite([jnp.array(bad), jnp.zeros([])], step, None)
    assert bool(skip) and bool(state["should_skip"]) and int(state["num_not_finite"]) == 1
    skip, state = skip_not_finite([jnp.array(11.0), jnp.zeros([])], step, None)
    assert not bool(skip) and not bool(state["should_skip"])
    assert int(state["num_not_finite"]) == 0


def test_skip_large_updates_compares_the_squared_norm():
    step = jnp.zeros([], jnp.int32)
    for value, skipped, norm_squared in [
        (jnp.inf, True, np.inf),
        (jnp.nan, True, np.nan),
        (11.0, True, 121.0),
        (0.0, False, 0.0),
    ]:
        skip, state = skip_large_updates([jnp.array(value), jnp.zeros([])], step, None, 100.0)
        assert bool(skip) == bool(state["should_skip"]) == skipped
        np.testing.assert_array_equal(state["norm_squared"], norm_squared)


def test_a_schedule_of_k_changes_the_window_length():
    multi = MultiSteps(optix.sgd(1e-4), lambda step: jnp.where(step < 2, 1, 3))
    init, update = multi.gradient_transformation()
    params = grads = {"a": jnp.zeros([])}
    state = init(params)
    assert not bool(multi.has_updated(state))
    emitted = []
    for _ in range(2 + 5 * 3):
        _, state = update(grads, state, params)
        emitted.append(bool(multi.has_updated(state)))
    assert emitted == [True, True] + [False, False, True] * 5


def test_the_accumulator_keeps_its_dtype_under_scan():
    multi = MultiSteps(optix.sgd(1e-4), 2, accumulator_dtype=jnp.float32)
    params = {"a": jnp.zeros([], jnp.bfloat16)}

    def step(state, _):
        updates, state = multi.update({"a": jnp.ones([], jnp.bfloat16)}, state, params)
        return state, updates

    final, updates = jax.lax.scan(step, multi.init(params), jnp.arange(4))
    assert final.acc_grads["a"].dtype == jnp.float32
    assert updates["a"].dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(updates["a"], np.float32), [0, -1e-4, 0, -1e-4], rtol=1e-2
    )


def test_multi_steps_around_zero_nans():
    multi = MultiSteps(optix.chain(optix.zero_nans(), optix.sgd(1e-4)), every_k_schedule=2)
    params = {"a": jnp.zeros([])}
    state = multi.init(params)
    reference = optax.MultiSteps(optax.chain(optax.zero_nans(), optax.sgd(1e-4)), 2)
    their_state = reference.init(params)
    for g in (1.0, 2.0, jnp.nan, 1.0):
        updates, state = multi.update({"a": jnp.asarray(g)}, state, params)
        with jax.numpy_dtype_promotion("standard"):
            expected, their_state = reference.update({"a": jnp.asarray(g)}, their_state, params)
        np.testing.assert_array_equal(updates["a"], expected["a"])
    # The window (1, 2) moves by its mean; zero_nans zeroes the NaN mean of (nan, 1).
    assert float(updates["a"]) == 0.0
    assert bool(state.inner_opt_state[0].found_nan["a"])


# Four of Optax's eighteen (mu_dtype, gradient dtype, parameter dtype) cases: every dtype
# on each side, mixed.
DTYPE_CASES = [
    (None, jnp.float32, jnp.float16),
    (None, jnp.float16, jnp.bfloat16),
    (None, jnp.bfloat16, jnp.float32),
    (jnp.float32, jnp.bfloat16, jnp.bfloat16),
]


@pytest.mark.parametrize(("mu_dtype", "grad_dtype", "param_dtype"), DTYPE_CASES)
def test_multi_steps_updates_have_the_inner_optimizers_dtypes(mu_dtype, grad_dtype, param_dtype):
    tx = optix.adam(0.1, mu_dtype=mu_dtype)
    multi = MultiSteps(tx, 4)

    @jax.jit
    def both(params, state, multi_state):
        grads = jax.tree.map(lambda p: (2 * p).astype(grad_dtype), params)
        updates, state = tx.update(grads, state, params)
        multi_updates, multi_state = multi.update(grads, multi_state, params)
        return updates, multi_updates, state, multi_state

    params = {"w": jnp.linspace(-1.0, 1.0, 6, dtype=param_dtype).reshape(2, 3)}
    state, multi_state = tx.init(params), multi.init(params)
    for _ in range(5):
        updates, multi_updates, state, multi_state = both(params, state, multi_state)
        assert updates["w"].dtype == multi_updates["w"].dtype
        new_params = optix.apply_updates(params, multi_updates)
        assert new_params["w"].dtype == param_dtype
        params = new_params
    assert bool(multi.has_updated(multi_state)) is False


def test_multi_steps_matches_optax_with_a_stateful_inner_that_needs_params(x64):
    def inner(m):
        return m.chain(m.scale_by_adam(), m.add_decayed_weights(1e-2), m.scale(-1e-4))

    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.ones(3)}  # float64
    wide = {"accumulator_dtype": jnp.float64}
    ours, theirs = MultiSteps(inner(optix), 4, **wide), optax.MultiSteps(inner(optax), 4, **wide)
    state, their_state = ours.init(params), theirs.init(params)
    for t in range(8):
        grads = jax.tree.map(lambda p, t=t: jnp.sin(p + t), params)
        updates, state = ours.update(grads, state, params)
        with jax.numpy_dtype_promotion("standard"):
            expected, their_state = theirs.update(grads, their_state, params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), updates, expected)
        moved = any(bool(jnp.any(u != 0)) for u in jax.tree.leaves(updates))
        assert moved == (t % 4 == 3) == bool(ours.has_updated(state))
        params = optix.apply_updates(params, updates)
