"""Polyak SGD against optax.polyak_sgd / optax.scale_by_polyak, with a loss value per step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.core import GradientTransformation
from optix.optimizers.polyak import polyak_sgd, scale_by_polyak
from tests.reference import DTYPES, SCHEDULES, STEPS, compare, optax_reference
from tests.registry.large_batch_sign import F32_RTOL

# Loss values fed with the reference gradients; some are below f_min (0 and 0.5).
VALUES = np.random.default_rng(2).uniform(-0.5, 3.0, STEPS)


def with_values(tx, values=VALUES):
    """Pass ``value=values[t]`` to ``tx.update`` at step t (for any Optax-style transform)."""

    def init(params):
        return tx.init(params), jnp.zeros([], jnp.int32)

    def update(updates, state, params=None, **extra_args):
        inner, t = state
        value = jnp.asarray(values)[t]
        updates, inner = tx.update(updates, inner, params, value=value, **extra_args)
        return updates, (inner, t + 1)

    return GradientTransformation(init, update)


CASES = [
    {},
    {"max_learning_rate": 100.0},
    {"max_learning_rate": 100.0, "variant": "sps+"},
    {"max_learning_rate": 100.0, "f_min": 0.5, "eps": 0.1},
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES, ids=["default", "uncapped", "sps_plus", "f_min_eps"])
def test_trajectory_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: with_values(polyak_sgd(scaling=lr, **kwargs)),
        optax_reference(lambda lr: with_values(optax.polyak_sgd(scaling=lr, **kwargs))),
        dtype,
        schedule,
        F32_RTOL["polyak_sgd"],
        same_dtype_reference=False,
    )


def test_scale_by_polyak_matches_optax_on_mixed_leaves(x64):
    updates = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.asarray([-1.0, 0.5])}
    for value in [3.0, -1.0, 1e-3]:
        for variant in ["sps", "sps+"]:
            ours, _ = scale_by_polyak(variant=variant).update(updates, None, value=value)
            with jax.numpy_dtype_promotion("standard"):
                theirs, _ = optax.scale_by_polyak(variant=variant).update(
                    updates, None, value=value
                )
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-15), ours, theirs)


def test_optax_docstring_example_halves_the_quadratic():
    """On f(x) = sum(x**2) the Polyak step is 1/4: x halves and f drops by 4 each step."""
    f = lambda x: jnp.sum(x**2)
    solver = polyak_sgd()
    params = jnp.asarray([1.0, 2.0, 3.0])
    state = solver.init(params)
    losses = []
    for _ in range(3):
        value, grad = jax.value_and_grad(f)(params)
        updates, state = solver.update(grad, state, params, value=value)
        params = params + updates
        losses.append(float(f(params)))
    np.testing.assert_allclose(losses, [3.5, 0.875, 0.21875], rtol=1e-6)


def test_a_vanishing_gradient_gives_no_step():
    updates, _ = scale_by_polyak().update({"w": jnp.zeros(3)}, None, value=jnp.asarray(5.0))
    np.testing.assert_array_equal(updates["w"], np.zeros(3))


def test_update_without_value_says_how_to_pass_it():
    tx = polyak_sgd()
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"scale_by_polyak needs the current loss value.*value="):
        tx.update(params, tx.init(params), params)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: polyak_sgd(-1.0), "polyak_sgd: max_learning_rate must be finite and >= 0"),
        (lambda: polyak_sgd(scaling=-1.0), "polyak_sgd: scaling must be finite and >= 0"),
        (lambda: polyak_sgd(eps=-1.0), "polyak_sgd: eps must be finite and >= 0, got eps=-1.0"),
        (lambda: polyak_sgd(variant="SPS"), "polyak_sgd: variant must be one of ('sps', 'sps+')"),
        (lambda: scale_by_polyak(eps=-1.0), "scale_by_polyak: eps must be finite and >= 0"),
        (lambda: scale_by_polyak(variant="sps2"), "scale_by_polyak: variant must be one of"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
