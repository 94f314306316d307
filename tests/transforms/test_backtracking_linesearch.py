"""scale_by_backtracking_linesearch: optax.scale_by_backtracking_linesearch step for step in
float64, the Armijo condition at the first step size that passes, failures with finite outputs."""

from __future__ import annotations

import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms import linesearch_protocol as protocol
from optix.transforms.backtracking_linesearch import (
    BacktrackingLinesearchInfo,
    BacktrackingLinesearchInfoWithStatus,
    ScaleByBacktrackingLinesearchState,
)
from optix.transforms.backtracking_linesearch import (
    scale_by_backtracking_linesearch as optax_layout,
)

# The searches here keep their status in the state (Optax's layout has none).
scale_by_backtracking_linesearch = functools.partial(optax_layout, keep_status=True)
from tests.transforms.linesearch_problems import (
    CURVATURES,
    all_finite,
    ascent,
    assert_case_matches,
    descent,
    first_update,
    low_precision_update,
    one_update,
    pytree_start,
    quadratic,
    rosenbrock,
    rosenbrock_start,
    verbose_output,
    zakharov,
)

# name: (objective, start, direction, arguments, status of the first update)
CASES = {
    "rosenbrock": (rosenbrock, rosenbrock_start, descent, {}, protocol.NO_STEPSIZE_FOUND),
    "store_grad": (
        rosenbrock,
        rosenbrock_start,
        descent,
        {"store_grad": True, "max_backtracking_steps": 40},
        protocol.SUCCEEDED,
    ),
    "quadratic": (quadratic(CURVATURES), pytree_start, descent, {}, protocol.SUCCEEDED),
    "steep": (
        zakharov,
        lambda: jnp.full(6, 3.0),
        descent,
        {"max_backtracking_steps": 60},
        protocol.SUCCEEDED,
    ),
    "tolerances": (
        rosenbrock,
        rosenbrock_start,
        descent,
        {
            "max_backtracking_steps": 30,
            "rtol": 0.1,
            "atol": 0.01,
            "increase_factor": 2.0,
            "decrease_factor": 0.5,
            "max_learning_rate": 0.5,
            "slope_rtol": 0.3,
        },
        protocol.SUCCEEDED,
    ),
    "not_descent": (
        quadratic(CURVATURES),
        pytree_start,
        ascent,
        {"max_backtracking_steps": 10},
        protocol.NOT_A_DESCENT_DIRECTION,
    ),
    "budget": (
        quadratic(CURVATURES),
        pytree_start,
        descent,
        {"max_backtracking_steps": 2},
        protocol.NO_STEPSIZE_FOUND,
    ),
    "no_backtracking": (
        quadratic(CURVATURES),
        pytree_start,
        descent,
        {"max_backtracking_steps": 0, "max_learning_rate": 0.015},
        protocol.SUCCEEDED,
    ),
}


def make(args, module=optix.transforms.backtracking_linesearch):
    extra = {"keep_status": True} if module is optix.transforms.backtracking_linesearch else {}
    return module.scale_by_backtracking_linesearch(
        **({"max_backtracking_steps": 20} | args | extra)
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_step_for_step_in_float64(name, x64):
    assert_case_matches(CASES[name], make, lambda args: make(args, optax))


@pytest.mark.parametrize("name", sorted(CASES))
def test_status_of_the_first_update(name, x64):
    updates, state = first_update(CASES[name], make(CASES[name][3]))
    assert int(state.info.status) == CASES[name][4]
    assert all_finite((updates, state))


@functools.partial(jax.jit, static_argnames="steps")
def search_quadratic(curvatures, start, hyperparams, steps):
    """One search along -grad, compiled once for all hypothesis examples (traced arguments)."""
    fn = quadratic(curvatures)
    params = {"a": start[:3], "b": start[3:]}
    tx = scale_by_backtracking_linesearch(steps, *hyperparams, store_grad=True)
    updates = jax.tree.map(jnp.negative, jax.grad(fn)(params))
    return params, updates, one_update(tx, fn, params, updates)[1]


@settings(max_examples=40, deadline=None)
@given(
    curvatures=st.lists(st.floats(0.1, 100.0), min_size=5, max_size=5),
    start=st.lists(st.floats(-3.0, 3.0).filter(lambda x: abs(x) > 0.1), min_size=5, max_size=5),
    slope_rtol=st.floats(1e-4, 0.5),
    decrease_factor=st.floats(0.1, 0.9),
    increase_factor=st.floats(1.0, 3.0),
    max_learning_rate=st.floats(0.01, 10.0),
    atol=st.sampled_from([0.0, 1e-3]),
    rtol=st.sampled_from([0.0, 1e-2]),
)
def test_returned_step_is_the_first_tried_that_satisfies_armijo(
    curvatures, start, slope_rtol, decrease_factor, increase_factor, max_learning_rate, atol, rtol
):
    with jax.enable_x64(True):
        fn = quadratic(curvatures)
        hyperparams = (slope_rtol, decrease_factor, increase_factor, max_learning_rate, atol, rtol)
        params, updates, state = search_quadratic(
            jnp.asarray(curvatures), jnp.asarray(start), tuple(map(jnp.asarray, hyperparams)), 60
        )
        assert int(state.info.status) == protocol.SUCCEEDED

        value, grad = jax.value_and_grad(fn)(params)
        slope = float(optax.tree.vdot(grad, updates))

        def armijo_error(lr):
            new = fn(jax.tree.map(lambda p, u: p + lr * u, params, updates))
            return float(new - ((1 + rtol) * value + slope_rtol * lr * slope + atol))

        lr, steps = float(state.learning_rate), int(state.info.num_linesearch_steps)
        first = min(increase_factor * 1.0, max_learning_rate)
        np.testing.assert_allclose(lr, first * decrease_factor ** (steps - 1), rtol=1e-12)
        assert armijo_error(lr) <= 1e-12 * abs(float(value))
        if steps > 1:
            assert armijo_error(lr / decrease_factor) > 0.0
        new_params = jax.tree.map(lambda p, u: p + lr * u, params, updates)
        slack = 1e-12 * float(value)
        np.testing.assert_allclose(state.value, fn(new_params), rtol=1e-12, atol=slack)
        expected = jax.grad(fn)(new_params)
        # Entries near 0 come from cancellation: compare them at the scale of the first gradient.
        atol = 1e-12 * float(optax.tree.norm(grad, ord="inf"))
        close = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=atol)
        jax.tree.map(close, state.grad, expected)


def only_at_start(x):
    return jnp.where(jnp.all(x == 1.0), jnp.sum(x**2), jnp.nan)


def test_no_finite_trial_point_makes_no_step_and_the_next_search_restarts(x64):
    params = jnp.ones(2)
    tx = scale_by_backtracking_linesearch(5, store_grad=True)
    updates, state = one_update(tx, only_at_start, params, -params)
    assert int(state.info.status) == protocol.NON_FINITE_VALUES
    np.testing.assert_array_equal(updates, jnp.zeros(2))
    assert float(state.learning_rate) == 0.0
    assert float(state.value) == 2.0
    np.testing.assert_array_equal(state.grad, 2.0 * params)
    # Optax stores the NaN value, and its next guess is 1.5 * 0 = 0 forever.
    theirs = optax.scale_by_backtracking_linesearch(5, store_grad=True)
    _, their_state = one_update(theirs, only_at_start, params, -params)
    assert np.isnan(float(their_state.value)) and float(their_state.learning_rate) == 0.0
    # Ours starts again from max_learning_rate.
    fn = lambda x: jnp.sum(x**2)
    value, grad = jax.value_and_grad(fn)(params)
    _, state = tx.update(-grad, state, params, value=value, grad=grad, value_fn=fn)
    assert int(state.info.status) == protocol.SUCCEEDED
    assert float(state.learning_rate) == 0.8  # 1.0 (max_learning_rate) fails, then 0.8
    assert int(state.info.num_linesearch_steps) == 2


def test_minus_inf_fails_the_condition(x64):
    # log(1 - eta) is -inf at the first guess eta = 1 (Optax accepts it), then finite.
    params, updates = jnp.asarray(1.0), jnp.asarray(-1.0)
    _, theirs = one_update(optax.scale_by_backtracking_linesearch(10), jnp.log, params, updates)
    assert float(theirs.value) == -np.inf
    _, state = one_update(scale_by_backtracking_linesearch(10), jnp.log, params, updates)
    assert float(state.learning_rate) == 0.8
    np.testing.assert_allclose(state.value, np.log(0.2), rtol=1e-12)
    assert int(state.info.num_linesearch_steps) == 2


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("not_descent", "the updates are not a descent direction: the slope <grad, updates>"),
        ("budget", "no step size decreased the objective enough in 3 evaluations"),
        ("quadratic", None),
    ],
)
def test_verbose_says_what_went_wrong_and_what_to_change(name, fragment, capsys, x64):
    out = verbose_output(CASES[name], make(CASES[name][3] | {"verbose": True}), capsys)
    assert (fragment in out) if fragment else out == ""
    if fragment:
        assert out.startswith("scale_by_backtracking_linesearch: ")


def test_verbose_reports_non_finite_values(capsys, x64):
    params = jnp.ones(2)
    one_update(scale_by_backtracking_linesearch(3, verbose=True), only_at_start, params, -params)
    jax.effects_barrier()
    assert "value_fn gave a NaN or infinite value" in capsys.readouterr().out


@pytest.mark.parametrize("store_grad", [False, True])
def test_jit_compiles_once_with_pytrees_none_leaves_and_extra_args(store_grad):
    def loss(params, x, y):
        return jnp.sum((params["w"] * x - y) ** 2) + jnp.sum(params["b"] ** 2)

    tx = optix.chain(optix.sgd(1.0), scale_by_backtracking_linesearch(15, store_grad=store_grad))
    traces = []

    @jax.jit
    def step(params, state, x, y):
        traces.append(1)
        value, grad = jax.value_and_grad(loss)(params, x, y)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=loss, x=x, y=y, key=3
        )
        return optix.apply_updates(params, updates), state

    params = {"w": jnp.ones(3), "b": jnp.ones(2), "frozen": None}
    state = tx.init(params)
    layout = jax.tree.map(lambda x: (x.shape, x.dtype), state)
    x, y = jnp.asarray([0.5, 1.0, 2.0]), jnp.asarray([1.0, 0.0, 1.0])
    for _ in range(5):
        params, state = step(params, state, x, y)
    assert len(traces) == 1
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == layout
    assert params["frozen"] is None
    assert (state[1].grad is None) != store_grad
    np.testing.assert_allclose(state[1].value, loss(params, x, y), rtol=1e-6)
    assert float(state[1].value) < 0.3 * float(loss({"w": jnp.ones(3), "b": jnp.ones(2)}, x, y))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_params_search_in_float32(dtype):
    tx = scale_by_backtracking_linesearch(20, store_grad=True)
    fn, params, value, updates, state = low_precision_update(tx, dtype)
    assert int(state.info.status) == protocol.SUCCEEDED
    assert float(fn(optix.apply_updates(params, updates))) < float(value)


def test_state_layout_and_signature_match_optax():
    for store_grad in (False, True):
        ours = optax_layout(5, store_grad=store_grad).init(jnp.ones(2))
        theirs = optax.scale_by_backtracking_linesearch(5, store_grad=store_grad).init(jnp.ones(2))
        assert type(ours).__name__ == type(theirs).__name__
        assert type(ours).__name__ == ScaleByBacktrackingLinesearchState.__name__
        assert ours._fields == theirs._fields
        assert jax.tree.structure(ours.grad) == jax.tree.structure(theirs.grad)
        assert type(ours.info) is BacktrackingLinesearchInfo
    their_info = optax._src.linesearch.BacktrackingLinesearchInfo
    assert BacktrackingLinesearchInfo._fields == their_info._fields
    assert BacktrackingLinesearchInfoWithStatus._fields == (*their_info._fields, "status")
    kept = scale_by_backtracking_linesearch(5).init(jnp.ones(2)).info
    assert type(kept) is BacktrackingLinesearchInfoWithStatus

    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    assert params(optax_layout)[:-1] == params(optax.scale_by_backtracking_linesearch)
    assert params(optax_layout)[-1] == ("keep_status", False)


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("max_backtracking_steps", -1, ">= 0"),
        ("slope_rtol", 1.0, "in [0, 1)"),
        ("decrease_factor", 1.0, "in (0, 1)"),
        ("decrease_factor", 0.0, "in (0, 1)"),
        ("increase_factor", 0.5, ">= 1"),
        ("max_learning_rate", 0.0, "> 0"),
        ("atol", -1.0, "finite and >= 0"),
        ("rtol", -1.0, "finite and >= 0"),
    ],
)
def test_arguments_are_validated(name, value, valid):
    message = f"scale_by_backtracking_linesearch: {name} must be {valid}, got {name}={value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        scale_by_backtracking_linesearch(**{"max_backtracking_steps": 3, name: value})
    with pytest.raises(TypeError, match="max_backtracking_steps must be an int"):
        scale_by_backtracking_linesearch(1.5)


def test_update_without_the_objective_says_how_to_call_it():
    tx = scale_by_backtracking_linesearch(3)
    params = jnp.ones(2)
    with pytest.raises(ValueError, match=r"needs grad: call update\(updates, state, params"):
        tx.update(params, tx.init(params), params, value=1.0, value_fn=jnp.sum)
