"""Padam against the official Padam (NumPy transliteration) and, at its limits, torch.optim.Adam."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optix.optimizers.padam import padam, scale_by_padam
from tests.reference import DTYPES, SCHEDULES, compare, torch_reference
from tests.references.padam import run_official_padam
from tests.registry import ENTRIES

F32_RTOL = ENTRIES["padam"].f32_rtol

CASES = {
    "default": ({}, {}),
    "weight_decay": ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    "max_active": ({"b2": 0.8, "partial": 0.125}, {"betas": (0.9, 0.8), "partial": 0.125}),
    "no_amsgrad_eps": (
        {"amsgrad": False, "partial": 0.125, "eps": 0.01, "weight_decay": 0.1},
        {"amsgrad": False, "partial": 0.125, "eps": 0.01, "weight_decay": 0.1},
    ),
    "partial_0": ({"partial": 0.0, "b1": 0.5}, {"partial": 0.0, "betas": (0.5, 0.999)}),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "official"), CASES.values(), ids=CASES.keys())
def test_padam_matches_official(kwargs, official, dtype, schedule):
    compare(
        lambda lr: padam(lr, **kwargs),
        lambda dt, sched: run_official_padam(dt, sched, **official),
        dtype,
        schedule,
        F32_RTOL,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
def test_half_partial_without_eps_is_torch_adam(amsgrad, dtype, schedule):
    """partial = 1/2 and eps = 0 remove both of Padam's differences from Adam."""
    compare(
        lambda lr: padam(lr, b2=0.8, eps=0.0, partial=0.5, weight_decay=0.1, amsgrad=amsgrad),
        torch_reference(
            lambda params, lr: torch.optim.Adam(
                params, lr=lr, betas=(0.9, 0.8), eps=0.0, weight_decay=0.1, amsgrad=amsgrad
            )
        ),
        dtype,
        schedule,
        F32_RTOL,
    )


def test_state_has_the_running_maximum_only_with_amsgrad():
    params = {"w": jnp.ones(3)}
    assert scale_by_padam(amsgrad=False).init(params).nu_max is None
    assert scale_by_padam().init(params).nu_max["w"].shape == (3,)


def test_first_step_is_the_partial_power():
    """t = 1: u = sqrt(1 - b2) / (1 - b1) * (1 - b1) g / (sqrt(1 - b2) |g| + eps)**(2p)."""
    g = jnp.asarray([0.25, -4.0])
    tx = scale_by_padam(b2=0.99, eps=0.0, partial=0.25)
    u, _ = tx.update({"g": g}, tx.init({"g": g}))
    expected = np.sqrt(0.01) * np.asarray(g) / np.sqrt(np.sqrt(0.01) * np.abs(np.asarray(g)))
    np.testing.assert_allclose(u["g"], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: padam(0.1, partial=0.7), "padam: partial must be in [0, 0.5], got partial=0.7"),
        (
            lambda: scale_by_padam(partial=-0.1),
            "scale_by_padam: partial must be in [0, 0.5], got partial=-0.1",
        ),
        (lambda: padam(0.1, b2=1.5), "padam: b2 must be in [0, 1), got b2=1.5"),
        (
            lambda: padam(0.1, weight_decay=-1.0),
            "padam: weight_decay must be finite and >= 0, got weight_decay=-1.0",
        ),
        (lambda: padam(float("nan")), "padam: learning_rate must be finite"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
