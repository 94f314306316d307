"""Every registry optimizer trains in Flax's two containers: linen's TrainState and nnx.Optimizer.

Each entry takes two steps on a tiny model under one compilation: the params must move,
stay finite and equal those of the entry's own ``update`` called directly on the same
params, gradients and state (inside the same compiled step), and the optimizer state
must keep its structure, shapes and dtypes (nnx.Optimizer fails outright otherwise).
TrainState does not pass extra arguments on to ``update``, so the entries that need an
objective (L-BFGS, Newton) must refuse it with a message naming ``value_fn``; through
nnx.Optimizer they get ``value``, ``grad`` and ``value_fn`` of the model's loss.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.training import train_state

import optix
from tests.registry import ENTRIES

NAMES = sorted(ENTRIES)
GRADIENT_ONLY = [name for name in NAMES if not ENTRIES[name].objective]
OBJECTIVE = [name for name in NAMES if ENTRIES[name].objective]
STEPS = 2

INPUTS = jnp.linspace(-1.0, 1.0, 24).reshape(8, 3)
TARGETS = jnp.stack([INPUTS @ jnp.asarray([1.0, -2.0, 0.5]), jnp.sin(INPUTS[:, 0])], axis=1)


def mse(predictions):
    return jnp.mean((predictions - TARGETS) ** 2)


def signature(tree):
    """Structure, shapes and dtypes of a tree."""
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def assert_stepped_to(new_params, expected):
    for new, want in zip(jax.tree.leaves(new_params), jax.tree.leaves(expected), strict=True):
        assert bool(jnp.all(jnp.isfinite(new)))
        np.testing.assert_allclose(new, want, rtol=1e-6, atol=1e-7)


def moved(new_params, old_params):
    pairs = zip(jax.tree.leaves(new_params), jax.tree.leaves(old_params), strict=True)
    return any(not np.array_equal(new, old) for new, old in pairs)


def linen_train_state(tx):
    model = nn.Dense(2)
    params = model.init(jax.random.key(0), INPUTS)["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def linen_grads(state):
    return jax.grad(lambda p: mse(state.apply_fn({"params": p}, INPUTS)))(state.params)


@pytest.mark.parametrize("name", GRADIENT_ONLY)
def test_linen_train_state_steps_like_the_entrys_update(name):
    tx = ENTRIES[name].make()
    direct = ENTRIES[name].updater(tx)
    state = linen_train_state(tx)
    initial = signature(state.opt_state)
    traces = []

    @jax.jit
    def step(state):
        traces.append(None)
        grads = linen_grads(state)
        updates, _ = direct(grads, state.opt_state, state.params)
        return state.apply_gradients(grads=grads), optix.apply_updates(state.params, updates)

    first_params = state.params
    for _ in range(STEPS):
        state, expected = step(state)
        assert_stepped_to(state.params, expected)
    assert moved(state.params, first_params)
    assert len(traces) == 1
    assert int(state.step) == STEPS
    assert signature(state.opt_state) == initial


@pytest.mark.parametrize("name", OBJECTIVE)
def test_linen_train_state_refuses_objective_entries_naming_value_fn(name):
    # TrainState.apply_gradients calls tx.update(grads, opt_state, params) and nothing
    # more; the objective entries must say what they miss instead of stepping blindly.
    state = linen_train_state(ENTRIES[name].make())
    step = jax.jit(lambda state: state.apply_gradients(grads=linen_grads(state)))
    with pytest.raises(ValueError, match="value_fn"):
        step(state)


def nnx_step(tx, objective, traces):
    """One nnx.jit-compiled step: nnx.Optimizer.update, and the expected params from
    ``tx.update`` called directly on the same pure params, gradients and state."""

    @nnx.jit
    def step(model, optimizer):
        traces.append(None)
        graphdef = nnx.graphdef(model)
        params = nnx.as_pure(nnx.state(model, nnx.Param))

        def value_fn(pure_params):
            return mse(nnx.merge(graphdef, pure_params)(INPUTS))

        value, grads = nnx.value_and_grad(lambda m: mse(m(INPUTS)))(model)
        pure_grads = nnx.as_pure(grads)
        extra = {"value": value, "grad": grads, "value_fn": value_fn} if objective else {}
        pure_extra = {**extra, "grad": pure_grads} if objective else {}
        opt_state = nnx.as_pure(optimizer.opt_state)
        updates, _ = tx.update(pure_grads, opt_state, params, **pure_extra)
        expected = optix.apply_updates(params, updates)
        optimizer.update(model, grads, **extra)
        return expected

    return step


def holds_lists(tree):
    return any(isinstance(node, list) for node in jax.tree.leaves(tree, is_leaf=is_list))


def is_list(node):
    return isinstance(node, list)


@pytest.mark.parametrize("name", NAMES)
def test_nnx_optimizer_steps_like_the_entrys_update(name):
    tx = ENTRIES[name].make()
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    first_params = nnx.as_pure(nnx.state(model, nnx.Param))
    signatures = [signature(nnx.as_pure(optimizer.opt_state))]
    traces = []
    step = nnx_step(tx, ENTRIES[name].objective, traces)
    for _ in range(STEPS):
        expected = step(model, optimizer)
        assert_stepped_to(nnx.as_pure(nnx.state(model, nnx.Param)), expected)
        signatures.append(signature(nnx.as_pure(optimizer.opt_state)))
    assert moved(nnx.as_pure(nnx.state(model, nnx.Param)), first_params)
    assert int(optimizer.step[...]) == STEPS
    # Shapes and dtypes never change. nnx.Optimizer stores a list node of the state as an
    # int-keyed State after the first update (for Optax's sm3 too), which changes the
    # structure once and retraces once; from then on the structure is fixed.
    assert all(leaves == signatures[0][1] for _, leaves in signatures)
    assert signatures[-1] == signatures[1]
    assert len(traces) == (2 if holds_lists(tx.init(first_params)) else 1)


def least_squares_data():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(32, 3))
    targets = inputs @ np.asarray([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * rng.normal(size=(32, 1))
    return jnp.asarray(inputs), jnp.asarray(targets)


def test_lbfgs_trains_an_nnx_model_to_the_least_squares_optimum_as_when_driven_directly(x64):
    inputs, targets = least_squares_data()
    steps = 12

    def model_loss(model):
        return jnp.mean((model(inputs) - targets) ** 2)

    model = nnx.Linear(3, 1, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    start = {"kernel": model.kernel[...], "bias": model.bias[...]}
    optimizer = nnx.Optimizer(model, optix.lbfgs(), wrt=nnx.Param)

    @nnx.jit
    def nnx_step(model, optimizer):
        graphdef = nnx.graphdef(model)

        def value_fn(params):
            return model_loss(nnx.merge(graphdef, params))

        value, grads = nnx.value_and_grad(model_loss)(model)
        optimizer.update(model, grads, value=value, grad=grads, value_fn=value_fn)

    tx = optix.lbfgs()

    def value_fn(params):
        predictions = inputs @ params["kernel"] + params["bias"][None, :]
        return jnp.mean((predictions - targets) ** 2)

    @jax.jit
    def direct_step(params, state):
        value, grad = jax.value_and_grad(value_fn)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return optix.apply_updates(params, updates), state

    params, state = start, tx.init(start)
    for _ in range(steps):
        nnx_step(model, optimizer)
        params, state = direct_step(params, state)
        np.testing.assert_allclose(model.kernel[...], params["kernel"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.bias[...], params["bias"], rtol=1e-9, atol=1e-12)

    design = np.concatenate([np.asarray(inputs), np.ones((32, 1))], axis=1)
    optimum, *_ = np.linalg.lstsq(design, np.asarray(targets), rcond=None)
    np.testing.assert_allclose(model.kernel[...], optimum[:3], rtol=1e-8)
    np.testing.assert_allclose(model.bias[...], optimum[3], rtol=1e-8)
