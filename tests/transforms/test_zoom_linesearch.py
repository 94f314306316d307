"""scale_by_zoom_linesearch: optax.scale_by_zoom_linesearch step for step in float64, the
strong Wolfe conditions at the returned step, and every failure status with finite outputs."""

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
from optix.transforms.zoom_linesearch import (
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    ZoomLinesearchInfoWithStatus,
)
from optix.transforms.zoom_linesearch import scale_by_zoom_linesearch as optax_layout

# The searches here keep their status in the state (Optax's layout has none).
scale_by_zoom_linesearch = functools.partial(optax_layout, keep_status=True)
from tests.transforms.linesearch_problems import (
    CURVATURES,
    all_finite,
    ascent,
    assert_case_matches,
    descent,
    first_update,
    himmelblau,
    low_precision_update,
    newton_quadratic,
    one_update,
    pytree_start,
    quadratic,
    rosenbrock,
    rosenbrock_start,
    verbose_output,
    zakharov,
)


def flat(x):
    return jnp.exp(-1 / x**2)


def square(x):
    return jnp.dot(x, x)


def kink(x):
    """|x|: no step has small curvature, the bracket shrinks around the kink."""
    return jnp.sum(jnp.abs(x))


# name: (objective, start, direction, arguments, status of the first update)
CASES = {
    "rosenbrock": (rosenbrock, rosenbrock_start, descent, {}, protocol.SUCCEEDED),
    "rosenbrock_one": (
        rosenbrock,
        rosenbrock_start,
        descent,
        {"initial_guess_strategy": "one"},
        protocol.SUCCEEDED,
    ),
    "quadratic": (quadratic(CURVATURES), pytree_start, descent, {}, protocol.SUCCEEDED),
    "newton": (
        quadratic(CURVATURES),
        pytree_start,
        newton_quadratic(CURVATURES),
        {"initial_guess_strategy": "one"},
        protocol.SUCCEEDED,
    ),
    "steep": (
        zakharov,
        lambda: jnp.full(6, 3.0),
        descent,
        {"max_linesearch_steps": 40},
        protocol.SUCCEEDED,
    ),
    "armijo_only": (
        himmelblau,
        lambda: jnp.asarray([-1.0, 1.5]),
        descent,
        {"approx_dec_rtol": None, "curv_rtol": 0.5},
        protocol.SUCCEEDED,
    ),
    "not_descent": (
        quadratic(CURVATURES),
        pytree_start,
        ascent,
        {"max_linesearch_steps": 18, "curv_rtol": 0.5},
        protocol.NOT_A_DESCENT_DIRECTION,
    ),
    "budget": (
        rosenbrock,
        rosenbrock_start,
        descent,
        {"max_linesearch_steps": 4},
        protocol.NO_STEPSIZE_FOUND,
    ),
    "max_learning_rate": (
        square,
        lambda: jnp.asarray([-60.0, 1.0]),
        descent,
        {"max_learning_rate": 0.01},
        protocol.CURVATURE_NOT_SATISFIED,
    ),
    "tolerances": (
        rosenbrock,
        rosenbrock_start,
        descent,
        {"tol": 1e-3, "curv_rtol": jnp.inf, "stepsize_precision": 1e-2, "increase_factor": 3.0},
        protocol.SUCCEEDED,
    ),
    "flat": (
        flat,
        lambda: jnp.asarray(-0.2),
        descent,
        {"max_linesearch_steps": 30},
        protocol.SUCCEEDED,
    ),
    "kink": (
        kink,
        lambda: jnp.asarray([0.7]),
        descent,
        {"max_linesearch_steps": 30},
        protocol.INTERVAL_TOO_SMALL,
    ),
}


def make(args, module=optix.transforms.zoom_linesearch):
    extra = {"keep_status": True} if module is optix.transforms.zoom_linesearch else {}
    return module.scale_by_zoom_linesearch(**({"max_linesearch_steps": 20} | args | extra))


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_step_for_step_in_float64(name, x64):
    ours = assert_case_matches(CASES[name], make, lambda args: make(args, optax))
    assert {float(r["learning_rate"]) for r in ours} != {0.0}


@pytest.mark.parametrize("name", sorted(CASES))
def test_status_of_the_first_update(name, x64):
    updates, state = first_update(CASES[name], make(CASES[name][3]))
    assert int(state.info.status) == CASES[name][4]
    assert all_finite((updates, state))


def check_strong_wolfe(fn, params, updates, state, slope_rtol, curv_rtol):
    value, grad = jax.value_and_grad(fn)(params)
    new_params = jax.tree.map(
        jnp.add, params, jax.tree.map(lambda u: state.learning_rate * u, updates)
    )
    new_value, new_grad = jax.value_and_grad(fn)(new_params)
    slope = optax.tree.vdot(grad, updates)
    new_slope = optax.tree.vdot(new_grad, updates)
    # The slack covers rounding: these recompute the trial point outside the search.
    slack = 1e-12 * abs(float(value))
    assert float(new_value) <= float(value + slope_rtol * state.learning_rate * slope) + slack
    assert abs(float(new_slope)) <= curv_rtol * abs(float(slope)) * (1 + 1e-12)
    np.testing.assert_allclose(state.value, new_value, rtol=1e-12, atol=slack)
    # Entries near 0 come from cancellation: compare them at the scale of the first gradient.
    atol = 1e-12 * float(optax.tree.norm(grad, ord="inf"))
    close = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=atol)
    jax.tree.map(close, state.grad, new_grad)


@functools.partial(jax.jit, static_argnames="guess")
def search_quadratic(curvatures, start, slope_rtol, curv_rtol, guess):
    """One search along -grad, compiled once for every hypothesis example (traced arguments)."""
    fn = quadratic(curvatures)
    params = {"a": start[:3], "b": start[3:]}
    tx = scale_by_zoom_linesearch(
        30,
        slope_rtol=slope_rtol,
        curv_rtol=curv_rtol,
        approx_dec_rtol=None,
        initial_guess_strategy=guess,
    )
    updates = jax.tree.map(jnp.negative, jax.grad(fn)(params))
    return params, updates, one_update(tx, fn, params, updates, learning_rate=1.7)[1]


@settings(max_examples=40, deadline=None)
@given(
    curvatures=st.lists(st.floats(0.1, 100.0), min_size=5, max_size=5),
    start=st.lists(st.floats(-3.0, 3.0).filter(lambda x: abs(x) > 0.1), min_size=5, max_size=5),
    slope_rtol=st.floats(1e-4, 0.3),
    gap=st.floats(0.1, 0.6),
    guess=st.sampled_from(["one", "keep"]),
)
def test_returned_step_satisfies_strong_wolfe_on_quadratics(
    curvatures, start, slope_rtol, gap, guess
):
    with jax.enable_x64(True):
        curvatures, start = jnp.asarray(curvatures), jnp.asarray(start)
        curv_rtol = slope_rtol + gap
        args = (jnp.asarray(slope_rtol), jnp.asarray(curv_rtol))
        params, updates, state = search_quadratic(curvatures, start, *args, guess)
        assert int(state.info.status) == protocol.SUCCEEDED
        check_strong_wolfe(quadratic(curvatures), params, updates, state, slope_rtol, curv_rtol)


@jax.jit
def search_rosenbrock(params):
    updates = -jax.grad(rosenbrock)(params)
    tx = scale_by_zoom_linesearch(40, approx_dec_rtol=None, initial_guess_strategy="one")
    return updates, one_update(tx, rosenbrock, params, updates)[1]


@settings(max_examples=40, deadline=None)
@given(start=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4))
def test_returned_step_satisfies_strong_wolfe_on_rosenbrock(start):
    with jax.enable_x64(True):
        params = jnp.asarray(start)
        updates, state = search_rosenbrock(params)
        assert int(state.info.status) == protocol.SUCCEEDED
        check_strong_wolfe(rosenbrock, params, updates, state, 1e-4, 0.9)


def test_budget_exhausted_returns_the_best_step_of_sufficient_decrease(x64):
    # Along u from -60 u, the strong Wolfe steps (curv_rtol 0.5) start at 30; 5 evaluations
    # reach 16 only (as in Optax's own test): 16 decreases enough, its curvature does not.
    e = jnp.asarray([1.0, 0.0])
    for module in (optix.transforms.zoom_linesearch, optax):
        tx = module.scale_by_zoom_linesearch(max_linesearch_steps=5, curv_rtol=0.5)
        _, state = one_update(tx, square, -60.0 * e, e)
        assert float(state.learning_rate) == 16.0
    assert int(state.info.num_linesearch_steps) == 5
    _, state = one_update(scale_by_zoom_linesearch(5, curv_rtol=0.5), square, -60.0 * e, e)
    assert int(state.info.status) == protocol.CURVATURE_NOT_SATISFIED
    _, state = one_update(scale_by_zoom_linesearch(30, curv_rtol=0.5), square, -60.0 * e, e)
    assert int(state.info.status) == protocol.SUCCEEDED
    assert float(state.learning_rate) >= 30.0


def test_max_learning_rate_caps_the_step(x64):
    e = jnp.asarray([1.0, 0.0])
    tx = scale_by_zoom_linesearch(10, max_learning_rate=10.0, curv_rtol=0.5)
    updates, state = one_update(tx, square, -60.0 * e, e)
    assert float(state.learning_rate) == 10.0
    np.testing.assert_array_equal(updates, 10.0 * e)
    assert int(state.info.status) == protocol.CURVATURE_NOT_SATISFIED


def test_no_finite_trial_point_makes_no_step_and_keeps_a_finite_state(x64):
    def only_at_start(x):
        return jnp.where(jnp.all(x == 1.0), jnp.sum(x**2), jnp.nan)

    params = jnp.ones(2)
    tx = scale_by_zoom_linesearch(10)
    updates, state = one_update(tx, only_at_start, params, -params)
    assert int(state.info.status) == protocol.NON_FINITE_VALUES
    np.testing.assert_array_equal(updates, jnp.zeros(2))
    assert float(state.learning_rate) == 0.0
    assert float(state.value) == 2.0
    np.testing.assert_array_equal(state.grad, 2.0 * params)
    # "keep" restarts from 1 after a failed search (Optax's guess would stay 0 forever).
    value, grad = jax.value_and_grad(square)(params)
    _, state = tx.update(-grad, state, params, value=value, grad=grad, value_fn=square)
    assert int(state.info.status) == protocol.SUCCEEDED
    assert float(state.learning_rate) == 0.5


def test_nan_and_minus_inf_beyond_the_domain_give_a_finite_safe_step(x64):
    # log(1 - 2 eta) is NaN past eta = 0.5 and -inf at it: Optax returns that -inf point.
    params, updates = jnp.asarray(1.0), jnp.asarray(-2.0)
    _, theirs = one_update(optax.scale_by_zoom_linesearch(30), jnp.log, params, updates)
    assert float(theirs.value) == -np.inf
    new_updates, state = one_update(scale_by_zoom_linesearch(30), jnp.log, params, updates)
    assert 0.0 < float(state.learning_rate) < 0.5
    assert np.isfinite(float(state.value)) and np.isfinite(float(state.grad))
    np.testing.assert_allclose(state.value, jnp.log(params + new_updates), rtol=1e-12)
    assert int(state.info.status) == protocol.INTERVAL_TOO_SMALL


def test_not_a_descent_direction_is_reported_and_printed(capsys, x64):
    e = jnp.asarray([1.0, 0.0])
    tx = scale_by_zoom_linesearch(18, curv_rtol=0.5, verbose=True)
    updates, state = one_update(tx, square, 60.0 * e, e)
    jax.effects_barrier()
    assert int(state.info.status) == protocol.NOT_A_DESCENT_DIRECTION
    assert float(state.learning_rate) < 1e-4 and bool(jnp.all(jnp.isfinite(updates)))
    out = capsys.readouterr().out
    assert "scale_by_zoom_linesearch: the updates are not a descent direction" in out
    assert "slope <grad, updates> = 120" in out


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("max_learning_rate", "Raise max_learning_rate"),
        ("kink", "shrank below stepsize_precision"),
        ("budget", "no step size decreased the objective enough in 4 evaluations"),
        ("rosenbrock", None),
    ],
)
def test_verbose_says_what_went_wrong_and_what_to_change(name, fragment, capsys, x64):
    out = verbose_output(CASES[name], make(CASES[name][3] | {"verbose": True}), capsys)
    assert (fragment in out) if fragment else out == ""


def test_jit_compiles_once_with_pytrees_none_leaves_and_extra_args():
    def loss(params, data, scale=1.0):
        return scale * jnp.sum((params["w"] * data - 1.0) ** 2) + jnp.sum(params["b"] ** 2)

    tx = optix.chain(optix.scale(-1.0), scale_by_zoom_linesearch(15))
    vg = protocol.value_and_grad_from_state(loss)
    traces = []

    @jax.jit
    def step(params, state, data):
        traces.append(1)
        value, grad = vg(params, data, state=state, scale=2.0)
        updates, state = tx.update(
            grad,
            state,
            params,
            value=value,
            grad=grad,
            value_fn=loss,
            data=data,
            scale=2.0,
            unrelated=jnp.ones(3),
        )
        return optix.apply_updates(params, updates), state

    params = {"w": jnp.ones(3), "b": jnp.ones(2), "frozen": None}
    state = tx.init(params)
    layout = jax.tree.map(lambda x: (x.shape, x.dtype), state)
    data = jnp.asarray([0.5, 1.0, 2.0])
    for _ in range(5):
        params, state = step(params, state, data)
    assert len(traces) == 1
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == layout
    assert params["frozen"] is None and state[1].grad["frozen"] is None
    # The stored value is the objective with scale=2 at the params reached: data and scale
    # reached value_fn (unrelated was dropped), and value_and_grad_from_state reused it.
    np.testing.assert_allclose(state[1].value, loss(params, data, 2.0), rtol=1e-6)
    assert float(state[1].value) < 0.2 * float(
        loss({"w": jnp.ones(3), "b": jnp.ones(2)}, data, 2.0)
    )


def test_extra_args_reach_value_fn_and_unknown_ones_are_ignored(x64):
    def loss(params, target):
        return jnp.sum((params - target) ** 2)

    target, params = jnp.asarray([1.0, 2.0]), jnp.zeros(2)
    value, grad = jax.value_and_grad(loss)(params, target)
    tx = scale_by_zoom_linesearch(10)
    kwargs = dict(value=value, grad=grad, value_fn=loss, target=target)
    expected = tx.update(-grad, tx.init(params), params, **kwargs)
    actual = tx.update(-grad, tx.init(params), params, **kwargs, batch_index=3)
    jax.tree.map(np.testing.assert_array_equal, actual, expected)
    np.testing.assert_allclose(params + expected[0], target, rtol=1e-12)
    with pytest.raises(TypeError, match="not consumed"):
        optax.scale_by_zoom_linesearch(10).update(
            -grad,
            optax.scale_by_zoom_linesearch(10).init(params),
            params,
            **kwargs,
            batch_index=3,
        )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_params_search_in_float32(dtype):
    tx = scale_by_zoom_linesearch(20)
    fn, params, value, updates, state = low_precision_update(tx, dtype)
    assert int(state.info.status) == protocol.SUCCEEDED
    assert float(fn(optix.apply_updates(params, updates))) < 0.5 * float(value)


def test_float64_state_stays_float64(x64):
    params = jnp.asarray([1.0, 2.0])
    state = scale_by_zoom_linesearch(5).init(params)
    assert {x.dtype for x in jax.tree.leaves(state)} == {jnp.dtype("float64"), jnp.dtype("int32")}


def test_state_layout_and_signature_match_optax():
    ours, theirs = (
        optax_layout(5).init(jnp.ones(2)),
        optax.scale_by_zoom_linesearch(5).init(jnp.ones(2)),
    )
    assert type(ours).__name__ == type(theirs).__name__ == ScaleByZoomLinesearchState.__name__
    assert ours._fields == theirs._fields
    assert type(ours.info) is ZoomLinesearchInfo
    assert ZoomLinesearchInfo._fields == optax.ZoomLinesearchInfo._fields
    assert ZoomLinesearchInfoWithStatus._fields == (*optax.ZoomLinesearchInfo._fields, "status")
    kept = scale_by_zoom_linesearch(5).init(jnp.ones(2)).info
    assert type(kept) is ZoomLinesearchInfoWithStatus and int(kept.status) == protocol.SUCCEEDED
    params = lambda fn: [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
    assert params(optax_layout)[:-1] == params(optax.scale_by_zoom_linesearch)
    assert params(optax_layout)[-1] == ("keep_status", False)


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("max_linesearch_steps", 0, ">= 1"),
        ("max_learning_rate", 0.0, "> 0"),
        ("tol", -1.0, "finite and >= 0"),
        ("increase_factor", 1.0, "> 1"),
        ("slope_rtol", 1.0, "in [0, 1)"),
        ("curv_rtol", 1e-5, "> slope_rtol=0.0001"),
        ("approx_dec_rtol", -1e-6, "finite and >= 0"),
        ("stepsize_precision", -1.0, "finite and >= 0"),
        ("initial_guess_strategy", "two", "one of ('one', 'keep')"),
    ],
)
def test_arguments_are_validated(name, value, valid):
    message = f"scale_by_zoom_linesearch: {name} must be {valid}, got {name}={value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        scale_by_zoom_linesearch(**{"max_linesearch_steps": 3, name: value})
    with pytest.raises(TypeError, match="max_linesearch_steps must be an int"):
        scale_by_zoom_linesearch(2.5)


def test_update_without_the_objective_says_how_to_call_it():
    tx = scale_by_zoom_linesearch(3)
    params = jnp.ones(2)
    with pytest.raises(ValueError, match="needs value, value_fn: call update"):
        tx.update(params, tx.init(params), params, grad=params)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, tx.init(params), value=1.0, grad=params, value_fn=square)
