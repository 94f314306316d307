"""LARS against optax.lars and MoCo v3 / MAE's LARS (NumPy transliteration of util/lars.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.lars import lars
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare,
    lr_schedule,
    max_relative_difference,
    optax_reference,
    run_jax,
)
from tests.references.lars import run_mae_lars
from tests.registry.large_batch_sign import F32_RTOL

F32 = F32_RTOL["lars"]


def matrices(params):
    return jax.tree.map(lambda p: p.ndim > 1, params)


OPTAX_CASES = [
    {},
    {"weight_decay": 0.1, "trust_coefficient": 0.1},
    {"weight_decay": 0.1, "trust_coefficient": 0.1, "eps": 0.5, "nesterov": True},
    {
        "trust_coefficient": 0.1,
        "momentum": 0.5,
        "trust_ratio_mask": {"w": True, "b": False, "s": True},
    },
    {"weight_decay": 0.1, "weight_decay_mask": matrices, "trust_ratio_mask": matrices},
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    "kwargs", OPTAX_CASES, ids=["default", "wd", "eps_nesterov", "mask_tree", "mask_fn"]
)
def test_trajectory_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: lars(lr, **kwargs),
        optax_reference(lambda lr: optax.lars(lr, **kwargs)),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


MAE_CASES = [{}, {"weight_decay": 0.1, "trust_coefficient": 0.1}, {"momentum": 0.5}]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", MAE_CASES, ids=["default", "wd", "momentum"])
def test_mae_convention_matches_mae_lars(kwargs, dtype, schedule):
    compare(
        lambda lr: lars(
            lr,
            **kwargs,
            weight_decay_mask=matrices,
            trust_ratio_mask=matrices,
            lr_inside_buffer=False,
        ),
        lambda dt, sched: run_mae_lars(sched, **kwargs),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


def test_the_default_convention_differs_from_mae_under_a_changing_learning_rate(x64):
    kwargs = {"weight_decay": 0.1, "weight_decay_mask": matrices, "trust_ratio_mask": matrices}
    mae = run_mae_lars(True, weight_decay=0.1)
    optax_form = run_jax(lars(lr_schedule, **kwargs), np.float64)
    assert max_relative_difference(optax_form, mae) > 1e-4


def test_zero_parameters_keep_a_trust_ratio_of_one():
    params = {"w": jnp.zeros((2, 2))}
    grads = {"w": jnp.ones((2, 2))}
    tx = lars(0.1, momentum=0.0)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * np.ones((2, 2)))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lars(float("nan")), "lars: learning_rate must be finite"),
        (lambda: lars(0.1, momentum=-1.0), "lars: momentum must be in (-1, inf)"),
        (lambda: lars(0.1, trust_coefficient=-1.0), "lars: trust_coefficient must be finite"),
        (lambda: lars(0.1, eps=float("nan")), "lars: eps must be finite and >= 0, got eps=nan"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
