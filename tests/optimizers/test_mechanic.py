"""Mechanic against optax.contrib.mechanize and the official mechanic-pytorch package."""

import jax
import jax.numpy as jnp
import mechanic_pytorch
import numpy as np
import optax
import pytest
import torch

import optix
from optix.optimizers.mechanic import MechanicState, mechanize
from tests.optax_layout import layout
from tests.reference import DTYPES, compare, optax_reference, torch_reference

F32_RTOL = 1e-5  # measured: 5.1e-6 (Optax, adam-options), 4.1e-6 (official, sgd)


# (base optimizer of optix and Optax from the learning rate, mechanize kwargs, schedule).
OPTAX_CASES = {
    "sgd": (lambda lr: optix.sgd(lr, 0.9), lambda lr: optax.sgd(lr, 0.9), {"s_init": 0.1}, False),
    "adam-options": (
        optix.adam,
        optax.adam,
        {"weight_decay": 0.1, "eps": 1e-6, "s_init": 0.01, "num_betas": 3},
        True,
    ),
}


@DTYPES
@pytest.mark.parametrize("case", OPTAX_CASES)
def test_matches_optax(case, dtype):
    ours, theirs, kwargs, schedule = OPTAX_CASES[case]
    compare(
        lambda lr: mechanize(ours(lr), **kwargs),
        optax_reference(lambda lr: optax.contrib.mechanize(theirs(lr), **kwargs)),
        dtype,
        schedule,
        F32_RTOL,
        same_dtype_reference=False,
    )


# (optix base, torch base class and kwargs, mechanize kwargs, schedule). The official
# mechanize takes its betas as a tuple: 1 - 0.1**i for num_betas bettors.
OFFICIAL_CASES = {
    "sgd": (
        lambda lr: optix.sgd(lr, 0.9),
        torch.optim.SGD,
        {"momentum": 0.9},
        {"s_init": 0.1},
        False,
    ),
    "adam-options": (
        optix.adam,
        torch.optim.Adam,
        {},
        {"weight_decay": 0.1, "s_init": 0.01, "num_betas": 3},
        True,
    ),
}


@DTYPES
@pytest.mark.parametrize("case", OFFICIAL_CASES)
def test_matches_the_official_code(case, dtype):
    ours, base, base_kwargs, kwargs, schedule = OFFICIAL_CASES[case]
    s_init, num_betas = kwargs.get("s_init", 1e-8), kwargs.get("num_betas", 6)
    official = {
        "s_decay": kwargs.get("weight_decay", 1e-2),
        "betas": tuple(1 - 0.1**i for i in range(1, num_betas + 1)),
        "s_init": s_init,
    }
    ours_kwargs = kwargs | {"s_init": s_init, "variant": "official"}
    compare(
        lambda lr: mechanize(ours(lr), **ours_kwargs),
        torch_reference(
            lambda params, lr: mechanic_pytorch.mechanize(base, **official)(
                params, lr=lr, **base_kwargs
            )
        ),
        dtype,
        schedule,
        F32_RTOL,
    )


def test_state_matches_optax_and_extra_args_reach_the_base():
    params = {"w": jnp.ones((2, 3)), "h": jnp.ones(4, jnp.bfloat16)}
    ours = mechanize(optix.adam(1.0)).init(params)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.contrib.mechanize(optax.adam(1.0)).init(params)
    assert type(ours) is MechanicState and layout(ours) == layout(theirs)
    assert ours.s.dtype == jnp.bfloat16 and ours.s.shape == (6,)
    # A base that needs the loss value gets it through mechanize.
    tx = mechanize(optix.polyak_sgd(max_learning_rate=1.0))
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params, value=jnp.asarray(3.0))
    assert updates["h"].dtype == jnp.bfloat16 and int(state.count) == 1
    # First step: s = s_init / num_betas each, so the base update is scaled by s_init.
    np.testing.assert_allclose(updates["w"], -1e-6 * 3.0 / 10.0, rtol=1e-5)


def test_checks_and_missing_params():
    base = optix.sgd(0.1)
    with pytest.raises(ValueError, match="mechanize: s_init must be > 0"):
        mechanize(base, s_init=0.0)
    with pytest.raises(ValueError, match="mechanize: variant must be one of"):
        mechanize(base, variant="paper")
    with pytest.raises(TypeError, match="mechanize: weight_decay must be"):
        mechanize(base, weight_decay="0.1")
    with pytest.raises(ValueError, match="num_betas"):
        mechanize(base, num_betas=0)
    params = {"w": jnp.ones(2)}
    tx = mechanize(base)
    with pytest.raises(ValueError, match="mechanize"):
        tx.update(params, tx.init(params))
