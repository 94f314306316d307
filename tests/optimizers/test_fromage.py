"""Fromage against optax.fromage and pytorch_optimizer.Fromage (the official update)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import Fromage

from optix.optimizers.fromage import fromage
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry.large_batch_sign import F32_RTOL

F32 = F32_RTOL["fromage"]


@SCHEDULES
@DTYPES
def test_trajectory_matches_pytorch_optimizer(dtype, schedule):
    compare(
        fromage,
        torch_reference(lambda params, lr: Fromage(params, lr=lr)),
        dtype,
        schedule,
        F32,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("min_norm", [1e-6, 0.5])
def test_trajectory_matches_optax(min_norm, dtype, schedule):
    compare(
        lambda lr: fromage(lr, min_norm=min_norm),
        optax_reference(lambda lr: optax.fromage(lr, min_norm=min_norm)),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


def test_one_step_is_the_relative_step_then_the_shrink(x64):
    lr = 0.3
    p = jnp.asarray([3.0, 4.0])
    g = jnp.asarray([0.0, 2.0])
    tx = fromage(lr)
    updates, _ = tx.update(g, tx.init(p), p)
    expected = (np.array([3.0, 4.0]) - lr * 5.0 * np.array([0.0, 1.0])) / np.sqrt(1 + lr**2)
    np.testing.assert_allclose(p + updates, expected, rtol=1e-14)


def test_a_zero_gradient_only_shrinks():
    p = jnp.asarray([1.0, -2.0])
    tx = fromage(0.5)
    updates, _ = tx.update(jnp.zeros(2), tx.init(p), p)
    np.testing.assert_allclose(p + updates, np.array([1.0, -2.0]) / np.sqrt(1.25), rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fromage(float("nan")), "fromage: learning_rate must be finite"),
        (lambda: fromage(0.1, min_norm=-1.0), "fromage: min_norm must be finite and >= 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
