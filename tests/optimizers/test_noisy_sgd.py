"""Noisy SGD against optax.noisy_sgd with the same key: identical trajectories per dtype.

The noise is drawn in the parameters' dtype, so a float32 run draws other numbers than
a float64 run; each dtype is compared with Optax in the same dtype.
"""

import jax
import numpy as np
import optax
import pytest

from optix.optimizers.noisy_sgd import noisy_sgd
from tests.reference import CONSTANT_LR, lr_schedule, max_relative_difference, run_jax
from tests.registry.large_batch_sign import F32_RTOL

CASES = [{"key": 0}, {"key": 3, "eta": 0.5, "gamma": 0.3}]


@pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "lr_every_step"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kwargs", CASES, ids=["default", "eta_gamma"])
def test_trajectory_matches_optax_with_the_same_key(kwargs, dtype, schedule):
    lr = lr_schedule if schedule else CONSTANT_LR
    with jax.enable_x64(dtype == np.float64):
        ours = run_jax(noisy_sgd(lr, **kwargs), dtype)
        with jax.numpy_dtype_promotion("standard"):
            theirs = run_jax(
                optax.noisy_sgd(lr, **kwargs), dtype, apply_updates=optax.apply_updates
            )
        without_noise = run_jax(noisy_sgd(lr, eta=0.0, key=0), dtype)
    rtol = 1e-10 if dtype == np.float64 else F32_RTOL["noisy_sgd"]
    assert max_relative_difference(ours, theirs) <= rtol
    assert max_relative_difference(ours, without_noise) > 1e-3


def test_different_keys_give_different_noise():
    a = run_jax(noisy_sgd(0.05, key=0), np.float32)
    b = run_jax(noisy_sgd(0.05, key=1), np.float32)
    assert max_relative_difference(a, b) > 1e-3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: noisy_sgd(float("nan")), "noisy_sgd: learning_rate must be finite"),
        (lambda: noisy_sgd(0.1, eta=-1.0), "noisy_sgd: eta must be finite and >= 0"),
        (lambda: noisy_sgd(0.1, gamma=-1.0), "noisy_sgd: gamma must be finite and >= 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
