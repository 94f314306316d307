"""Rprop against torch.optim.Rprop, and against Optax's (lagged) scale_by_rprop state."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optix.optimizers.rprop import rprop, scale_by_rprop
from tests.reference import DTYPES, compare, gradient_sequence, initial_params, torch_reference
from tests.registry import ENTRIES

F32_RTOL = ENTRIES["rprop"].f32_rtol

# (optix.rprop keywords, torch.optim.Rprop keywords); torch reads lr only at the start,
# so every case runs with a constant learning rate.
CASES = {
    "default": ({}, {}),
    "etas": ({"eta_minus": 0.3, "eta_plus": 1.5}, {"etas": (0.3, 1.5)}),
    "step_bounds": (
        {"min_step_size": 0.01, "max_step_size": 0.08},
        {"step_sizes": (0.01, 0.08)},
    ),
    "lr_above_max": ({"max_step_size": 0.02}, {"step_sizes": (1e-6, 0.02)}),
}


@DTYPES
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, dtype):
    ours, theirs = CASES[case]
    compare(
        lambda lr: rprop(lr, **ours),
        torch_reference(lambda params, lr: torch.optim.Rprop(params, lr=lr, **theirs)),
        dtype,
        False,
        F32_RTOL,
    )


def run_transform(tx, steps=12, standard=False):
    """Outputs and states of ``tx`` over the gradients of tests/reference.py."""
    with jax.numpy_dtype_promotion("standard" if standard else "strict"):
        params = jax.tree.map(jnp.asarray, initial_params())
        state, outputs, states = tx.init(params), [], []
        for g in gradient_sequence(steps):
            u, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
            outputs.append(u)
            states.append(state)
        return outputs, states


def test_state_equals_optax_and_optax_output_lags_one_step(x64):
    """Optax keeps the same state but returns the previous step (zeroed on sign changes)."""
    ours, our_states = run_transform(scale_by_rprop(0.05))
    theirs, their_states = run_transform(optax.scale_by_rprop(0.05), standard=True)
    for a, b in zip(our_states, their_states, strict=True):
        assert a._fields == b._fields == ("step_sizes", "prev_updates")
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)
    assert not any(np.any(x) for x in jax.tree.leaves(theirs[0]))
    lagged = 0
    for k in range(1, len(ours)):
        for name in ours[k]:
            keep = np.asarray(theirs[k][name]) != 0
            np.testing.assert_array_equal(
                np.asarray(theirs[k][name])[keep], np.asarray(ours[k - 1][name])[keep]
            )
            lagged += int(np.sum(np.asarray(ours[k][name]) != np.asarray(theirs[k][name])))
    assert lagged > 50


def test_first_step_moves_by_the_learning_rate(x64):
    tx = rprop(0.3)
    params = {"w": jnp.asarray([1.0, 2.0, 3.0])}
    updates, _ = tx.update({"w": jnp.asarray([2.0, -1e-9, 0.0])}, tx.init(params), params)
    np.testing.assert_array_equal(updates["w"], [-0.3, 0.3, 0.0])


def test_sign_change_holds_the_coordinate_and_skips_the_next_comparison(x64):
    tx = rprop(0.1)
    params = {"w": jnp.asarray([0.0])}
    state, steps = tx.init(params), []
    for g in [1.0, 1.0, -1.0, -1.0, -1.0]:
        u, state = tx.update({"w": jnp.asarray([g])}, state, params)
        steps.append(float(u["w"][0]))
    np.testing.assert_allclose(steps, [-0.1, -0.12, 0.0, 0.06, 0.072], rtol=1e-14)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: rprop(lambda c: 0.1), TypeError, "rprop: learning_rate is the initial step"),
        (lambda: rprop(-0.1), ValueError, "rprop: learning_rate must be finite and >= 0"),
        (
            lambda: rprop(0.1, eta_minus=1.0),
            ValueError,
            "rprop: eta_minus must be in (0, 1), got eta_minus=1.0",
        ),
        (
            lambda: rprop(0.1, eta_plus=1.0),
            ValueError,
            "rprop: eta_plus must be in (1, inf], got eta_plus=1.0",
        ),
        (
            lambda: rprop(0.1, min_step_size=2.0, max_step_size=1.0),
            ValueError,
            "rprop: min_step_size must be <= max_step_size, got min_step_size=2.0",
        ),
        (
            lambda: scale_by_rprop(0.1, min_step_size=-1.0),
            ValueError,
            "scale_by_rprop: min_step_size must be finite and >= 0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
