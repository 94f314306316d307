"""SOAP against a NumPy transliteration of the official soap.py and pytorch_optimizer.SOAP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pytorch_optimizer import SOAP

from optix.optimizers.soap import scale_by_soap, soap
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    STEPS,
    compare,
    gradient_sequence,
    initial_params,
    learning_rates,
    torch_reference,
)
from tests.references import soap_reference
from tests.registry.preconditioned import F32_RTOL

F32 = F32_RTOL["soap"]

CASES = {
    "default_frequency_3": ({"precondition_frequency": 3}, {"precondition_frequency": 3}),
    "merge_1d_normalize_wd": (
        {
            "precondition_frequency": 2,
            "b1": 0.9,
            "b2": 0.99,
            "shampoo_beta": 0.8,
            "weight_decay": 0.1,
            "precondition_1d": True,
            "merge_dims": True,
            "max_precond_dim": 3,
            "normalize_grads": True,
        },
        {
            "precondition_frequency": 2,
            "betas": (0.9, 0.99),
            "shampoo_beta": 0.8,
            "weight_decay": 0.1,
            "precondition_1d": True,
            "merge_dims": True,
            "max_precond_dim": 3,
            "normalize_grads": True,
        },
    ),
    "large_dims_unpreconditioned_no_bias_correction": (
        {
            "precondition_frequency": 4,
            "correct_bias": False,
            "max_precond_dim": 3,
            "weight_decay": 0.0,
        },
        {
            "precondition_frequency": 4,
            "correct_bias": False,
            "max_precond_dim": 3,
            "weight_decay": 0.0,
        },
    ),
}


def reference(ref_kwargs):
    def run(dtype, schedule):
        del dtype  # the transliteration is float64
        lrs = learning_rates() if schedule else [CONSTANT_LR] * STEPS
        return soap_reference.run(initial_params(), gradient_sequence(), lrs, **ref_kwargs)

    return run


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_official_soap_float64(case):
    kwargs, ref_kwargs = CASES[case]
    compare(
        lambda lr: soap(lr, **kwargs),
        reference(ref_kwargs),
        np.float64,
        case == "default_frequency_3",
        F32,
        same_dtype_reference=False,
    )


def test_trajectory_matches_official_soap_float32():
    kwargs, ref_kwargs = CASES["default_frequency_3"]
    compare(
        lambda lr: soap(lr, **kwargs),
        reference(ref_kwargs),
        np.float32,
        True,
        F32,
        same_dtype_reference=False,
    )


@DTYPES
def test_trajectory_matches_pytorch_optimizer_soap(dtype):
    """pytorch_optimizer.SOAP does its QR in float32: with precondition_frequency > the
    number of steps only the first (float64) eigh runs, so float64 agrees to 1e-10."""
    compare(
        lambda lr: soap(lr, b1=0.9, b2=0.99, weight_decay=0.1, precondition_frequency=100),
        torch_reference(
            lambda params, lr: SOAP(
                params, lr=lr, betas=(0.9, 0.99), weight_decay=0.1, precondition_frequency=100
            )
        ),
        dtype,
        False,
        F32,
    )


def test_first_update_only_builds_the_eigenbasis():
    tx = soap(0.1, weight_decay=0.5)
    params = {"w": jnp.ones((2, 3))}
    state = tx.init(params)
    g = {"w": jnp.asarray([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])}
    updates, state = jax.jit(tx.update)(g, state, params)
    np.testing.assert_array_equal(updates["w"], 0.0)
    core = state[0]
    q = core.eigenbases["w"][0]
    np.testing.assert_allclose(q.T @ q, np.eye(2), atol=1e-6)
    f = core.factors["w"][0]
    np.testing.assert_allclose(f, 0.05 * g["w"] @ g["w"].T, rtol=1e-6)
    lam = np.diag(q.T @ f @ q)
    assert lam[0] >= lam[1]  # columns by decreasing eigenvalue


def test_state_layout():
    state = scale_by_soap(max_precond_dim=4).init({"w": jnp.zeros((3, 5)), "b": jnp.zeros(4)})
    assert state.factors["w"][0].shape == (3, 3) and state.factors["w"][1] is None
    assert state.factors["b"] == [None]
    assert state.mu["w"].shape == (3, 5)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: soap(0.1, b2=1.0), ValueError, "scale_by_soap: b2 must be in [0, 1), got b2=1.0"),
        (lambda: soap(0.1, precondition_frequency=0), ValueError, "precondition_frequency"),
        (lambda: soap(0.1, weight_decay=-1.0), ValueError, "soap: weight_decay must be"),
        (lambda: scale_by_soap(max_precond_dim=2.0), TypeError, "must be an int"),
        (lambda: soap("0.1"), TypeError, "soap: learning_rate must be"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
