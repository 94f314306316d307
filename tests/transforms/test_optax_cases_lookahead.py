"""Optax's own lookahead cases (optax/_src/lookahead_test.py), run on optix: an analytically
tractable fast optimizer, the fast-state reset, and the edge cases users disable lookahead
with (sync period 1, slow step size 0 or 1)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.transforms.lookahead import LookaheadParams, lookahead

GRADS = {"x": np.array(2.0), "y": np.array(-2.0)}
START = {"x": np.array(3.0), "y": np.array(-3.0)}


class FastState(NamedTuple):
    aggregate_grads: Any
    is_reset: Any = True  # starts non-zero, so a reset is visible


def fast_optimizer(step_size):
    """SGD with a state that sums the gradients and remembers whether it was reset."""

    def init(params):
        return FastState(jax.tree.map(jnp.zeros_like, params), is_reset=True)

    def update(updates, state, params):
        assert jax.tree.map(jnp.shape, updates) == jax.tree.map(jnp.shape, params)
        aggregate = optix.apply_updates(state.aggregate_grads, updates)
        return jax.tree.map(lambda u: step_size * u, updates), FastState(aggregate, False)

    return optix.GradientTransformation(init, update)


def loop(tx, steps, params):
    step = jax.jit(tx.update)
    state = jax.jit(tx.init)(params)
    state = optix.tree.map_params(tx.init, lambda v: v, state)  # a no-op map must work
    for _ in range(steps):
        updates, state = step(GRADS, state, params)
        params = optix.apply_updates(params, updates)
    return params, state


def test_fast_and_slow_weights_follow_the_analytic_path():
    tx = lookahead(fast_optimizer(-0.5), sync_period=3, slow_step_size=1 / 3)
    final, _ = loop(tx, 6, LookaheadParams.init_synced(START))
    # x: 3 -> 2 -> 1 -> 2 (sync) -> 1 -> 0 -> 1 (sync); y mirrors it.
    np.testing.assert_allclose(final.slow["x"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(final.slow["y"], -1.0, rtol=1e-6)


@pytest.mark.parametrize("reset_state", [False, True])
def test_reset_state_gives_the_fast_optimizer_a_fresh_state_at_each_sync(reset_state):
    fast = fast_optimizer(-0.5)
    tx = lookahead(fast, sync_period=3, slow_step_size=0.5, reset_state=reset_state)
    _, state = loop(tx, 3, LookaheadParams.init_synced(START))
    state = optix.tree.map_params(tx, lambda v: v, state)
    expected = fast.init(START) if reset_state else loop(fast, 3, START)[1]
    assert bool(state.fast_state.is_reset) == reset_state
    jax.tree.map(np.testing.assert_array_equal, state.fast_state, expected)


@pytest.mark.parametrize(
    ("sync_period", "slow_step_size", "expected"),
    [(1, 0.5, 1.0), (1, 0.0, 3.0), (1, 1.0, -1.0), (2, 1.0, -1.0)],
)
def test_edge_cases_users_disable_lookahead_with(sync_period, slow_step_size, expected):
    tx = lookahead(fast_optimizer(-1.0), sync_period, slow_step_size)
    final, _ = loop(tx, 2, LookaheadParams.init_synced(START))
    np.testing.assert_allclose(final.slow["x"], expected, rtol=1e-6)
    np.testing.assert_allclose(final.slow["y"], -expected, rtol=1e-6)
