"""NovoGrad against Optax and pytorch_optimizer.NovoGrad: whole trajectories.

pytorch_optimizer's NovoGrad with ``weight_decouple=False`` and ``grad_averaging=False``
(its defaults) is the paper's Algorithm 1, as Optax's is: ``eps`` outside the square
root, the decay added to the normalised gradient, no (1 - b1) on the new term.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import pytorch_optimizer

from optix.optimizers.novograd import ScaleByNovogradState, novograd, scale_by_novograd
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry import ENTRIES

OPTAX_CASES = [
    {},
    {"weight_decay": 0.1},
    {"b1": 0.8, "b2": 0.7, "eps": 1e-3, "eps_root": 1e-2, "weight_decay": 0.01},
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX_CASES, ids=lambda x: str(x))
def test_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: novograd(lr, **kwargs),
        optax_reference(lambda lr: optax.novograd(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["novograd"].f32_rtol,
        same_dtype_reference=False,
    )


TORCH_CASES = {
    "defaults": ({}, {}),
    "decay_betas_eps": (
        {"b1": 0.8, "b2": 0.5, "eps": 1e-3, "weight_decay": 0.1},
        {"betas": (0.8, 0.5), "eps": 1e-3, "weight_decay": 0.1},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("ours", "theirs"), TORCH_CASES.values(), ids=TORCH_CASES)
def test_matches_pytorch_optimizer(ours, theirs, dtype, schedule):
    theirs = {"betas": (0.9, 0.25), "eps": 1e-6, **theirs}
    compare(
        lambda lr: novograd(lr, **ours),
        torch_reference(lambda params, lr: pytorch_optimizer.NovoGrad(params, lr=lr, **theirs)),
        dtype,
        schedule,
        ENTRIES["novograd"].f32_rtol,
    )


def test_weight_decay_schedule_is_read_at_the_step_count(x64):
    """A schedule is evaluated at the number of previous updates, as learning rates are."""
    rates = [0.3, 0.0, 0.1]
    schedule = lambda count: jnp.asarray(rates, jnp.float64)[count]
    params = {"w": jnp.asarray([1.0, -2.0])}
    tx = scale_by_novograd(weight_decay=schedule)
    state = tx.init(params)
    mu, nu = np.zeros(2), 0.0
    for t, rate in enumerate(rates):
        g = np.asarray([0.5, 1.5]) * (t + 1)
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        nu = g @ g if t == 0 else 0.25 * nu + 0.75 * (g @ g)
        mu = 0.9 * mu + g / (np.sqrt(nu) + 1e-8) + rate * np.asarray(params["w"])
        np.testing.assert_allclose(updates["w"], mu, rtol=1e-12)
    np.testing.assert_allclose(state.nu["w"], nu, rtol=1e-12)


def test_layer_second_moment_is_one_scalar_per_leaf():
    params = {"w": jnp.ones((3, 4), jnp.bfloat16), "b": jnp.ones(4)}
    state = scale_by_novograd(mu_dtype=jnp.float32).init(params)
    assert state.nu["w"].shape == () and state.nu["w"].dtype == jnp.bfloat16
    assert state.mu["w"].dtype == jnp.float32
    assert ScaleByNovogradState._fields == optax.ScaleByNovogradState._fields


def test_decay_needs_params_and_zero_decay_does_not():
    tx = scale_by_novograd()
    grads = {"w": jnp.ones(2)}
    updates, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(updates["w"], 1 / (np.sqrt(2.0) + 1e-8), rtol=1e-6)
    tx = scale_by_novograd(weight_decay=0.1)
    with pytest.raises(ValueError, match="scale_by_novograd with weight_decay needs the current"):
        tx.update(grads, tx.init(grads))


def test_signatures_match_optax_including_the_eps_defaults():
    names = lambda fn: [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
    # Optax's parameters first, then optix's keyword-only state dtypes.
    assert names(novograd) == [*names(optax.novograd), ("mu_dtype", None), ("nu_dtype", None)]
    assert names(scale_by_novograd) == [*names(optax.scale_by_novograd), ("nu_dtype", None)]
    assert inspect.signature(novograd).parameters["eps"].default == 1e-6
    assert inspect.signature(scale_by_novograd).parameters["eps"].default == 1e-8


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: novograd(float("nan")), "novograd: learning_rate must be finite"),
        (lambda: novograd(0.1, b2=1.5), "novograd: b2 must be in [0, 1], got b2=1.5"),
        (lambda: novograd(0.1, weight_decay=-1.0), "novograd: weight_decay must be finite"),
        (lambda: scale_by_novograd(eps_root=-1.0), "scale_by_novograd: eps_root must be finite"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_first_update_equals_the_normalised_gradient_plus_decay():
    params = {"w": jnp.asarray([3.0, 4.0])}
    tx = novograd(1.0, weight_decay=0.5)
    updates, _ = tx.update({"w": jnp.asarray([3.0, 4.0])}, tx.init(params), params)
    expected = -(np.asarray([0.6, 0.8]) + 0.5 * np.asarray([3.0, 4.0]))
    np.testing.assert_allclose(updates["w"], expected, rtol=1e-5)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
