"""Shampoo against a NumPy transliteration of Distributed Shampoo and pytorch_optimizer.Shampoo."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pytorch_optimizer import Shampoo

import optix
from optix.optimizers.shampoo import scale_by_shampoo, shampoo
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    STEPS,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    learning_rates,
    torch_reference,
)
from tests.references import shampoo_reference
from tests.registry.preconditioned import F32_RTOL

F32 = F32_RTOL["shampoo"]

# (optix kwargs, reference kwargs). eps=1e-6 keeps the rank-deficient factors of the
# first steps well enough conditioned for float64 agreement to 1e-10 (with the default
# 1e-12, a 1e-16 perturbation of a factor moves the trajectory by 1e-4).
CASES = {
    "kronecker_adam_graft": (
        {
            "b1": 0.5,
            "b2": 0.9,
            "precondition_frequency": 3,
            "start_preconditioning_step": 4,
            "grafting": "adam",
            "weight_decay": 0.1,
            "target_order": 2,
        },
        {
            "betas": (0.5, 0.9),
            "precondition_frequency": 3,
            "start_preconditioning_step": 4,
            "grafting": "adam",
            "weight_decay": 0.1,
            "target_dimensionality": 2,
        },
    ),
    "blocked_rmsprop_graft_l2": (
        {
            "b1": 0.0,
            "max_preconditioner_dim": 2,
            "target_order": math.inf,
            "grafting": "rmsprop",
            "weight_decay": 0.1,
            "weight_decay_type": "l2",
        },
        {
            "betas": (0.0, 1.0),
            "max_preconditioner_dim": 2,
            "target_dimensionality": math.inf,
            "grafting": "rmsprop",
            "weight_decay": 0.1,
            "weight_decay_type": "l2",
        },
    ),
    "beta3_sgd_graft_late_start_exponent": (
        {
            "b3": 0.5,
            "grafting": "sgd",
            "start_preconditioning_step": 5,
            "b2": 0.95,
            "use_bias_correction": False,
            "target_order": 2,
            "inverse_exponent_override": 0.3,
        },
        {
            "beta3": 0.5,
            "grafting": "sgd",
            "start_preconditioning_step": 5,
            "betas": (0.9, 0.95),
            "use_bias_correction": False,
            "target_dimensionality": 2,
            "inverse_exponent": 0.3,
        },
    ),
}


def reference(ref_kwargs, grads=None):
    def run(dtype, schedule):
        del dtype  # the transliteration is float64
        lrs = learning_rates() if schedule else [CONSTANT_LR] * STEPS
        seq = gradient_sequence() if grads is None else grads
        return shampoo_reference.run(initial_params(), seq, lrs, epsilon=1e-6, **ref_kwargs)

    return run


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_distributed_shampoo_float64(case):
    kwargs, ref_kwargs = CASES[case]
    schedule = case == "kronecker_adam_graft"
    compare(
        lambda lr: shampoo(lr, eps=1e-6, **kwargs),
        reference(ref_kwargs),
        np.float64,
        schedule,
        F32,
        same_dtype_reference=False,
    )


def test_trajectory_matches_distributed_shampoo_float32():
    kwargs, ref_kwargs = CASES["kronecker_adam_graft"]
    compare(
        lambda lr: shampoo(lr, eps=1e-6, **kwargs),
        reference(ref_kwargs),
        np.float32,
        False,
        F32,
        same_dtype_reference=False,
    )


def test_default_layout_full_matrix_matches_reference():
    """The default target_order=1 merges w (3, 4) into one 12-vector: a 12x12 factor,
    rank-deficient for 11 steps. Without the x1000 step its trajectory is well conditioned."""
    grads = gradient_sequence()
    grads[9] = {k: v / 1e3 for k, v in grads[9].items()}
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), initial_params())
        tx = shampoo(CONSTANT_LR, eps=1e-6, weight_decay=0.01)
        state = tx.init(params)
        step = jax.jit(lambda p, s, g: _apply(tx, p, s, g))
        actual = []
        for g in grads:
            params, state = step(params, state, jax.tree.map(jnp.asarray, g))
            actual.append(jax.tree.map(np.asarray, params))
        assert state[0].factors["w"][0][0].shape == (12, 12)
    expected = reference({"weight_decay": 0.01}, grads)(np.float64, False)
    assert_trajectories_close(actual, expected, 1e-10)


def _apply(tx, params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optix.apply_updates(params, updates), state


@DTYPES
def test_trajectory_matches_pytorch_optimizer_shampoo(dtype):
    """pytorch_optimizer's Shampoo is the paper's: b1=0, b2=1, no merging or blocking,
    inverse roots every step (its first root is computed before the first update)."""
    kwargs = {
        "b1": 0.0,
        "b2": 1.0,
        "eps": 1e-4,
        "weight_decay": 0.1,
        "weight_decay_type": "l2",
        "max_preconditioner_dim": math.inf,
        "target_order": math.inf,
    }
    compare(
        lambda lr: shampoo(lr, **kwargs),
        torch_reference(
            lambda params, lr: Shampoo(params, lr=lr, matrix_eps=1e-4, weight_decay=0.1)
        ),
        dtype,
        True,
        F32,
    )


def test_state_layout_blocks_and_identity_roots():
    tx = scale_by_shampoo(max_preconditioner_dim=4, target_order=math.inf)
    state = tx.init({"w": jnp.zeros((5, 6)), "s": jnp.zeros(())})
    blocks = state.inverse_roots["w"]
    assert [tuple(m.shape for m in b) for b in blocks] == [
        ((4, 4), (4, 4)),
        ((4, 4), (2, 2)),
        ((1, 1), (4, 4)),
        ((1, 1), (2, 2)),
    ]
    np.testing.assert_array_equal(blocks[1][1], np.eye(2))
    assert state.factors["s"] == [[]]
    updates, _ = jax.jit(tx.update)({"w": jnp.ones((5, 6)), "s": jnp.ones(())}, state)
    assert updates["w"].shape == (5, 6)


def test_roots_are_recomputed_only_every_precondition_frequency():
    tx = scale_by_shampoo(b1=0.0, precondition_frequency=3)
    params = {"w": jnp.zeros((2, 3))}
    state = tx.init(params)
    g = {"w": jnp.arange(6.0).reshape(2, 3) + 1}
    update = jax.jit(tx.update)
    for _ in range(2):
        _, state = update(g, state)
    np.testing.assert_array_equal(state.inverse_roots["w"][0][0], np.eye(6))
    _, state = update(g, state)
    assert not np.allclose(state.inverse_roots["w"][0][0], np.eye(6))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: shampoo(0.1, b1=1.0), ValueError, "shampoo: b1 must be in [0, 1), got b1=1.0"),
        (lambda: shampoo(0.1, eps=0.0), ValueError, "scale_by_shampoo: eps must be > 0"),
        (
            lambda: shampoo(0.1, precondition_frequency=5, start_preconditioning_step=2),
            ValueError,
            "start_preconditioning_step must be >= 5",
        ),
        (lambda: scale_by_shampoo(max_preconditioner_dim=2.5), TypeError, "must be an int"),
        (lambda: scale_by_shampoo(grafting="lion"), ValueError, "grafting must be one of"),
        (lambda: shampoo(0.1, weight_decay_type="l1"), ValueError, "weight_decay_type"),
        (lambda: shampoo("0.1"), TypeError, "shampoo: learning_rate must be"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
