"""signSGD and Signum against optax.sign_sgd / optax.signum and pytorch_optimizer.SignSGD."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import SignSGD

from optix.optimizers.sign import scale_by_sign, sign_sgd, signum
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry.large_batch_sign import F32_RTOL


@SCHEDULES
@DTYPES
def test_sign_sgd_matches_pytorch_optimizer(dtype, schedule):
    compare(
        sign_sgd,
        torch_reference(lambda params, lr: SignSGD(params, lr=lr, momentum=0.0)),
        dtype,
        schedule,
        F32_RTOL["sign_sgd"],
    )


@SCHEDULES
@DTYPES
def test_sign_sgd_matches_optax(dtype, schedule):
    compare(
        sign_sgd,
        optax_reference(optax.sign_sgd),
        dtype,
        schedule,
        F32_RTOL["sign_sgd"],
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_signum_matches_pytorch_optimizer(beta, dtype, schedule):
    compare(
        lambda lr: signum(lr, beta=beta),
        torch_reference(lambda params, lr: SignSGD(params, lr=lr, momentum=beta)),
        dtype,
        schedule,
        F32_RTOL["signum"],
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_signum_matches_optax(beta, dtype, schedule):
    compare(
        lambda lr: signum(lr, beta=beta),
        optax_reference(lambda lr: optax.signum(lr, beta=beta)),
        dtype,
        schedule,
        F32_RTOL["signum"],
        same_dtype_reference=False,
    )


def test_scale_by_sign_values_and_dtypes():
    tx = scale_by_sign()
    updates = {"a": jnp.asarray([-2.0, 0.0, 3.0], jnp.bfloat16), "b": None}
    out, _ = tx.update(updates, tx.init(updates))
    np.testing.assert_array_equal(np.asarray(out["a"], np.float32), [-1.0, 0.0, 1.0])
    assert out["a"].dtype == jnp.bfloat16 and out["b"] is None


def test_signum_keeps_the_accumulator_dtype():
    params = {"w": jnp.ones(3)}
    tx = signum(0.1, accumulator_dtype=jnp.bfloat16)
    state = tx.init(params)
    _, state = tx.update({"w": jnp.full(3, 0.3)}, state, params)
    assert state[0].ema["w"].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sign_sgd(float("nan")), "sign_sgd: learning_rate must be finite"),
        (lambda: signum(0.1, beta=1.5), "signum: beta must be in (-1, 1], got beta=1.5"),
        (lambda: signum(float("nan")), "signum: learning_rate must be finite"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
