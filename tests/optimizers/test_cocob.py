"""COCOB-Backprop against optax.contrib.cocob and a NumPy transliteration of the paper's
Algorithm 2 (pytorch_optimizer 4.1 has no COCOB)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.cocob import COCOBState, cocob, scale_by_cocob
from tests.optax_layout import layout
from tests.reference import DTYPES, assert_trajectories_close, compare, optax_reference, run_jax
from tests.references.cocob import run_cocob_backprop

F32_RTOL = 3e-6  # measured: 1.6e-6 (Optax, options)

# The learning rate multiplies the gradient (1 is the paper's COCOB); ``compare`` passes
# 0.05, or a schedule in the "options" case.
CASES = {
    "default": ({}, False),
    "options": ({"alpha": 10.0, "eps": 1e-3, "weight_decay": 0.1}, True),
}


@DTYPES
@pytest.mark.parametrize("case", CASES)
def test_matches_optax(case, dtype):
    kwargs, schedule = CASES[case]
    compare(
        lambda lr: cocob(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.cocob(lr, **kwargs)),
        dtype,
        schedule,
        F32_RTOL,
        same_dtype_reference=False,
    )


@pytest.mark.parametrize(("alpha", "eps"), [(100.0, 1e-8), (5.0, 0.0)])
def test_matches_the_paper(x64, alpha, eps):
    actual = run_jax(cocob(alpha=alpha, eps=eps), np.float64)
    assert_trajectories_close(actual, run_cocob_backprop(alpha, l0=eps), 1e-10)


def test_float32_matches_the_paper():
    actual = run_jax(cocob(alpha=10.0), np.float32)
    assert_trajectories_close(actual, run_cocob_backprop(10.0, l0=1e-8), F32_RTOL)


def test_state_matches_optax_and_dtypes_are_kept():
    params = {"w": jnp.ones((2, 3)), "h": jnp.ones(4, jnp.bfloat16)}
    ours, theirs = cocob().init(params), optax.contrib.cocob().init(params)
    assert layout(ours) == layout(theirs) and type(ours[2]) is COCOBState
    np.testing.assert_array_equal(ours[2].scale["w"], theirs[2].scale["w"])
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    tx = scale_by_cocob()
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["h"].dtype == jnp.bfloat16 and state.reward["h"].dtype == jnp.bfloat16
    # First bet: -g / (|g| * max(2|g|, alpha |g|)) * |g| = -1 / alpha for every coordinate.
    np.testing.assert_allclose(updates["w"], -0.01, rtol=1e-6)


def test_checks_and_missing_params():
    with pytest.raises(ValueError, match="cocob: alpha must be > 0"):
        cocob(alpha=0.0)
    with pytest.raises(ValueError, match="scale_by_cocob: eps must be finite and >= 0"):
        scale_by_cocob(eps=-1.0)
    with pytest.raises(TypeError, match="cocob: learning_rate must be"):
        cocob("1")
    params = {"w": jnp.ones(2)}
    tx = scale_by_cocob()
    with pytest.raises(ValueError, match="scale_by_cocob"):
        tx.update(params, tx.init(params))
