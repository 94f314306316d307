"""ACProp against the official code (NumPy) and optax.contrib.acprop.

pytorch_optimizer 4.1 has no ACProp (its get_supported_optimizers() lists none).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.acprop import acprop, scale_by_acprop
from tests.optax_layout import assert_same_layout
from tests.reference import DTYPES, compare, optax_reference
from tests.references.acprop import run_official_acprop
from tests.registry.adam_variants import F32_RTOL

F32 = F32_RTOL["acprop"]

OFFICIAL = {
    "default": ({}, {}),
    "eps_wd_betas": (
        {"b1": 0.5, "b2": 0.9, "eps": 1e-6, "eps_root": 1e-6, "weight_decay": 0.3},
        {"betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.3},
    ),
}


@DTYPES
@pytest.mark.parametrize(("kwargs", "official"), OFFICIAL.values(), ids=OFFICIAL)
def test_current_residual_matches_the_official_acprop(kwargs, official, dtype):
    compare(
        lambda lr: acprop(lr, residual="current", **kwargs),
        lambda dt, schedule: run_official_acprop(dt, schedule, **official),
        dtype,
        dtype == np.float64,
        F32,
    )


OPTAX = {
    "default": {},
    "eps_wd_betas": {"b1": 0.5, "b2": 0.9, "eps": 1e-3, "eps_root": 1e-6, "weight_decay": 0.3},
}


@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX.values(), ids=OPTAX)
def test_previous_residual_matches_optax_acprop(kwargs, dtype):
    compare(
        lambda lr: acprop(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.acprop(lr, **kwargs)),
        dtype,
        dtype == np.float32,
        F32,
        same_dtype_reference=False,
    )


def test_the_two_residuals_differ_from_the_second_step():
    g1, g2 = jnp.asarray([1.0]), jnp.asarray([3.0])
    results = {}
    for residual in ("previous", "current"):
        tx = scale_by_acprop(b1=0.5, b2=0.5, eps=0.0, eps_root=0.0, residual=residual)
        state = tx.init(jnp.zeros(1))
        u1, state = tx.update(g1, state)
        results[residual] = (u1, state.nu)
        _, state = tx.update(g2, state)
        results[residual] += (state.nu,)
    np.testing.assert_allclose(results["previous"][0], [1.0])  # first step: u = g
    np.testing.assert_allclose(results["previous"][1], [0.5])  # e = g - 0
    np.testing.assert_allclose(results["current"][1], [0.125])  # e = g - 0.5 g
    # second step: e = 3 - 0.5 (previous mu) or 3 - 1.75 (updated mu)
    np.testing.assert_allclose(results["previous"][2], [0.25 + 0.5 * 2.5**2], rtol=1e-6)
    np.testing.assert_allclose(results["current"][2], [0.0625 + 0.5 * 1.25**2], rtol=1e-6)


def _state(tx, params):
    def run():
        return tx.update(params, tx.init(params), params)[1]

    with jax.numpy_dtype_promotion("standard"):  # Optax's code mixes dtypes
        return jax.eval_shape(run)


def test_state_layout_is_optax_s():
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    schedule = optax.linear_schedule(0.1, 0.01, 10)
    for ours, theirs in [
        (acprop(schedule, weight_decay=0.1), optax.contrib.acprop(schedule, weight_decay=0.1)),
        (scale_by_acprop(residual="current"), optax.contrib.scale_by_acprop()),
    ]:
        assert_same_layout(_state(ours, params), _state(theirs, params))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: acprop(0.1, b2=1.0), "acprop: b2 must be in [0, 1), got b2=1.0"),
        (lambda: acprop(0.1, eps_root=-1.0), "acprop: eps_root must be finite and >= 0"),
        (lambda: acprop(0.1, residual="new"), "acprop: residual must be one of"),
        (lambda: acprop(0.1, weight_decay=-0.1), "acprop: weight_decay must be finite and >= 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
