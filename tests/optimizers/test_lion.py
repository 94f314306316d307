"""Lion against optax.lion, optax.scale_by_lion and pytorch_optimizer.Lion (official update)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import Lion

from optix.optimizers.lion import lion, scale_by_lion
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry.large_batch_sign import F32_RTOL

F32 = F32_RTOL["lion"]

CASES = [
    ({}, {}),
    ({"weight_decay": 0.5}, {"weight_decay": 0.5}),
    ({"b1": 0.5, "b2": 0.9, "weight_decay": 0.0}, {"betas": (0.5, 0.9), "weight_decay": 0.0}),
]
IDS = ["default", "wd", "betas"]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "torch_kwargs"), CASES, ids=IDS)
def test_trajectory_matches_pytorch_optimizer_lion(kwargs, torch_kwargs, dtype, schedule):
    torch_kwargs = {"weight_decay": 1e-3, **torch_kwargs}
    compare(
        lambda lr: lion(lr, **kwargs),
        torch_reference(lambda params, lr: Lion(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        F32,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "torch_kwargs"), CASES, ids=IDS)
def test_trajectory_matches_optax_lion(kwargs, torch_kwargs, dtype, schedule):
    del torch_kwargs
    compare(
        lambda lr: lion(lr, **kwargs),
        optax_reference(lambda lr: optax.lion(lr, **kwargs)),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


@DTYPES
@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "smooth", "smooth_beta": 3.0}, {"mode": "refined"}, {"mode": "hard", "b1": 0.0}],
    ids=["smooth", "refined", "hard_b1_0"],
)
def test_sign_variants_match_optax(kwargs, dtype):
    compare(
        lambda lr: lion(lr, weight_decay=0.0, **kwargs),
        optax_reference(lambda lr: optax.chain(optax.scale_by_lion(**kwargs), optax.scale(-lr))),
        dtype,
        False,
        F32,
        same_dtype_reference=False,
    )


def test_update_uses_the_momentum_from_before_the_step():
    """In "refined" mode |c| < 1 passes through, which shows c itself."""
    tx = scale_by_lion(b1=0.9, b2=0.5, mode="refined")
    state = tx.init(jnp.zeros(1))
    updates, state = tx.update(jnp.asarray([1.0]), state)
    np.testing.assert_allclose(updates, [0.1], rtol=1e-6)  # c = (1 - b1) * g
    np.testing.assert_allclose(state.mu, [0.5], rtol=1e-6)  # m = (1 - b2) * g
    updates, state = tx.update(jnp.asarray([0.0]), state)
    np.testing.assert_allclose(updates, [0.45], rtol=1e-6)  # b1 * old m, not b1 * 0.25
    np.testing.assert_allclose(state.mu, [0.25], rtol=1e-6)
    assert state.count == 2


def test_mu_dtype_is_kept():
    tx = lion(0.1, mu_dtype=jnp.bfloat16)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    _, state = tx.update({"w": jnp.ones(3)}, state, params)
    assert state[0].mu["w"].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lion(float("nan")), "lion: learning_rate must be finite"),
        (lambda: lion(0.1, b1=1.5), "lion: b1 must be in [0, 1], got b1=1.5"),
        (lambda: lion(0.1, weight_decay=-1.0), "lion: weight_decay must be finite and >= 0"),
        (lambda: scale_by_lion(mode="soft"), "scale_by_lion: mode must be one of"),
        (lambda: scale_by_lion(smooth_beta=0.0), "scale_by_lion: smooth_beta must be > 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
