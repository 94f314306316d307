"""Optax's own cases for adding, constraining and layouts (optax/transforms/
{_adding,_constraining,_layouts}_test.py), run on optix with the numbers Optax asserts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.transforms.constraints import ZeroNansState

INIT = (jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))


def test_add_decayed_weights_with_a_tree_mask():
    tx = optix.add_decayed_weights(0.1, mask=(True, {"a": True, "b": False}))
    zeros = (jnp.zeros(2), {"a": jnp.zeros(2), "b": jnp.zeros(2)})
    weights = jax.tree.map(jnp.ones_like, zeros)
    updates, _ = jax.jit(tx.update)(zeros, tx.init(weights), weights)
    np.testing.assert_allclose(updates[0], [0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(updates[1]["a"], [0.1, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(updates[1]["b"], [0.0, 0.0])


def test_add_decayed_weights_passes_no_updates_through():
    weights = (jnp.ones(2), {"a": jnp.ones(2), "b": jnp.ones(2)})
    for rate in (0.1, lambda count: 0.1):
        tx = optix.add_decayed_weights(rate, mask=None)
        updates, _ = tx.update(None, tx.init(weights), weights)
        assert updates is None


def test_add_noise_variance_decays_as_eta_over_t_to_the_gamma():
    noise = optix.add_noise(0.3, 0.55, 314)
    unit = optix.add_noise(1.0, 0.0, 314)
    zeros = jax.tree.map(jnp.zeros_like, INIT)
    update = jax.jit(noise.update)
    state, unit_state = noise.init(INIT), unit.init(INIT)
    for i in range(1, 51):
        out, state = update(zeros, state)
        unit_out, unit_state = unit.update(zeros, unit_state)
        scale = np.sqrt(0.3 / i**0.55)
        for a, b in zip(out, unit_out, strict=True):
            np.testing.assert_allclose(a, b * scale, rtol=1e-4)


GRADS = tuple(jnp.array([500.0, -500.0, 0.0]) for _ in range(3))
PARAMS = (jnp.full(3, -1.0), jnp.ones(3), jnp.zeros(3))


@pytest.mark.parametrize(
    ("nonnegative", "expected"),
    [
        (False, ([-6.0, 4.0, -1.0], [-4.0, 6.0, 1.0], [-5.0, 5.0, 0.0])),
        (True, ([0.0, 4.0, 0.0], [0.0, 6.0, 1.0], [0.0, 5.0, 0.0])),
    ],
)
def test_keep_params_nonnegative_after_sgd(nonnegative, expected):
    members = [optix.trace(decay=0, nesterov=False), optix.scale(-1e-2)]
    tx = optix.chain(*members, *([optix.keep_params_nonnegative()] if nonnegative else []))
    updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    for got, want in zip(optix.apply_updates(PARAMS, updates), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_keep_params_nonnegative_needs_params():
    tx = optix.keep_params_nonnegative()
    with pytest.raises(ValueError):
        tx.update(jnp.array([1.0, 2.0, 3.0]), tx.init(jnp.array([1.0, 2.0, 3.0])), None)


def test_zero_nans_zeroes_nans_only_and_flags_each_leaf():
    tx = optix.zero_nans()
    update = jax.jit(tx.update)
    state = jax.jit(tx.init)((jnp.zeros(3),) * 3)
    assert isinstance(state, ZeroNansState)
    assert [bool(x) for x in state.found_nan] == [False] * 3
    nan, inf = float("nan"), float("inf")
    steps = [
        (
            (jnp.ones(3), jnp.array([1.0, nan, nan]), jnp.array([nan, 1.0, 1.0])),
            ([1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]),
            [False, True, True],
        ),
        (
            (jnp.ones(3), jnp.array([1.0, nan, nan]), jnp.array([inf, 1.0, 1.0])),
            ([1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [inf, 1.0, 1.0]),
            [False, True, False],
        ),
        ((jnp.ones(3),) * 3, ([1.0] * 3,) * 3, [False, False, False]),
    ]
    for grads, expected, flags in steps:
        updates, state = update(grads, state)
        for got, want in zip(updates, expected, strict=True):
            np.testing.assert_array_equal(got, want)
        assert [bool(x) for x in state.found_nan] == flags


def test_flatten_gives_the_numbers_of_the_plain_optimizer():
    params = (jnp.array(2.0), jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
    grads = (jnp.array(1.0), jnp.array([500.0, 5.0]), jnp.array([300.0, 3.0]))
    results = []
    for tx in (optix.sgd(1e-2, 0.0), optix.flatten(optix.sgd(1e-2, 0.0))):
        updates, _ = tx.update(grads, tx.init(params), params)
        results.append(optix.apply_updates(params, updates))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-7), *results)
    np.testing.assert_allclose(results[1][1], [-4.0, 1.95], rtol=1e-6)
