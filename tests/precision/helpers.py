"""Shared pieces of the precision tests: scanned training runs and the wrapper contract."""

import jax

import optix
from tests.transforms.wrapper_helpers import counting


def run_scan(tx, params, grads, steps):
    """Params and state after every step (stacked), the same ``grads`` each step, in one
    compiled ``lax.scan``."""

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(grads, state, params)
        params = optix.apply_updates(params, updates)
        return (params, state), (params, state)

    _, history = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), length=steps))(params)
    return history


def signature(tree):
    """Structure and leaf dtypes of a tree."""
    return jax.tree.structure(tree), [x.dtype for x in jax.tree.leaves(tree)]


def check_wrapper_contract(wrap, inner, params, grads, steps=3):
    """``wrap(inner)`` compiles once, forwards extra args to ``inner`` (which runs every
    step), keeps its state's structure and dtypes, inits from ShapeDtypeStructs, passes
    ``None`` leaves and keeps the params' dtypes. Returns the final params and state."""
    calls, traces = [], []
    tx = wrap(counting(inner, calls))

    @jax.jit
    def step(params, state):
        traces.append(1)
        updates, state = tx.update(grads, state, params, unused=1)
        return optix.apply_updates(params, updates), state

    state0 = tx.init(params)
    new_params, state = params, state0
    for _ in range(steps):
        new_params, state = step(new_params, state)
    jax.block_until_ready(state)
    assert len(traces) == 1 and len(calls) == steps
    assert signature(state) == signature(state0)
    assert signature(new_params) == signature(params)
    assert jax.tree.structure(new_params) == jax.tree.structure(params)  # None leaves kept
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    assert signature(jax.eval_shape(tx.init, abstract)) == signature(state0)
    return new_params, state
