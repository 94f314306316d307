"""Optax's own line-search cases (optax/_src/linesearch_test.py), run on optix.

Cases already run against Optax step for step in test_backtracking_linesearch.py and
test_zoom_linesearch.py (failure statuses, max_learning_rate, budget, descent direction,
value_and_grad_from_state) are not repeated. One deliberate difference: an extra
argument that neither the transformation nor ``value_fn`` takes is ignored, as by every
optix update (Optax raises a TypeError).
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import jax.random as jrd
import numpy as np
import optax
import pytest

import optix
from optix.transforms.backtracking_linesearch import scale_by_backtracking_linesearch
from optix.transforms.linesearch_protocol import value_and_grad_from_state
from optix.transforms.zoom_linesearch import scale_by_zoom_linesearch
from tests.transforms.linesearch_problems import himmelblau, one_update, rosenbrock


def matyas(x):
    return 0.26 * (x[0] ** 2 + x[1] ** 2) - 0.48 * x[0] * x[1]


def eggholder(x):
    return -(x[1] + 47) * jnp.sin(jnp.sqrt(jnp.abs(x[0] / 2.0 + x[1] + 47.0))) - x[0] * jnp.sin(
        jnp.sqrt(jnp.abs(x[0] - (x[1] + 47.0)))
    )


PROBLEMS = {"rosenbrock": (rosenbrock, 16), "himmelblau": (himmelblau, 2)}
PROBLEMS |= {"matyas": (matyas, 2), "eggholder": (eggholder, 2)}


@pytest.mark.parametrize("name", [*PROBLEMS])
def test_backtracking_step_satisfies_the_sufficient_decrease_condition(name):
    fn, size = PROBLEMS[name]

    @jax.jit
    def search(start, slope_rtol, increase_factor, atol, rtol):
        tx = optix.chain(
            optix.sgd(1.0),
            scale_by_backtracking_linesearch(50, slope_rtol, 0.8, increase_factor, 1.0, atol, rtol),
        )
        value, grad = jax.value_and_grad(fn)(start)
        updates, state = tx.update(grad, tx.init(start), start, value=value, grad=grad, value_fn=fn)
        return value, grad, fn(start + updates), state[-1].learning_rate

    for seed, increase, slope_rtol, atol, rtol in itertools.product(
        [0, 1], [1.0, 1.5, jnp.inf], [1e-4, 0.0], [1e-4, 0.0], [1e-4, 0.0]
    ):
        start = jrd.normal(jrd.key(seed), (size,))
        value, grad, new_value, lr = search(start, slope_rtol, increase, atol, rtol)
        slope = -float(jnp.vdot(grad, grad))
        bound = (1 + rtol) * float(value) + slope_rtol * float(lr) * slope + atol
        assert float(new_value) <= bound * (1 + 1e-6) + 1e-6, (seed, increase)
        assert 0.0 < float(lr) <= 1.0


def test_backtracking_value_in_the_state_starts_infinite_and_becomes_finite():
    fn = lambda x: jnp.sum(x**2)
    params = jnp.zeros(2)
    tx = scale_by_backtracking_linesearch(max_backtracking_steps=5)
    state = tx.init(params)
    assert bool(jnp.isinf(optix.tree.get(state, "value")))
    update = jax.jit(functools.partial(tx.update, value_fn=fn))
    _, state = update(-jax.grad(fn)(params), state, params, value=fn(params), grad=params)
    assert float(optix.tree.get(state, "value")) == 0.0


TARGET = jnp.array([1.0, -1.0, 1.0])


def distance(params):
    return jnp.sum((params - TARGET) ** 2)


def test_gradient_descent_with_a_too_large_learning_rate_converges_with_backtracking():
    tx = optix.chain(optix.sgd(10.0), scale_by_backtracking_linesearch(15))

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(distance)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=distance)
        return optix.apply_updates(params, updates), state

    params, state = jnp.array([-1.0, 10.0, 1.0]), tx.init(jnp.zeros(3))
    for _ in range(40):
        params, state = step(params, state)
    np.testing.assert_allclose(params, TARGET, atol=1e-2, rtol=1e-2)


def test_stored_value_and_grad_are_recycled_inside_a_cond():
    value_and_grad = value_and_grad_from_state(distance)
    # Reading from the state: this objective is never evaluated after the first step.
    fake_value_and_grad = value_and_grad_from_state(lambda _: 1.0)
    tx = optix.chain(
        optix.sgd(0.1),
        scale_by_backtracking_linesearch(15, slope_rtol=0.5, increase_factor=1.0, store_grad=True),
    )

    @jax.jit
    def step(params, state, iteration):
        value, grad = jax.lax.cond(
            iteration > 0,
            lambda: fake_value_and_grad(params, state=state),
            lambda: value_and_grad(params, state=state),
        )
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=distance)
        return optix.apply_updates(params, updates), state

    params = jnp.array([1.0, 10.0, 1.0])
    state = tx.init(params)
    for iteration in range(40):
        params, state = step(params, state, iteration)
    np.testing.assert_allclose(params, TARGET, atol=1e-2, rtol=1e-2)


def test_armijo_sgd_passes_the_batch_to_value_fn():
    def fn(params, x, y):
        return jnp.sum((x.dot(params) - y) ** 2)

    x_key, y_key, params_key = jrd.split(jrd.key(0), 3)
    xs = jrd.normal(x_key, (2, 16, 2))
    target = jrd.normal(params_key, (2,))
    ys = jnp.stack([x.dot(target) for x in xs]) + 1e-3 * jrd.normal(y_key, (2, 16))
    tx = optix.chain(optix.sgd(1.0), scale_by_backtracking_linesearch(15))

    @jax.jit
    def step(params, state, x, y):
        value, grad = jax.value_and_grad(fn)(params, x, y)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=fn, x=x, y=y
        )
        return optix.apply_updates(params, updates), state

    params = jnp.zeros(2)
    state = tx.init(params)
    for i in range(10):
        params, state = step(params, state, xs[i % 2], ys[i % 2])
    np.testing.assert_allclose(params, target, atol=5e-2, rtol=5e-2)


# Two of Optax's sixteen (params dtype, hyperparameter dtype) pairs, the far corners:
# half-precision params with float64 hyperparameters, and the reverse.
DTYPE_PAIRS = [(jnp.float16, jnp.float64), (jnp.float64, jnp.bfloat16)]
BACKTRACKING_NAMES = ["slope_rtol", "decrease_factor", "increase_factor", "max_learning_rate"]
ZOOM_NAMES = ["tol", "increase_factor", "slope_rtol", "curv_rtol", "approx_dec_rtol"]
NAMES = {
    "backtracking": [*BACKTRACKING_NAMES, "atol", "rtol"],
    "zoom": [*ZOOM_NAMES, "stepsize_precision"],
}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_the_state_keeps_its_dtypes_whatever_the_hyperparameter_dtypes(kind, x64):
    build = {
        "backtracking": lambda **kw: scale_by_backtracking_linesearch(5, **kw),
        "zoom": lambda **kw: scale_by_zoom_linesearch(5, **kw),
    }[kind]
    for dtype, confuse in DTYPE_PAIRS:
        tx = build(**{k: jnp.array(1e-5, confuse) for k in NAMES[kind]})
        x = jnp.array([1.0, 2.0], dtype)
        state = tx.init(x)
        value_fn = lambda x, confuse=confuse: jnp.sum(x**2).astype(confuse)
        cond = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
        new_state = jax.lax.cond(
            cond,
            lambda x, tx=tx, value_fn=value_fn, state=state: tx.update(
                x, state, x, value=1.0, grad=x, value_fn=value_fn
            )[1],
            lambda x, state=state: state,
            x,
        )
        signature = lambda s: [(leaf.shape, leaf.dtype) for leaf in jax.tree.leaves(s)]
        assert signature(new_state) == signature(state), (dtype, confuse)


def test_an_unused_extra_arg_is_ignored_where_optax_raises():
    def value_fn(params, batch):
        return jnp.sum(params * batch)

    params, batch = jnp.array([1.0, 2.0]), jnp.ones(2)
    kwargs = dict(value=value_fn(params, batch), grad=jnp.ones(2), value_fn=value_fn, batch=batch)
    updates = jnp.array([-0.1, -0.1])
    for m in (optix, optax):
        tx = m.scale_by_backtracking_linesearch(max_backtracking_steps=5)
        expected = tx.update(updates, tx.init(params), params, **kwargs)
        if m is optax:
            with pytest.raises(TypeError, match="Unexpected keyword arguments"):
                tx.update(updates, tx.init(params), params, **kwargs, unused_arg=42)
            continue
        actual = tx.update(updates, tx.init(params), params, **kwargs, unused_arg=42)
        jax.tree.map(np.testing.assert_array_equal, actual, expected)


def test_zoom_succeeds_when_the_first_trial_starts_with_high_below_low():
    # x**2 from -1 along 1.95: the unit step decreases enough, fails the curvature
    # condition and has a positive slope, so the first interval is reversed (jax#16236).
    w = jnp.asarray(-1.0)
    tx = scale_by_zoom_linesearch(20)
    assert bool(jnp.isinf(optix.tree.get(tx.init(w), "value")))
    updates, state = one_update(tx, lambda x: x**2, w, -1.95 * w, 1.0)
    assert float(optix.tree.get(state, "decrease_error")) <= 0.0
    assert float(optix.tree.get(state, "curvature_error")) <= 0.0
    np.testing.assert_allclose(optix.tree.get(state, "value"), (w + updates) ** 2, atol=1e-6)
    assert float(optix.tree.get(state, "value")) < 1.0
