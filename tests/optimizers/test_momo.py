"""MoMo and MoMo-Adam against optax.contrib and the official momo-opt package (Momo,
MomoAdam by Schaipp et al., github.com/fabian-sp/MoMo), with a loss value per step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from momo import Momo, MomoAdam

from optix.optimizers.momo import MomoAdamState, MomoState, momo, momo_adam
from tests.optax_layout import layout
from tests.optimizers.test_polyak import VALUES, with_values
from tests.reference import DTYPES, compare, optax_reference, torch_reference

# measured: 6.8e-6 (MoMo), 1.45e-5 (MoMo-Adam, Optax with adapt_lower_bound)
F32_RTOL = {"momo": 1e-5, "momo_adam": 2e-5}


def with_losses(optimizer, values=VALUES):
    """The official optimizers take the loss as ``step(loss=...)``; feed ``values``."""
    step, losses = optimizer.step, iter(values)
    optimizer.step = lambda: step(loss=torch.tensor(float(next(losses))))
    return optimizer


# (optix and Optax kwargs, schedule); ``compare`` passes the learning rate.
OPTAX_CASES = {
    "momo-default": (momo, optax.contrib.momo, {}, False),
    "momo-adapt_decay": (
        momo,
        optax.contrib.momo,
        {"beta": 0.8, "lower_bound": 0.2, "weight_decay": 0.5, "adapt_lower_bound": True},
        True,
    ),
    "momo_adam-default": (momo_adam, optax.contrib.momo_adam, {}, False),
    "momo_adam-adapt_decay": (
        momo_adam,
        optax.contrib.momo_adam,
        {"b2": 0.9, "eps": 1e-3, "weight_decay": 0.5, "adapt_lower_bound": True},
        True,
    ),
}


@DTYPES
@pytest.mark.parametrize("case", OPTAX_CASES)
def test_matches_optax(case, dtype):
    ours, theirs, kwargs, schedule = OPTAX_CASES[case]
    compare(
        lambda lr: with_values(ours(lr, **kwargs)),
        optax_reference(lambda lr: with_values(theirs(lr, **kwargs))),
        dtype,
        schedule,
        F32_RTOL[ours.__name__],
        same_dtype_reference=False,
    )


# (optix constructor and kwargs, official class and kwargs, schedule).
OFFICIAL_CASES = {
    "momo-default": (momo, {}, Momo, {}, False),
    "momo-options": (
        momo,
        {
            "beta": 0.8,
            "weight_decay": 0.5,
            "adapt_lower_bound": True,
            "bias_correction": True,
            "weight_decay_form": "proximal",
        },
        Momo,
        {"beta": 0.8, "weight_decay": 0.5, "use_fstar": True, "bias_correction": True},
        True,
    ),
    "momo_adam-proximal": (
        momo_adam,
        {"weight_decay": 0.5, "weight_decay_form": "proximal"},
        MomoAdam,
        {"weight_decay": 0.5},
        False,
    ),
    "momo_adam-decoupled": (
        momo_adam,
        {
            "b1": 0.8,
            "b2": 0.9,
            "weight_decay": 0.5,
            "adapt_lower_bound": True,
            "lower_bound": 0.1,
            "weight_decay_form": "decoupled",
        },
        MomoAdam,
        {"betas": (0.8, 0.9), "weight_decay": 0.5, "use_fstar": True, "lb": 0.1, "divide": False},
        True,
    ),
}


@DTYPES
@pytest.mark.parametrize("case", OFFICIAL_CASES)
def test_matches_the_official_code(case, dtype):
    ours, kwargs, official, official_kwargs, schedule = OFFICIAL_CASES[case]
    compare(
        lambda lr: with_values(ours(lr, **kwargs)),
        torch_reference(lambda params, lr: with_losses(official(params, lr=lr, **official_kwargs))),
        dtype,
        schedule,
        F32_RTOL[ours.__name__],
    )


def test_states_match_optax_layouts():
    params = {"w": jnp.ones((2, 3)), "h": jnp.ones(4, jnp.bfloat16)}
    for ours, theirs, cls in [
        (momo(), optax.contrib.momo(), MomoState),
        (momo_adam(), optax.contrib.momo_adam(), MomoAdamState),
    ]:
        state = ours.init(params)
        with jax.numpy_dtype_promotion("standard"):
            expected = layout(theirs.init(params))
        assert type(state) is cls and layout(state) == expected
        grads = jax.tree.map(jnp.ones_like, params)
        updates, new_state = jax.jit(ours.update)(grads, state, params, value=jnp.asarray(2.0))
        assert layout(new_state) == layout(state) and updates["h"].dtype == jnp.bfloat16


def test_optax_docstring_example():
    """On f(x) = sum(x**2) from [1, 2, 3], MoMo's first step gives f = 3.5 (Optax's doc)."""
    f = lambda x: jnp.sum(x**2)
    params = jnp.asarray([1.0, 2.0, 3.0])
    solver = momo()
    value, grad = jax.value_and_grad(f)(params)
    updates, _ = solver.update(grad, solver.init(params), params, value=value)
    np.testing.assert_allclose(f(params + updates), 3.5, rtol=1e-6)


def test_checks_and_missing_value():
    with pytest.raises(ValueError, match=r"momo: beta must be in \[0, 1\]"):
        momo(beta=1.5)
    with pytest.raises(ValueError, match="momo_adam: weight_decay_form must be one of"):
        momo_adam(weight_decay_form="adamw")
    with pytest.raises(ValueError, match="momo: weight_decay_form must be one of"):
        momo(weight_decay_form="decoupled")
    with pytest.raises(TypeError, match="momo_adam: learning_rate must be"):
        momo_adam("0.1")
    params = {"w": jnp.ones(2)}
    tx = momo()
    with pytest.raises(TypeError, match="momo needs the current loss value"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="momo"):
        tx.update(params, tx.init(params), value=1.0)
