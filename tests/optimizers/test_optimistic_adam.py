"""Optimistic Adam, Optax's first version, against optax.optimistic_adam and a NumPy
transliteration of its update rule."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.optimistic import optimistic_adam, optimistic_adam_v2
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    optax_reference,
    run_jax,
)
from tests.registry.deprecated import F32_RTOL, built_quietly

CASES = [{}, {"optimism": 0.01, "nesterov": False, "b1": 0.8, "eps": 1e-3}]


@DTYPES
@pytest.mark.parametrize("kwargs", CASES, ids=["default", "options"])
def test_matches_optax(kwargs, dtype):
    compare(
        lambda lr: built_quietly(optimistic_adam, lr, **kwargs),
        optax_reference(lambda lr: built_quietly(optax.optimistic_adam, lr, **kwargs)),
        dtype,
        False,
        F32_RTOL["optimistic_adam"],
        same_dtype_reference=False,
    )


def _numpy_optimistic_adam(lr, optimism, b1, b2, eps, steps=12):
    """u = -(lr * r + optimism * (r - r_prev)), r Adam's bias-corrected direction."""
    params = initial_params()
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in params.items()}
    previous, trajectory = None, []
    for t, g in enumerate(gradient_sequence(steps), start=1):
        r = {}
        for k in params:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            r[k] = (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
        previous = r if previous is None else previous
        params = {k: params[k] - (lr * r[k] + optimism * (r[k] - previous[k])) for k in params}
        previous = r
        trajectory.append(params)
    return trajectory


def test_matches_the_update_rule(x64):
    kwargs = {"optimism": 0.02, "b1": 0.8, "b2": 0.99, "eps": 1e-3}
    tx = built_quietly(optimistic_adam, CONSTANT_LR, nesterov=False, **kwargs)
    actual = run_jax(tx, np.float64, steps=12)
    assert_trajectories_close(actual, _numpy_optimistic_adam(CONSTANT_LR, **kwargs), 1e-10)


def test_is_optimistic_adam_v2_with_rescaled_weights(x64):
    lr, optimism = 0.05, 0.02
    v1 = run_jax(built_quietly(optimistic_adam, lr, optimism), np.float64, steps=12)
    v2 = run_jax(optimistic_adam_v2(lr, alpha=1.0, beta=optimism / lr), np.float64, steps=12)
    assert_trajectories_close(v1, v2, 1e-12)


def test_warns_as_deprecated_like_optax():
    with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
        optimistic_adam(0.1)
    with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
        optax.optimistic_adam(0.1)


def test_state_layout_matches_optax():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    ours = built_quietly(optimistic_adam, 0.1).init(params)
    theirs = built_quietly(optax.optimistic_adam, 0.1).init(params)
    assert jax.tree.structure(ours).num_leaves == jax.tree.structure(theirs).num_leaves
    assert [type(s).__name__ for s in ours] == [type(s).__name__ for s in theirs]
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": lambda count: 0.1}, "optimistic_adam: learning_rate must be a number"),
        ({"learning_rate": -0.1}, "optimistic_adam: learning_rate must be finite and >= 0"),
        ({"learning_rate": 0.1, "optimism": -1.0}, "optimism must be finite and >= 0"),
        ({"learning_rate": 0.1, "b1": 1.0}, "optimistic_adam: b1 must be in"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message):
    with warnings.catch_warnings(), pytest.raises(ValueError) as info:
        warnings.simplefilter("ignore", DeprecationWarning)
        optimistic_adam(**kwargs)
    assert message in str(info.value)
