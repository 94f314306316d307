"""L-BFGS against Optax and a NumPy two-loop recursion: whole trajectories, float64 and float32.

With the zoom line search the runs are driven as Optax documents them: a jitted loop
that reads value and gradient back from the state (``value_and_grad_from_state``).
"""

import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.core import chain
from optix.optimizers.lbfgs import ZOOM_LINESEARCH, ScaleByLBFGSState, lbfgs, scale_by_lbfgs
from optix.transforms.linesearch_protocol import value_and_grad_from_state
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.zoom_linesearch import scale_by_zoom_linesearch
from tests.reference import (
    DTYPES,
    SCHEDULES,
    compare,
    max_relative_difference,
)
from tests.references.lbfgs import TwoLoop, run_two_loop
from tests.registry import ENTRIES

STEPS = 30


def rosenbrock(params):
    x = params["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


_RNG = np.random.default_rng(0)
_Q, _ = np.linalg.qr(_RNG.normal(size=(16, 16)))
_HESSIAN = _Q @ np.diag(np.logspace(0.0, 3.0, 16)) @ _Q.T  # condition number 1e3
_LINEAR = _RNG.normal(size=16)
_FEATURES = _RNG.normal(size=(64, 5))
_LABELS = np.sign(_FEATURES @ _RNG.normal(size=5) + 0.5 * _RNG.normal(size=64))


def quadratic(params):
    x = jnp.concatenate([params["w"].reshape(-1), params["b"]])
    hessian, linear = jnp.asarray(_HESSIAN, x.dtype), jnp.asarray(_LINEAR, x.dtype)
    return 0.5 * x @ (hessian @ x) - linear @ x


def logistic(params):
    w, b = params["w"], params["b"]
    margins = jnp.asarray(_LABELS, w.dtype) * (jnp.asarray(_FEATURES, w.dtype) @ w + b)
    return jnp.mean(jax.nn.softplus(-margins)) + 5e-3 * jnp.sum(w * w)


PROBLEMS = {
    "rosenbrock2": (rosenbrock, {"x": np.array([-1.2, 1.0])}),
    "rosenbrock10": (rosenbrock, {"x": np.tile([-1.2, 1.0], 5)}),
    "quadratic": (quadratic, {"w": np.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": np.ones(4)}),
    "logistic": (logistic, {"w": np.zeros(5), "b": np.asarray(0.3)}),
}
CONVEX = ["quadratic", "logistic"]


def drive(lib, tx, problem, dtype, steps=STEPS, linesearch=True):
    """Params after every step (float64 NumPy) and the value_fn evaluations of each search.

    One jitted ``lax.scan`` runs the whole loop; Optax runs with its standard promotion.
    """
    f, start = PROBLEMS[problem]
    from_state = value_and_grad_from_state if lib is optix else optax.value_and_grad_from_state
    apply = optix.apply_updates if lib is optix else optax.apply_updates

    def body(carry, _):
        params, state = carry
        if linesearch:
            value, grad = from_state(f)(params, state=state)
            updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
            evaluations = state[-1].info.num_linesearch_steps
        else:
            updates, state = tx.update(jax.grad(f)(params), state, params)
            evaluations = jnp.zeros([], jnp.int32)
        params = apply(params, updates)
        return (params, state), (params, evaluations)

    promotion = "standard" if lib is optax else "strict"
    with jax.enable_x64(dtype == np.float64), jax.numpy_dtype_promotion(promotion):
        params = jax.tree.map(lambda x: jnp.asarray(x, dtype), start)
        run = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), length=steps)[1])
        trajectory, evaluations = run(params)
        trajectory = jax.tree.map(lambda x: np.asarray(x, np.float64), trajectory)
    steps_out = [jax.tree.map(lambda x, t=t: x[t], trajectory) for t in range(steps)]
    return steps_out, np.asarray(evaluations)


def varying_lr(count):
    return 0.5 * (1.0 + 0.5 * jnp.sin(jnp.asarray(count, jnp.result_type(float))))


def make(lib, mode):
    """L-BFGS of ``lib`` for a mode: the default zoom line search, or a learning rate."""
    if mode == "zoom":
        return lib.lbfgs() if lib is optax else lbfgs()
    lr = 0.5 if mode == "constant_lr" else varying_lr
    return lib.lbfgs(lr, linesearch=None) if lib is optax else lbfgs(lr, linesearch=None)


@functools.cache
def cached_run(lib_name, mode, problem, dtype):
    """``drive`` of ``make(lib, mode)``; each run compiles once per test session."""
    lib = optix if lib_name == "optix" else optax
    return drive(lib, make(lib, mode), problem, dtype, linesearch=mode == "zoom")


def assert_close(actual, expected, rtol):
    """The whole trajectories agree to ``rtol`` (relative, floored at 1e-3) and they moved."""
    difference = max_relative_difference(actual, expected)
    assert difference <= rtol, f"trajectories differ by {difference:.3g} > rtol={rtol:.3g}"
    assert max_relative_difference(actual[-1:], actual[:1]) > 1e-2


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_zoom_lbfgs_matches_optax_in_float64(problem):
    actual, evaluations = cached_run("optix", "zoom", problem, np.float64)
    expected, expected_evaluations = cached_run("optax", "zoom", problem, np.float64)
    assert_close(actual, expected, 1e-8)  # measured: 0 (bit-identical) on all four
    np.testing.assert_array_equal(evaluations, expected_evaluations)
    f, start = PROBLEMS[problem]
    with jax.enable_x64(True):
        first, last = float(f(start)), float(f(jax.tree.map(jnp.asarray, actual[-1])))
    assert last < first - 0.3 * abs(first)


def test_zoom_searches_beyond_the_first_trial_step():
    """The trajectories above exercise the bracketing and zoom phases, not only eta = 1."""
    evaluations = np.concatenate(
        [cached_run("optix", "zoom", problem, np.float64)[1] for problem in PROBLEMS]
    )
    assert evaluations.max() >= 3 and np.mean(evaluations > 1) > 0.1


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_zoom_lbfgs_matches_optax_in_float32(problem):
    """Same float32 arithmetic as Optax's float32 run (measured: bit-identical).

    Rosenbrock's float32 runs leave the float64 path after ~10 steps (Optax's own float32
    run differs from its float64 run by 0.9 there), so float32 is held to Optax float32.
    """
    actual, _ = cached_run("optix", "zoom", problem, np.float32)
    expected, _ = cached_run("optax", "zoom", problem, np.float32)
    assert_close(actual, expected, 1e-6)


# Measured max relative difference of optix float32 from Optax float64, rounded up. The
# quadratic's condition number 1e3 amplifies float32 rounding in the curvature pairs;
# Optax's float32 run has the same difference (it is bit-identical to ours).
F32_VS_F64 = {
    ("quadratic", "zoom"): 3e-2,
    ("logistic", "zoom"): 2e-5,
    ("quadratic", "constant_lr"): 1e-3,
    ("logistic", "constant_lr"): 3e-6,
    ("quadratic", "lr_every_step"): 7e-2,
    ("logistic", "lr_every_step"): 1e-5,
}


@DTYPES
@pytest.mark.parametrize("mode", ["zoom", "constant_lr", "lr_every_step"])
@pytest.mark.parametrize("problem", CONVEX)
def test_lbfgs_on_convex_problems_matches_optax(problem, mode, dtype):
    expected, _ = cached_run("optax", mode, problem, np.float64)
    actual, _ = cached_run("optix", mode, problem, dtype)
    if dtype == np.float64:
        assert_close(actual, expected, 1e-10)  # measured: 0
        return
    assert_close(actual, expected, F32_VS_F64[problem, mode])
    assert_close(actual, cached_run("optax", mode, problem, np.float32)[0], 1e-6)


# (memory_size, scale_init_precond, float32 tolerance measured against the float64
# reference). On random gradients the scaled runs shrink their steps below 1e-12 of the
# params within a few updates; float32 cannot resolve those steps (s = 0), skips pairs
# that float64 keeps and restarts from min(1, 1/||g||), so the small scaled memories are
# compared in float64 only. Unscaled, the x1000 gradient makes huge steps through badly
# conditioned pairs: float64 agrees to 1e-12, float32 to 4e-4.
TWO_LOOP_CASES = [
    (10, True, ENTRIES["lbfgs"].f32_rtol),  # measured 8.0e-6
    (3, False, 5e-4),  # measured 3.9e-4
    (3, True, None),
    (1, True, None),
]
TWO_LOOP_PARAMS = [
    pytest.param(m, scaled, dtype, rtol, id=f"m{m}-{'scaled' if scaled else 'unscaled'}-{name}")
    for m, scaled, rtol in TWO_LOOP_CASES
    for dtype, name in [(np.float64, "f64"), (np.float32, "f32")]
    if rtol is not None or dtype == np.float64
]


@SCHEDULES
@pytest.mark.parametrize(("memory_size", "scaled", "dtype", "f32_rtol"), TWO_LOOP_PARAMS)
def test_scale_by_lbfgs_matches_numpy_two_loop(memory_size, scaled, dtype, f32_rtol, schedule):
    """Random gradients: many pairs have s.y <= 0 and are skipped, the ring wraps."""
    _, two_loop = run_two_loop(schedule, memory_size, scaled)
    assert two_loop.accepted > memory_size and two_loop.skipped > 0
    compare(
        lambda lr: chain(scale_by_lbfgs(memory_size, scaled), scale_by_learning_rate(lr)),
        lambda dt, sched: run_two_loop(sched, memory_size, scaled)[0],
        dtype,
        schedule,
        f32_rtol,
        same_dtype_reference=False,
    )


def signature(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_state_layout_is_optax_layout(dtype):
    params = {"w": jnp.ones((3, 4), dtype), "b": jnp.zeros(4, dtype)}
    ours, theirs = scale_by_lbfgs(5).init(params), optax.scale_by_lbfgs(5).init(params)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours._fields == theirs._fields
    for mine, optax_field in zip(ours, theirs, strict=True):
        assert signature(mine) == signature(optax_field)


def test_optax_state_resumes_in_optix(x64):
    """An Optax L-BFGS state, field by field, continues an Optax run in optix."""
    f, start = PROBLEMS["quadratic"]
    params = jax.tree.map(jnp.asarray, start)
    theirs = optax.lbfgs(0.5, memory_size=4, linesearch=None)
    state, update = theirs.init(params), jax.jit(theirs.update)
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(6):
            updates, state = update(jax.grad(f)(params), state, params)
            params = optax.apply_updates(params, updates)
        middle, middle_state, expected = params, state, []
        for _ in range(5):
            updates, state = update(jax.grad(f)(params), state, params)
            params = optax.apply_updates(params, updates)
            expected.append(params)
    ours = lbfgs(0.5, memory_size=4, linesearch=None)
    assert len(middle_state) == 3  # (L-BFGS, learning rate, no line search)
    state = (ScaleByLBFGSState(*middle_state[0]), optix.EmptyState(), optix.EmptyState())
    assert signature(state) == signature(ours.init(middle))
    params, update = middle, jax.jit(ours.update)
    for step in expected:
        updates, state = update(jax.grad(f)(params), state, params)
        params = optix.apply_updates(params, updates)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), params, step)


def directions(tx, steps, promotion="strict"):
    """Outputs and final state of ``tx`` fed explicit (params, gradient) pairs."""
    params = {"x": jnp.asarray(steps[0][0])}
    state, outputs, update = tx.init(params), [], jax.jit(tx.update)
    with jax.numpy_dtype_promotion(promotion):
        for p, g in steps:
            u, state = update({"x": jnp.asarray(g)}, state, {"x": jnp.asarray(p)})
            outputs.append(np.asarray(u["x"]))
    return outputs, state


# s.y = 2 > 0 at step 1 (stored), then s.y = -2 < 0 at step 2 (negative curvature).
NEGATIVE_CURVATURE = [([0.0, 0.0], [1.0, 1.0]), ([1.0, 0.0], [3.0, 1.0]), ([2.0, 0.0], [1.0, 1.0])]


def test_negative_curvature_pair_is_skipped():
    outputs, state = directions(scale_by_lbfgs(3), NEGATIVE_CURVATURE)
    # The stored pair s = (1, 0), y = (2, 0), gamma = 1/2 applied to g = (1, 1):
    np.testing.assert_allclose(outputs[-1], [0.5, 0.5], rtol=1e-7)
    two_loop = TwoLoop(3)
    expected = [two_loop.direction(np.asarray(p), np.asarray(g)) for p, g in NEGATIVE_CURVATURE]
    np.testing.assert_allclose(outputs[-1], expected[-1], rtol=1e-7)
    assert (two_loop.accepted, two_loop.skipped) == (1, 1)
    # The pair of update 1 stays in slot (1 - 1) % 3; slot (2 - 1) % 3 of update 2 is empty.
    np.testing.assert_allclose(state.weights_memory, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(state.diff_params_memory["x"], [[1, 0], [0, 0], [0, 0]])
    np.testing.assert_allclose(state.diff_updates_memory["x"], [[2, 0], [0, 0], [0, 0]])
    assert np.dot(outputs[-1], NEGATIVE_CURVATURE[-1][1]) > 0  # a descent direction
    optax_outputs, _ = directions(optax.scale_by_lbfgs(3), NEGATIVE_CURVATURE, "standard")
    np.testing.assert_allclose(optax_outputs[:2], outputs[:2], rtol=1e-7)
    np.testing.assert_allclose(optax_outputs[-1], [-0.5, -0.5], rtol=1e-7)  # uphill


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_never_enters_the_memory(bad):
    steps = [([0.0, 0.0], [1.0, 1.0]), ([1.0, 0.0], [3.0, 1.0]), ([2.0, 0.0], [bad, 1.0])]
    steps += [([2.5, 0.5], [2.0, 0.5]), ([3.0, 1.0], [2.5, 1.0])]
    outputs, state = directions(scale_by_lbfgs(3), steps)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))
    assert np.all(np.isfinite(outputs[3])) and np.all(np.isfinite(outputs[4]))
    two_loop = TwoLoop(3)
    with np.errstate(invalid="ignore"):  # the direction at the bad gradient is NaN
        expected = [two_loop.direction(np.asarray(p), np.asarray(g)) for p, g in steps]
    np.testing.assert_allclose(outputs[4], expected[4], rtol=1e-6)
    assert (two_loop.accepted, two_loop.skipped) == (2, 2)  # skipped: into and out of it
    optax_outputs, optax_state = directions(optax.scale_by_lbfgs(3), steps, "standard")
    assert not np.all(np.isfinite(optax_outputs[4]))
    assert not all(np.all(np.isfinite(x)) for x in jax.tree.leaves(optax_state))


def test_first_step_is_the_capped_inverse_norm_and_unscaled_is_the_gradient():
    steps = [([0.0, 0.0], [3.0, 4.0])]
    np.testing.assert_allclose(directions(scale_by_lbfgs(), steps)[0][0], [0.6, 0.8], rtol=1e-7)
    small = [([0.0, 0.0], [0.3, 0.4])]
    np.testing.assert_allclose(directions(scale_by_lbfgs(), small)[0][0], [0.3, 0.4], rtol=1e-7)
    unscaled = directions(scale_by_lbfgs(scale_init_precond=False), steps)[0][0]
    np.testing.assert_allclose(unscaled, [3.0, 4.0])
    zero = directions(scale_by_lbfgs(), [([1.0, 2.0], [0.0, 0.0])])[0][0]
    np.testing.assert_array_equal(zero, [0.0, 0.0])


def test_complex_params_match_optax(x64):
    """A convex quadratic in complex parameters (Optax supports complex L-BFGS too)."""
    target = jnp.asarray([1.0 + 2.0j, -0.5j, 3.0 + 0.0j])
    weights = jnp.asarray([1.0, 4.0, 9.0])

    def f(p):
        return jnp.sum(weights * jnp.abs(p["z"] - target) ** 2)

    def run(tx, apply, promotion):
        params, trajectory = {"z": jnp.zeros(3, jnp.complex128)}, []
        state, update = tx.init(params), jax.jit(tx.update)
        with jax.numpy_dtype_promotion(promotion):
            for _ in range(8):
                updates, state = update(jax.tree.map(jnp.conj, jax.grad(f)(params)), state, params)
                params = apply(params, updates)
                trajectory.append(np.asarray(params["z"]))
        return np.asarray(trajectory)

    actual = run(lbfgs(0.1, linesearch=None), optix.apply_updates, "strict")
    expected = run(optax.lbfgs(0.1, linesearch=None), optax.apply_updates, "standard")
    np.testing.assert_allclose(actual, expected, rtol=1e-10)
    assert np.abs(actual[-1]).max() > 0.5


def test_converges_on_rosenbrock(x64):
    actual, _ = drive(optix, lbfgs(), "rosenbrock2", np.float64, steps=45)
    np.testing.assert_allclose(actual[-1]["x"], [1.0, 1.0], atol=1e-8)


def test_jit_compiles_once_with_a_stable_state():
    f, start = PROBLEMS["rosenbrock10"]
    tx, traces = lbfgs(memory_size=3), []
    value_and_grad = value_and_grad_from_state(f)

    @jax.jit
    def step(params, state):
        traces.append(1)
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        return optix.apply_updates(params, updates), state

    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), start)
    state = initial = tx.init(params)
    for _ in range(6):  # the ring of 3 wraps
        params, state = step(params, state)
    assert len(traces) == 1
    assert signature(state) == signature(initial)
    assert float(f(params)) < 0.5 * float(f(start))


def test_default_linesearch_is_optax_default():
    """Built once at import (hashable, holds no arrays) with Optax's default arguments."""
    default = inspect.signature(lbfgs).parameters["linesearch"].default
    assert default is ZOOM_LINESEARCH and hash(default) == hash(ZOOM_LINESEARCH)
    explicit = lbfgs(linesearch=scale_by_zoom_linesearch(20, initial_guess_strategy="one"))
    actual, evaluations = cached_run("optix", "zoom", "logistic", np.float64)
    expected, expected_evaluations = drive(optix, explicit, "logistic", np.float64)
    assert max_relative_difference(actual, expected) == 0.0
    np.testing.assert_array_equal(evaluations, expected_evaluations)
    assert evaluations.max() == 20  # the budget of 20 is reached near the optimum
    assert parameters(scale_by_lbfgs) == parameters(optax.scale_by_lbfgs)
    ours, theirs = parameters(lbfgs), parameters(optax.lbfgs)
    # Optax's default is its own zoom instance: same arguments, not the same object.
    assert ours[:-1] == theirs[:-1] and ours[-1][:2] == theirs[-1][:2] == ("linesearch", 1)


def parameters(fn):
    return [(p.name, int(p.kind), p.default) for p in inspect.signature(fn).parameters.values()]


def test_chain_order_is_optax_chain_order():
    params = {"x": jnp.zeros(2)}
    assert [type(s).__name__ for s in lbfgs().init(params)] == [
        "ScaleByLBFGSState",
        "EmptyState",
        "ScaleByZoomLinesearchState",
    ]
    assert [type(s).__name__ for s in lbfgs(0.1, linesearch=None).init(params)] == [
        "ScaleByLBFGSState",
        "EmptyState",
        "EmptyState",
    ]
    scheduled = lbfgs(lambda count: 0.1, linesearch=None).init(params)
    assert [type(s).__name__ for s in scheduled] == [
        "ScaleByLBFGSState",
        "ScaleByScheduleState",
        "EmptyState",
    ]


@pytest.mark.parametrize(
    ("make_tx", "error", "message"),
    [
        (
            lambda: scale_by_lbfgs(0),
            ValueError,
            "scale_by_lbfgs: memory_size must be >= 1, got memory_size=0",
        ),
        (
            lambda: scale_by_lbfgs(2.0),
            TypeError,
            "scale_by_lbfgs: memory_size must be an int, got memory_size=2.0",
        ),
        (
            lambda: lbfgs(memory_size=0),
            ValueError,
            "lbfgs: memory_size must be >= 1, got memory_size=0",
        ),
        (
            lambda: lbfgs(float("nan")),
            ValueError,
            "lbfgs: learning_rate must be finite, got learning_rate=nan",
        ),
    ],
)
def test_invalid_arguments_are_rejected(make_tx, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        make_tx()


def test_update_without_params_says_how_to_call_it():
    tx = scale_by_lbfgs()
    state = tx.init({"x": jnp.zeros(2)})
    with pytest.raises(ValueError, match="scale_by_lbfgs needs the current params"):
        tx.update({"x": jnp.ones(2)}, state)


def test_float32_gradients_of_bfloat16_params_keep_every_dtype():
    tx = scale_by_lbfgs(2)
    params = {"w": jnp.linspace(-1.0, 1.0, 6, dtype=jnp.bfloat16)}
    state = initial = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(4):
        grads = {"w": 3.0 * params["w"].astype(jnp.float32) + 1.0}  # a convex quadratic
        updates, state = update(grads, state, params)
        assert updates["w"].dtype == jnp.float32
        params = optix.apply_updates(params, jax.tree.map(lambda u: -0.1 * u, updates))
    assert signature(state) == signature(initial)
    assert int(jnp.sum(state.weights_memory > 0)) == 2
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
