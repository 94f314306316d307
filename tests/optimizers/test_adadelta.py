"""AdaDelta against Optax and torch.optim.Adadelta: whole trajectories, float64 and float32."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optix.core import chain
from optix.optimizers.adadelta import ScaleByAdaDeltaState, adadelta, scale_by_adadelta
from optix.transforms.scaling import scale_by_learning_rate
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare,
    optax_reference,
    run_jax,
    run_torch,
    torch_reference,
)
from tests.registry import ENTRIES

MASK = {"w": True, "b": False, "s": True}
CASES = {
    "default": {},
    "rho_eps": {"rho": 0.5, "eps": 1e-2},
    "weight_decay": {"weight_decay": 0.1},
    "masked_weight_decay": {"weight_decay": 0.1, "weight_decay_mask": MASK},
}
TORCH_CASES = {
    "default": ({}, {}),
    "rho_eps_weight_decay": (
        {"rho": 0.5, "eps": 1e-2, "weight_decay": 0.1},
        {"rho": 0.5, "eps": 1e-2, "weight_decay": 0.1},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES.keys())
def test_adadelta_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: adadelta(lr, **kwargs),
        optax_reference(lambda lr: optax.adadelta(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["adadelta"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
def test_scale_by_adadelta_matches_optax_in_a_chain(dtype, schedule):
    compare(
        lambda lr: chain(scale_by_adadelta(0.7, 1e-4), scale_by_learning_rate(lr)),
        optax_reference(
            lambda lr: optax.chain(
                optax.scale_by_adadelta(0.7, 1e-4), optax.scale_by_learning_rate(lr)
            )
        ),
        dtype,
        schedule,
        ENTRIES["adadelta"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "torch_kwargs"), TORCH_CASES.values(), ids=TORCH_CASES.keys())
def test_adadelta_matches_torch(kwargs, torch_kwargs, dtype, schedule):
    compare(
        lambda lr: adadelta(lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.Adadelta(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        ENTRIES["adadelta"].f32_rtol,
    )


def test_default_learning_rate_descends_like_torch(x64):
    """learning_rate=None is a unit step downhill; Optax's None skips the sign flip."""
    expected = run_torch(torch.optim.Adadelta, np.float64)
    actual = run_jax(adadelta(), np.float64)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a["w"], e["w"], rtol=1e-10)

    params = {"w": jnp.asarray([1.0, -2.0])}
    grads = {"w": jnp.asarray([0.5, -0.5])}
    ours, _ = adadelta().update(grads, adadelta().init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        theirs, _ = optax.adadelta().update(grads, optax.adadelta().init(params), params)
    assert np.all(np.sign(ours["w"]) == -np.sign(grads["w"]))
    np.testing.assert_allclose(ours["w"], -theirs["w"], rtol=1e-12)


def test_second_accumulator_holds_the_step_before_the_learning_rate():
    tx = chain(scale_by_adadelta(0.5, 1e-2), scale_by_learning_rate(0.1))
    g = {"w": jnp.asarray([2.0])}
    updates, (state, _) = tx.update(g, tx.init(g))
    assert isinstance(state, ScaleByAdaDeltaState)
    step = np.sqrt(1e-2) / np.sqrt(0.5 * 4.0 + 1e-2) * 2.0
    np.testing.assert_allclose(updates["w"], [-0.1 * step], rtol=1e-6)
    np.testing.assert_allclose(state.e_g["w"], [2.0], rtol=1e-6)
    np.testing.assert_allclose(state.e_x["w"], [0.5 * step**2], rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adadelta(rho=1.5), "adadelta: rho must be in [0, 1], got rho=1.5"),
        (lambda: adadelta(float("nan")), "adadelta: learning_rate must be finite"),
        (
            lambda: adadelta(weight_decay=-1.0),
            "adadelta: weight_decay must be finite and >= 0, got weight_decay=-1.0",
        ),
        (
            lambda: scale_by_adadelta(eps=-1e-6),
            "scale_by_adadelta: eps must be finite and >= 0, got eps=-1e-06",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
