"""optix inside Optax's combinators (``optix.to_optax``) and Optax inside optix's.

Runs are float64 and driven by the same explicit gradients (or the same objective);
wherever both sides run the same functions in the same order the numbers must be
identical, and close to a pure-Optax run (rtol 1e-10) where the update rules agree.
Optax's code relies on standard dtype promotion, so these runs use it.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix

STEPS = 6
LBFGS_STEPS = 12  # enough to reach the minimizer of the 4-dim quadratic
_RNG = np.random.default_rng(3)
_Q, _ = np.linalg.qr(_RNG.normal(size=(4, 4)))
_HESSIAN = _Q @ np.diag([1.0, 3.0, 10.0, 30.0]) @ _Q.T
_LINEAR = _RNG.normal(size=4)
_MINIMIZER = np.linalg.solve(_HESSIAN, _LINEAR)


@pytest.fixture(autouse=True)
def float64_standard_promotion():
    with jax.numpy_dtype_promotion("standard"), jax.enable_x64(True):
        yield


def make_params():
    return {"w": jnp.linspace(-1.0, 1.0, 4), "b": jnp.asarray([0.5, -2.0])}


def make_grads(step):
    """Gradients of growing norm, so clip_by_global_norm(1.0) clips only some of them."""
    keys = jax.random.split(jax.random.key(step), 2)
    scale = 0.4 * (step + 1)
    return {
        "w": scale * jax.random.normal(keys[0], (4,), jnp.float64),
        "b": scale * jax.random.normal(keys[1], (2,), jnp.float64),
    }


def gradient_path(tx, steps=STEPS):
    """Params after each step of ``tx`` driven by ``make_grads``."""
    params, state, path = make_params(), tx.init(make_params()), []
    step = jax.jit(tx.update)
    for t in range(steps):
        updates, state = step(make_grads(t), state, params)
        params = optax.apply_updates(params, updates)
        path.append(params)
    return path


def quadratic(params):
    """A strictly convex quadratic of ``params["w"]`` (other entries do not enter)."""
    w = params["w"]
    return 0.5 * w @ (jnp.asarray(_HESSIAN) @ w) - jnp.asarray(_LINEAR) @ w


def objective_path(tx, params, steps=LBFGS_STEPS):
    """Params after each step of ``tx`` given value, grad and value_fn of ``quadratic``."""

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(quadratic)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=quadratic)
        return optax.apply_updates(params, updates), state

    state, path = tx.init(params), []
    for _ in range(steps):
        params, state = step(params, state)
        path.append(params)
    return path


def assert_paths_equal(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, e)


def assert_paths_close(actual, expected, rtol=1e-10):
    for a, e in zip(actual, expected, strict=True):
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-14), a, e)


def test_to_optax_passes_optax_isinstance_checks_and_keeps_the_optix_state():
    tx = optix.to_optax(optix.adam(0.1))
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    assert isinstance(tx, optax.GradientTransformation)
    assert not isinstance(optix.adam(0.1), optax.GradientTransformation)
    state = tx.init(make_params())
    assert type(state[0]) is optix.ScaleByAdamState
    assert jax.tree.map(np.shape, optax.tree.get(state, "mu")) == {"w": (4,), "b": (2,)}


def test_optix_adam_in_optax_chain_matches_optix_chain_and_optax():
    in_optax = gradient_path(
        optax.chain(optax.clip_by_global_norm(1.0), optix.to_optax(optix.adam(0.1)))
    )
    in_optix = gradient_path(optix.chain(optax.clip_by_global_norm(1.0), optix.adam(0.1)))
    pure_optax = gradient_path(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.1)))
    pure_optix = gradient_path(optix.chain(optix.clip_by_global_norm(1.0), optix.adam(0.1)))
    assert_paths_equal(in_optax, in_optix)
    assert_paths_close(in_optax, pure_optax)
    assert_paths_close(pure_optix, pure_optax)


def test_optax_members_in_optix_chain_match_optax_chain():
    ours = gradient_path(optix.chain(optax.adam(0.1), optix.scale(0.3)))
    theirs = gradient_path(optax.chain(optax.adam(0.1), optax.scale(0.3)))
    assert_paths_equal(ours, theirs)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda: optix.masked(optax.adam(0.1), {"w": True, "b": False}),
            lambda: optax.masked(optax.adam(0.1), {"w": True, "b": False}),
        ),
        (
            lambda: optix.MultiSteps(optax.adam(0.1), 2, accumulator_dtype=jnp.float64),
            lambda: optax.MultiSteps(optax.adam(0.1), 2, accumulator_dtype=jnp.float64),
        ),
        (
            lambda: optix.inject_hyperparams(optax.adam)(learning_rate=0.1, b1=0.8),
            lambda: optax.inject_hyperparams(optax.adam)(learning_rate=0.1, b1=0.8),
        ),
    ],
    ids=["masked", "MultiSteps", "inject_hyperparams"],
)
def test_optix_wrappers_around_optax_match_optax_wrappers(ours, theirs):
    assert_paths_close(gradient_path(ours()), gradient_path(theirs()))


def test_optax_chain_drops_extra_args_unless_the_member_is_wrapped():
    params = {"w": jnp.zeros(4)}
    direct = objective_path(optix.lbfgs(), params)
    through_optax = objective_path(optax.chain(optix.to_optax(optix.lbfgs())), params)
    assert_paths_equal(through_optax, direct)
    np.testing.assert_allclose(direct[-1]["w"], _MINIMIZER, rtol=1e-6)
    with pytest.raises(ValueError, match=re.escape("needs value, grad, value_fn")):
        objective_path(optax.chain(optix.lbfgs()), params)


def test_optax_masked_forwards_extra_args_to_wrapped_lbfgs():
    params = {"w": jnp.zeros(4), "frozen": jnp.asarray([1.0, 2.0])}
    masked = optax.masked(
        optix.to_optax(optix.lbfgs()),
        {"w": True, "frozen": False},
        mask_compatible_extra_args=True,  # grad is masked like the params
    )
    path = objective_path(masked, params)
    alone = objective_path(optix.lbfgs(), {"w": jnp.zeros(4)})
    assert_paths_equal([p["w"] for p in path], [p["w"] for p in alone])
    for p in path:
        np.testing.assert_array_equal(p["frozen"], params["frozen"])


def test_optax_multisteps_forwards_extra_args_to_wrapped_lbfgs():
    params = {"w": jnp.zeros(4)}
    every_step = optax.MultiSteps(optix.to_optax(optix.lbfgs()), every_k_schedule=1)
    assert_paths_close(objective_path(every_step, params), objective_path(optix.lbfgs(), params))


def test_optax_linesearch_in_optix_chain_gets_extra_args():
    # optax.scale is a plain transformation: optix.chain must not pass it the extra args.
    members = (
        optax.scale_by_lbfgs(),
        optax.scale(-1.0),
        optax.scale_by_zoom_linesearch(15, initial_guess_strategy="one"),
    )
    params = {"w": jnp.zeros(4)}
    ours = objective_path(optix.chain(*members), params)
    assert_paths_equal(ours, objective_path(optax.chain(*members), params))
    np.testing.assert_allclose(ours[-1]["w"], _MINIMIZER, rtol=1e-6)


def test_optix_chain_passes_foreign_members_the_extra_args_they_name():
    def update(updates, state, params=None, *, factor):
        return jax.tree.map(lambda u: factor * u, updates), state

    named = optax.GradientTransformationExtraArgs(optax.init_empty_state, update)
    tx = optix.chain(named, optax.scale(2.0))
    grads = {"w": jnp.asarray([1.0, -2.0])}
    updates, _ = tx.update(grads, tx.init(grads), factor=3.0, value=jnp.asarray(0.5))
    np.testing.assert_array_equal(updates["w"], [6.0, -12.0])
