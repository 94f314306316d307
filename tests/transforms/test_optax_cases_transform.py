"""Optax's own cases for single transformations (optax/_src/transform_test.py and
optax/_src/factorized_test.py), run on optix with the numbers Optax asserts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix

INIT = (jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
GRADS = (jnp.array([500.0, 5.0]), jnp.array([300.0, 3.0]))

SCALERS = {
    "adadelta": optix.scale_by_adadelta,
    "adam": optix.scale_by_adam,
    "adamax": optix.scale_by_adamax,
    "adan": optix.scale_by_adan,
    "lion": optix.scale_by_lion,
    "polyak": optix.scale_by_polyak,
    "rmsprop": optix.scale_by_rms,
    "stddev": optix.scale_by_stddev,
    "trust_ratio": optix.scale_by_trust_ratio,
    "param_block_norm": optix.scale_by_param_block_norm,
    "param_block_rms": optix.scale_by_param_block_rms,
    "distance_over_gradients": optix.scale_by_distance_over_gradients,
    "normalize_by_update_norm": optix.normalize_by_update_norm,
}


def test_every_scaler_with_default_arguments_gives_finite_updates_of_the_params_shapes():
    @jax.jit
    def first_updates(params, grads):
        out = {}
        for name, build in SCALERS.items():
            tx = build()
            extra = {"value": jnp.array(0.0)} if name == "polyak" else {}
            state = tx.init(params)
            out[name] = (state, *tx.update(grads, state, params, **extra))
        return out

    for name, (state, updates, new_state) in first_updates(INIT, GRADS).items():
        finite = jax.tree.leaves((state, updates, new_state))
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in finite), name
        assert [u.shape for u in updates] == [(2,), (2,)], name


def test_scale_multiplies_every_leaf():
    for i in range(1, 51):
        factor = 0.1**i
        scaled, _ = optix.scale(factor).update(GRADS, optix.EmptyState())
        for out, g in zip(scaled, GRADS, strict=True):
            np.testing.assert_allclose(out, g * factor, rtol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ([1.0, 2.0], [1.0, 2.0]),
        ([[1.0, 2.0], [3.0, 4.0]], [[-0.5, 0.5], [-0.5, 0.5]]),
        (
            [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]],
            [[[-1.5, -0.5], [0.5, 1.5]], [[-1.5, -0.5], [0.5, 1.5]]],
        ),
    ],
    ids=["1d", "2d", "3d"],
)
def test_centralize_removes_the_mean_over_all_axes_but_the_first(inputs, outputs):
    centralized, _ = optix.centralize().update(jnp.asarray(inputs), optix.EmptyState())
    np.testing.assert_allclose(centralized, outputs, rtol=1e-6)


def test_optimistic_gradient_starts_from_the_first_gradient():
    tx = optix.scale_by_optimistic_gradient()
    state = tx.init(jnp.asarray(10.0))
    outputs = []
    for g in (2.0, 3.0, 4.0):
        out, state = tx.update(jnp.asarray(g), state)
        outputs.append(float(out))
    # 2 g_t - g_{t-1}, with g_{-1} = g_0 (Optax issue 1082).
    assert outputs == [2.0, 2 * 3.0 - 2.0, 2 * 4.0 - 3.0]


@pytest.mark.parametrize("mode", ["hard", "smooth", "refined"])
def test_lion_modes(mode):
    updates = jnp.array([0.2, -2.0, 0.5, -0.8])
    tx = optix.scale_by_lion(b1=0.5, b2=0.9, mode=mode, smooth_beta=2.0)
    state = tx.init(updates)
    out, _ = tx.update(updates, state)
    x = 0.5 * updates + 0.5 * state.mu
    expected = {
        "hard": jnp.sign(x),
        "smooth": jnp.tanh(2.0 * x),
        "refined": jnp.where(jnp.abs(x) < 1.0, x, jnp.sign(x)),
    }[mode]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    theirs = optax.scale_by_lion(b1=0.5, b2=0.9, mode=mode, smooth_beta=2.0)
    np.testing.assert_allclose(out, theirs.update(updates, theirs.init(updates))[0], rtol=1e-6)


def test_lion_refuses_an_unknown_mode():
    # Optax raises at the first update; optix already when the transformation is built.
    with pytest.raises(ValueError, match="mode"):
        optix.scale_by_lion(mode="invalid_mode")


def test_polyak_step_solves_the_l1_norm_in_one_step():
    objective = lambda x: jnp.abs(x).sum()
    params = jnp.array([1.0, -1.0])
    tx = optix.scale_by_polyak()
    state = tx.init(params)
    # Optax's update lacks the keyword (a TypeError); optix says what to pass.
    with pytest.raises(ValueError, match="needs the current loss value"):
        tx.update(GRADS, state, params)
    value, grad = jax.value_and_grad(objective)(params)
    updates, _ = tx.update(grad, state, params, value=value)
    assert float(objective(params - updates)) < 1e-10


def test_rms_with_bias_correction_and_eps_outside_is_adam_without_momentum():
    fun = lambda x: optix.tree.norm(x, squared=True)
    rms = optix.scale_by_rms(decay=0.999, eps_in_sqrt=False, bias_correction=True)
    adam = optix.scale_by_adam(b1=0.0)
    results = []
    for tx in (rms, adam):
        params, state = INIT, tx.init(INIT)
        for _ in range(5):
            updates, state = tx.update(jax.grad(fun)(params), state)
            params = optix.apply_updates(params, updates)
        results.append(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), *results)
    assert not np.allclose(results[0][0], INIT[0])


# factorized_test.py

FACTORED_PARAMS = {
    "factored": lambda dtype: jnp.ones((129, 129), dtype),  # above min_dim_size_to_factor
    "vector": lambda dtype: jnp.array([1.0, 2.0], dtype),
}


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32], ids=["bf16", "f32"])
@pytest.mark.parametrize("shape", sorted(FACTORED_PARAMS))
def test_factored_rms_finite_keeps_the_dtype_and_accumulates_to_zero(shape, dtype):
    tx = optix.scale_by_factored_rms()
    multi = optix.MultiSteps(tx, every_k_schedule=4)

    @jax.jit
    def first_updates(params):
        grads = jax.grad(lambda x: jnp.sum(x**2))(params)
        state = tx.init(params)
        updates, new_state = tx.update(grads, state, params)
        accumulated, _ = multi.update(grads, multi.init(params), params)
        return state, updates, new_state, accumulated

    params = FACTORED_PARAMS[shape](dtype)
    state, updates, new_state, accumulated = first_updates(params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((state, new_state)))
    assert updates.dtype == dtype and updates.shape == params.shape
    assert bool(jnp.all(jnp.isfinite(updates))) and bool(jnp.any(updates != 0))
    assert accumulated.dtype == dtype
    np.testing.assert_array_equal(accumulated, jnp.zeros_like(params))
