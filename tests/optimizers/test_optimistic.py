"""Optimistic GD and optimistic Adam against optax.optimistic_gradient_descent,
optax.optimistic_adam_v2 and optax.scale_by_optimistic_gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.optimistic import (
    optimistic_adam_v2,
    optimistic_gradient_descent,
    scale_by_optimistic_gradient,
)
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference
from tests.registry.large_batch_sign import F32_RTOL

OGD_CASES = [{}, {"alpha": 0.5, "beta": 2.0}, {"alpha": 1.0, "beta": 0.0}]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OGD_CASES, ids=["default", "alpha_beta", "beta_0"])
def test_optimistic_gradient_descent_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: optimistic_gradient_descent(lr, **kwargs),
        optax_reference(lambda lr: optax.optimistic_gradient_descent(lr, **kwargs)),
        dtype,
        schedule,
        F32_RTOL["optimistic_gradient_descent"],
        same_dtype_reference=False,
    )


ADAM_CASES = [{}, {"alpha": 0.5, "beta": 2.0, "nesterov": False, "b1": 0.8, "eps": 1e-3}]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=["default", "options"])
def test_optimistic_adam_v2_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: optimistic_adam_v2(lr, **kwargs),
        optax_reference(lambda lr: optax.optimistic_adam_v2(lr, **kwargs)),
        dtype,
        schedule,
        F32_RTOL["optimistic_adam_v2"],
        same_dtype_reference=False,
    )


def test_first_step_uses_the_gradient_as_its_own_predecessor():
    tx = scale_by_optimistic_gradient(alpha=1.0, beta=2.0)
    state = tx.init({"w": jnp.zeros(2)})
    assert bool(state.is_initial_step)
    u1, state = tx.update({"w": jnp.asarray([1.0, -1.0])}, state)
    np.testing.assert_allclose(u1["w"], [1.0, -1.0])  # (1 + 2) g - 2 g
    u2, state = tx.update({"w": jnp.asarray([0.0, 3.0])}, state)
    np.testing.assert_allclose(u2["w"], [-2.0, 11.0])  # 3 g2 - 2 g1
    assert not bool(state.is_initial_step)
    np.testing.assert_allclose(state.previous_gradient["w"], [0.0, 3.0])


def test_state_fields_match_optax():
    params = {"w": jnp.zeros(3)}
    ours = scale_by_optimistic_gradient().init(params)
    theirs = optax.scale_by_optimistic_gradient().init(params)
    assert type(ours).__name__ == type(theirs).__name__ and ours._fields == theirs._fields
    assert [x.dtype for x in jax.tree.leaves(ours)] == [x.dtype for x in jax.tree.leaves(theirs)]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: optimistic_gradient_descent(float("nan")),
            ValueError,
            "optimistic_gradient_descent: learning_rate must be finite",
        ),
        (
            lambda: optimistic_gradient_descent(0.1, beta=-1.0),
            ValueError,
            "optimistic_gradient_descent: beta must be finite and >= 0, got beta=-1.0",
        ),
        (
            lambda: optimistic_adam_v2(0.1, b1=1.0),
            ValueError,
            "optimistic_adam_v2: b1 must be in (-1, 1), got b1=1.0",
        ),
        (
            lambda: scale_by_optimistic_gradient(alpha=lambda count: 1.0),
            TypeError,
            "scale_by_optimistic_gradient: alpha and beta must be numbers",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
