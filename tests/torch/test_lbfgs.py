"""optix.torch.lbfgs against torch.optim.LBFGS: trajectories, state and closure calls per step().

Both sides minimize the same objective written once for NumPy-like namespaces (jax.numpy
and torch) over params {"b": (3,), "w": (2, 3)}, flattened in that order (the order of
``jax.tree.leaves``). One optix ``update`` must equal one ``optimizer.step(closure)``.
"""

import copy
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim.lbfgs import _strong_wolfe

import optix
from optix.torch.quasi_newton import lbfgs
from optix.torch.strong_wolfe import strong_wolfe
from tests.reference import max_relative_difference

SHAPES = {"b": (3,), "w": (2, 3)}
N = 9
STEPS = 6
_rng = np.random.default_rng(0)
INITIAL = {k: _rng.normal(size=s) for k, s in SHAPES.items()}
# An ill-conditioned quadratic: eigenvalues 1 .. 1e3 in a random basis.
_Q, _ = np.linalg.qr(_rng.normal(size=(N, N)))
MATRIX = _Q @ np.diag(np.logspace(0, 3, N)) @ _Q.T
TARGET = _rng.normal(size=N)


def flat(params, xp):
    return xp.concatenate([params[k].reshape(-1) for k in SHAPES])


def quadratic(params, xp):
    v = flat(params, xp)
    e = v - xp.asarray(TARGET, dtype=v.dtype)
    return 0.5 * e @ xp.asarray(MATRIX, dtype=v.dtype) @ e


def rosenbrock(params, xp):
    v = flat(params, xp)
    return xp.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)


def ripples(params, xp):
    """A quadratic with ripples along the first coordinate."""
    v = flat(params, xp)
    return 0.5 * xp.sum(v * v) + xp.sin(5 * v[0])


# Each objective with its start: Rosenbrock from 0.3 * INITIAL, where torch's own trajectory
# moves by at most 1.5e-9 when the start moves by 1e-15 (from INITIAL, by 5e-9).
OBJECTIVES = {
    "quadratic": (quadratic, INITIAL),
    "rosenbrock": (rosenbrock, {k: 0.3 * v for k, v in INITIAL.items()}),
    "ripples": (ripples, {"b": np.asarray([-5.5, 0.0, 0.0]), "w": np.zeros((2, 3))}),
}


def lr_of(kwargs, step):
    """The lr of step ``step``: a Python float, or the schedule evaluated at the step."""
    lr = kwargs.get("lr", 1)
    return float(lr(step)) if callable(lr) else lr


def run_torch(problem, steps=STEPS, **kwargs):
    """Params, state and closure calls after every ``step(closure)`` of torch.optim.LBFGS."""
    objective, initial = OBJECTIVES[problem]
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in initial.items()
    }
    optimizer = torch.optim.LBFGS(list(tensors.values()), **(kwargs | {"lr": lr_of(kwargs, 0)}))
    calls = 0

    def closure():
        nonlocal calls
        calls += 1
        optimizer.zero_grad()
        loss = objective(tensors, torch)
        loss.backward()
        return loss

    trajectory, states = [], []
    for step in range(steps):
        optimizer.param_groups[0]["lr"] = lr_of(kwargs, step)
        optimizer.step(closure)
        trajectory.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
        # torch updates its lists and prev_flat_grad in place: keep a copy.
        state = copy.deepcopy(dict(optimizer.state[tensors["b"]]))
        states.append(state | {"calls": calls})
    return trajectory, states


def run_optix(problem, steps=STEPS, dtype=np.float64, **kwargs):
    """Params and state after every jitted ``update`` of optix.torch.lbfgs."""
    objective, initial = OBJECTIVES[problem]
    tx = lbfgs(**kwargs)
    params = {k: jnp.asarray(v, dtype) for k, v in initial.items()}
    value_fn = lambda p: objective(p, jnp)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(value_fn)(params)
        updates, state = tx.update(grads, state, params, value=value, value_fn=value_fn)
        return optix.apply_updates(params, updates), state

    state = tx.init(params)
    trajectory, states = [], []
    for _ in range(steps):
        params, state = step(params, state)
        trajectory.append(jax.tree.map(np.asarray, params))
        states.append(jax.tree.map(np.asarray, state))
    return trajectory, states


def history(state):
    """The optix ring buffers as torch's lists, oldest pair first."""
    size, count, start = len(state.ro), int(state.history_count), int(state.history_next)
    order = [(start - count + k) % size for k in range(count)]
    return state.old_dirs[order], state.old_stps[order], state.ro[order]


def to_numpy(x):
    return np.asarray(x.detach().numpy() if isinstance(x, torch.Tensor) else x, np.float64)


def relative(actual, expected):
    expected = to_numpy(expected)
    return float(
        np.max(
            np.abs(np.asarray(actual, np.float64) - expected) / np.maximum(np.abs(expected), 1e-3),
            initial=0,
        )
    )


def state_difference(ours, theirs):
    """Largest relative difference of the float state; counts must agree exactly."""
    assert int(ours.func_evals) == theirs["func_evals"] == theirs["calls"]
    assert int(ours.n_iter) == theirs["n_iter"]
    if theirs["n_iter"] == 0:
        return 0.0
    dirs, stps, ro = history(ours)
    assert len(ro) == len(theirs["old_dirs"])
    pairs = [
        (ours.d, theirs["d"]),
        (ours.t, theirs["t"]),
        (ours.H_diag, theirs["H_diag"]),
        (ours.prev_flat_grad, theirs["prev_flat_grad"]),
        (ours.prev_loss, theirs["prev_loss"]),
    ]
    if len(ro):
        pairs += [
            (dirs, torch.stack(theirs["old_dirs"])),
            (stps, torch.stack(theirs["old_stps"])),
            (ro, torch.stack(theirs["ro"])),
        ]
    return max(relative(a, e) for a, e in pairs)


def stop_reasons(problem, kwargs, before, after, params):
    """The stopping rules of torch's loop that hold at the end of one step()."""
    objective, _ = OBJECTIVES[problem]
    max_iter = kwargs.get("max_iter", 20)
    max_eval = kwargs.get("max_eval") or max_iter * 5 // 4
    tolerance_change = kwargs.get("tolerance_change", 1e-9)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    loss = objective(tensors, torch)
    loss.backward()
    grad = torch.cat([tensors[k].grad.reshape(-1) for k in SHAPES])
    iterations = after["n_iter"] - before.get("n_iter", 0)
    d, t = after["d"], after["t"]
    holds = {
        "optimal at start": iterations == 0,
        "max_iter": iterations == max_iter,
        "max_eval": after["func_evals"] - before.get("func_evals", 0) >= max_eval,
        "tolerance_grad": grad.abs().max() <= kwargs.get("tolerance_grad", 1e-7),
        "gtd": after["prev_flat_grad"].dot(d) > -tolerance_change,
        "step": (d * t).abs().max() <= tolerance_change,
        "loss change": abs(loss.item() - after["prev_loss"]) < tolerance_change,
    }
    return {name for name, held in holds.items() if held}


def lr_schedule(count):
    """A step length that changes at every update."""
    return 1.0 / (1.0 + 0.5 * jnp.asarray(count, jnp.result_type(float)))


WOLFE = {"line_search_fn": "strong_wolfe"}
# (problem, torch.optim.LBFGS arguments, float64 rtol). Where the rtol is above 1e-10,
# torch's own trajectory moves by that much when the start moves by 1e-15.
CASES = {
    "quadratic-default": ("quadratic", {}, 1e-10),
    "quadratic-strong_wolfe": ("quadratic", WOLFE, 1e-10),
    "quadratic-history_wraps": ("quadratic", {"lr": 0.5, "max_iter": 4, "history_size": 2}, 1e-10),
    "quadratic-max_eval": (
        "quadratic",
        {"lr": 0.3, "max_iter": 8, "max_eval": 5, "history_size": 3},
        1e-10,
    ),
    "quadratic-strong_wolfe-max_eval": (
        "quadratic",
        WOLFE | {"max_iter": 5, "max_eval": 7, "history_size": 3},
        1e-9,
    ),
    "rosenbrock-strong_wolfe": ("rosenbrock", WOLFE, 1e-9),
    "rosenbrock-strong_wolfe-history_wraps": (
        "rosenbrock",
        WOLFE | {"max_iter": 7, "history_size": 2},
        1e-9,
    ),
    "rosenbrock-fixed_step": ("rosenbrock", {"lr": 0.1, "max_iter": 6, "history_size": 4}, 1e-10),
    "rosenbrock-fixed_step-history_wraps": (
        "rosenbrock",
        {"lr": 0.02, "max_iter": 10, "history_size": 3},
        1e-10,
    ),
    "rosenbrock-max_iter_1": ("rosenbrock", {"lr": 1e-3, "max_iter": 1}, 1e-10),
    "rosenbrock-strong_wolfe-max_iter_1": ("rosenbrock", WOLFE | {"max_iter": 1}, 1e-10),
    "rosenbrock-schedule": ("rosenbrock", WOLFE | {"lr": lr_schedule, "max_iter": 5}, 1e-10),
    "rosenbrock-strong_wolfe-lr": (
        "rosenbrock",
        WOLFE | {"lr": 1e-3, "tolerance_change": 1e-4, "max_iter": 5},
        5e-9,
    ),
    # A line search that stops bracketing on f_new >= f_prev (test_line_search_* covers
    # the other branches one by one).
    "rippled": ("ripples", WOLFE | {"lr": 0.1, "max_iter": 10, "max_eval": 100}, 1e-10),
    # The stopping rules (test_stopping_rules_end_steps_as_in_torch checks which fired).
    "tolerance_grad": ("quadratic", WOLFE | {"tolerance_grad": 1e-3}, 1e-10),
    "tolerance_change-loss": ("quadratic", {"tolerance_change": 1e-3}, 1e-10),
    "tolerance_change-step": ("rosenbrock", {"lr": 1e-4, "tolerance_change": 1e-3}, 1e-10),
}
STOPS = {
    "max_iter": "quadratic-default",
    "max_eval": "rosenbrock-strong_wolfe-lr",
    "optimal at start": "tolerance_grad",
    "tolerance_grad": "tolerance_grad",
    "loss change": "tolerance_change-loss",
    "gtd": "tolerance_change-loss",
    "step": "tolerance_change-step",
}
# Cases whose float32 run follows torch's float64 one. In the others float32 rounding
# grows through the pairs or flips a line search decision: torch's own float32 runs
# leave its float64 ones by 4e-4 (quadratic-max_eval) to 0.15 (rosenbrock-strong_wolfe).
F32_CASES = [
    "quadratic-default",
    "quadratic-strong_wolfe",
    "rosenbrock-fixed_step-history_wraps",
    "rosenbrock-max_iter_1",
    "rosenbrock-strong_wolfe-max_iter_1",
    "tolerance_change-loss",
    "tolerance_change-step",
]
F32_RTOL = 3e-5
# Near convergence the pairs y = g - prev_flat_grad and ro = 1 / (y . s) are differences of
# nearly equal numbers: they amplify the trajectories' rounding differences (measured
# up to 1e-4 where the trajectories agree to 1e-12).
STATE_RTOL = 1e-3


@pytest.mark.parametrize("case", CASES)
def test_trajectory_state_and_closure_calls_match_torch(case, x64):
    problem, kwargs, rtol = CASES[case]
    expected, torch_states = run_torch(problem, **kwargs)
    actual, states = run_optix(problem, **kwargs)
    difference = max_relative_difference(actual, expected)
    assert difference <= rtol, f"trajectories differ by {difference:.3g}"
    assert max_relative_difference(expected[-1:], [OBJECTIVES[problem][1]]) > 1e-3
    state_diff = max(state_difference(o, t) for o, t in zip(states, torch_states, strict=True))
    assert state_diff <= STATE_RTOL, f"states differ by {state_diff:.3g}"


@pytest.mark.parametrize("case", F32_CASES)
def test_float32_follows_torch_float64(case):
    problem, kwargs, _ = CASES[case]
    expected, torch_states = run_torch(problem, **kwargs)
    actual, states = run_optix(problem, dtype=np.float32, **kwargs)
    assert max_relative_difference(actual, expected) <= F32_RTOL
    assert [int(s.func_evals) for s in states] == [s["func_evals"] for s in torch_states]
    assert all(s.d.dtype == np.float32 for s in states)


@pytest.mark.parametrize("rule", STOPS)
def test_stopping_rules_end_steps_as_in_torch(rule):
    problem, kwargs, _ = CASES[STOPS[rule]]
    trajectory, states = run_torch(problem, **kwargs)
    reasons = [
        stop_reasons(problem, kwargs, before, after, params)
        for before, after, params in zip([{}, *states[:-1]], states, trajectory, strict=True)
    ]
    fired = [r for r in reasons if rule in r and not r & {"max_iter", "max_eval"} - {rule}]
    if rule == "loss change":
        fired = [r for r in fired if "gtd" not in r]
    assert fired, reasons


def test_max_iter_1_with_default_max_eval_can_leave_the_params_fixed_forever(x64):
    """algorithms.md 1.16: max_eval = 1 leaves the line search its first evaluation only; a
    step that does not lower f gives t = 0, s = 0, no pair, the same d next time."""
    kwargs = WOLFE | {"lr": 100.0, "max_iter": 1}
    expected, torch_states = run_torch("quadratic", **kwargs)
    actual, states = run_optix("quadratic", **kwargs)
    for params in expected + actual:
        np.testing.assert_array_equal(params["w"], INITIAL["w"])
    assert [int(s.func_evals) for s in states] == [s["func_evals"] for s in torch_states]
    assert [int(s.func_evals) for s in states] == [2 * (k + 1) for k in range(STEPS)]
    assert all(float(s.t) == 0.0 for s in states)


def barrier(params, xp):
    """Minimum 9 at v = 1; NaN where some v < 0 (torch and jax give log(-1) = NaN)."""
    v = flat(params, xp)
    return xp.sum(v - xp.log(v))


OBJECTIVES["barrier"] = (barrier, {k: 2.0 + np.abs(v) for k, v in INITIAL.items()})


@pytest.mark.parametrize(
    ("kwargs", "expected_value"),
    [({"lr": 10}, None), ({"lr": 100, "line_search_fn": "strong_wolfe"}, 9.0)],
    ids=["fixed_step", "strong_wolfe"],
)
def test_nan_values_leave_params_and_state_finite_where_torch_diverges(kwargs, expected_value, x64):
    torch_params, _ = run_torch("barrier", steps=3, **kwargs)
    # torch has left the domain: its objective is NaN there.
    assert np.min(flat(torch_params[-1], np)) < 0
    trajectory, states = run_optix("barrier", steps=3, **kwargs)
    start = barrier(OBJECTIVES["barrier"][1], np)
    values = [barrier(params, np) for params in trajectory]
    assert all(np.isfinite(values)) and values[-1] < start
    for state in states:
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))
    nonfinite = [int(s.nonfinite_evals) for s in states]
    assert nonfinite[0] >= 1
    if expected_value is None:
        # The fixed step into the NaN region is undone, at every update: the params stay
        # at the last finite point and the count shows why.
        assert nonfinite == [nonfinite[0] + k for k in range(3)]
        np.testing.assert_array_equal(trajectory[1]["w"], trajectory[2]["w"])
        assert all(float(s.t) == 0.0 for s in states)
    else:
        # The line search bisects back from the NaN trial points and converges.
        assert values[-1] == pytest.approx(expected_value, abs=1e-6)


def test_nan_value_at_the_params_makes_no_step():
    tx = lbfgs()
    params = {"x": jnp.ones(3)}
    state = tx.init(params)
    value_fn = lambda p: jnp.sum(p["x"]) * jnp.nan
    updates, state = tx.update(
        {"x": jnp.full(3, jnp.nan)}, state, params, value=jnp.asarray(jnp.nan), value_fn=value_fn
    )
    np.testing.assert_array_equal(updates["x"], np.zeros(3))
    assert (int(state.func_evals), int(state.n_iter), int(state.nonfinite_evals)) == (1, 0, 1)


def test_zero_gradient_returns_at_once_like_torch(x64):
    """torch returns after the first closure call when max|g| <= tolerance_grad."""
    tx = lbfgs()
    params = {"x": jnp.asarray([1.0, 2.0])}
    value_fn = lambda p: jnp.sum((p["x"] - jnp.asarray([1.0, 2.0])) ** 2)
    value, grads = jax.value_and_grad(value_fn)(params)
    updates, state = tx.update(grads, tx.init(params), params, value=value, value_fn=value_fn)
    np.testing.assert_array_equal(updates["x"], np.zeros(2))
    assert (int(state.func_evals), int(state.n_iter), int(state.count)) == (1, 0, 1)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_extra_args_reach_value_fn_by_signature_and_grad_keyword_works(line_search_fn):
    tx = lbfgs(max_iter=4, line_search_fn=line_search_fn)
    params = {"x": jnp.asarray([3.0, -1.0])}
    target = jnp.asarray([1.0, 2.0])

    def value_fn(p, target):
        return jnp.sum((p["x"] - target) ** 2 * jnp.asarray([1.0, 10.0]))

    closed = lambda p: value_fn(p, target)
    value, grads = jax.value_and_grad(closed)(params)
    state = tx.init(params)
    expected, expected_state = tx.update(grads, state, params, value=value, value_fn=closed)
    forwarded, forwarded_state = tx.update(
        None, state, params, value=value, grad=grads, value_fn=value_fn, target=target, seed=3
    )
    np.testing.assert_array_equal(forwarded["x"], expected["x"])
    assert int(forwarded_state.func_evals) == int(expected_state.func_evals) > 2


def test_update_without_value_fn_says_how_to_call_it():
    tx = lbfgs()
    params = {"x": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"optix.torch.lbfgs needs value_fn: call update"):
        tx.update(params, tx.init(params), params, value=jnp.asarray(1.0))


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_jit_compiles_once_and_state_keeps_its_structure(line_search_fn):
    tx = lbfgs(max_iter=3, history_size=2, line_search_fn=line_search_fn)
    value_fn = lambda p: quadratic(p, jnp)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        value, grads = jax.value_and_grad(value_fn)(params)
        updates, state = tx.update(grads, state, params, value=value, value_fn=value_fn)
        return optix.apply_updates(params, updates), state

    params = {k: jnp.asarray(v, jnp.float32) for k, v in INITIAL.items()}
    state = tx.init(params)
    structure = jax.tree.map(lambda x: (x.shape, x.dtype), state)
    for _ in range(4):
        params, state = step(params, state)
    assert len(traces) == 1
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == structure
    assert int(state.history_count) == 2


def test_arguments_and_defaults_match_torch():
    ours = inspect.signature(lbfgs).parameters
    theirs = inspect.signature(torch.optim.LBFGS.__init__).parameters
    assert list(ours) == [n for n in theirs if n not in ("self", "params")]
    for name, param in ours.items():
        assert param.default == theirs[name].default, name


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": -1.0}, ValueError, "optix.torch.lbfgs: lr must be finite and >= 0, got lr=-1.0"),
        ({"max_iter": 0}, ValueError, "optix.torch.lbfgs: max_iter must be >= 1, got max_iter=0"),
        ({"max_iter": 2.5}, TypeError, "optix.torch.lbfgs: max_iter must be an int"),
        ({"max_eval": 0}, ValueError, "optix.torch.lbfgs: max_eval must be >= 1, got max_eval=0"),
        (
            {"history_size": -2},
            ValueError,
            "optix.torch.lbfgs: history_size must be >= 1, got history_size=-2",
        ),
        (
            {"tolerance_grad": -1e-7},
            ValueError,
            "optix.torch.lbfgs: tolerance_grad must be finite and >= 0",
        ),
        (
            {"tolerance_change": float("nan")},
            ValueError,
            "optix.torch.lbfgs: tolerance_change must be finite and >= 0",
        ),
        (
            {"line_search_fn": "backtracking"},
            ValueError,
            "optix.torch.lbfgs: line_search_fn must be one of (None, 'strong_wolfe'), "
            "got line_search_fn='backtracking'",
        ),
    ],
)
def test_bad_arguments_raise(kwargs, error, message):
    with pytest.raises(error) as info:
        lbfgs(**kwargs)
    assert message in str(info.value)


# Line functions phi(t) -> (value, slope) for torch's _strong_wolfe and optix's strong_wolfe,
# computed by the same formulas on both sides so both searches see identical numbers.
def bowl(t, xp):
    return (t - 1.0) ** 2, 2.0 * (t - 1.0)


def kink(t, xp):
    """|t - 1| smoothed over 1e-12: the zoom shrinks its bracket below 1e-9 around 1."""
    r = xp.sqrt(1e-24 + (t - 1.0) ** 2)
    return r, (t - 1.0) / r


def leaning_kink(t, xp):
    """An asymmetric kink: the zoom's cubic steps land next to the bracket ends."""
    r = xp.sqrt(1e-6 + (t - 1.0) ** 2)
    return r + 0.8 * (t - 1.0), (t - 1.0) / r + 0.8


def bump(center, height, width, curvature=0.0):
    """Descent (from slope -1, curving up by ``curvature``) with a bump that the
    extrapolation lands on."""

    def phi(t, xp):
        e = xp.exp(-(((t - center) / width) ** 2))
        value = -t + 0.5 * curvature * t**2 + height * e
        return value, -1.0 + curvature * t - 2.0 * height * e * (t - center) / width**2

    return phi


def barrier_line(t, xp):
    """A log barrier: +inf at t = 2, NaN beyond."""
    return (t - 1.5) ** 2 - xp.log(2.0 - t), 2.0 * (t - 1.5) + 1.0 / (2.0 - t)


LINE_SEARCHES = {
    # name: (phi, first step, max_ls)
    "wolfe_at_first_step": (bowl, 1.0, 25),
    "extrapolate": (bowl, 0.01, 25),
    "armijo_fails": (bowl, 100.0, 25),
    "bracket_below_1e-9": (kink, 3.0, 25),
    "uphill_then_zoom": (kink, 1.5, 25),
    "old_high_becomes_low": (kink, 0.1, 25),
    "insufficient_progress": (leaning_kink, 3.0, 25),
    # torch compares f_new with f_prev from the third evaluation on, not the second.
    "f_new_above_f_prev": (bump(10.0, 9.5, 2.0), 0.1, 25),
    "f_new_above_f_prev_at_second_step": (bump(0.95, 0.95, 0.2, curvature=0.1), 0.1, 25),
    "budget_runs_out": (kink, 0.1, 2),
    "no_budget_worse": (kink, 3.0, 0),
    "no_budget_better": (kink, 0.5, 0),
}


def torch_line_search(phi, t, max_ls):
    def obj_func(x, t, d):
        f, g = phi(torch.as_tensor(x[0] + t * d[0], dtype=torch.float64), torch)
        return float(f), g.reshape(1)

    f, g = phi(torch.tensor(0.0, dtype=torch.float64), torch)
    d = torch.ones(1, dtype=torch.float64)
    f_new, g_new, t, evals = _strong_wolfe(
        obj_func,
        torch.zeros(1, dtype=torch.float64),
        t,
        d,
        float(f),
        g.reshape(1),
        g,
        max_ls=max_ls,
    )
    return float(f_new), float(g_new[0]), float(t), evals


def optix_line_search(phi, t, max_ls):
    def evaluate(t):
        f, g = phi(t, jnp)
        return f, g.reshape(1)

    f, g = phi(jnp.zeros([]), jnp)
    search = jax.jit(lambda t: strong_wolfe(evaluate, t, jnp.ones(1), f, g.reshape(1), g, max_ls))
    f_new, g_new, t, evals, nonfinite = search(jnp.asarray(t))
    return float(f_new), float(g_new[0]), float(t), int(evals), int(nonfinite)


@pytest.mark.parametrize("case", LINE_SEARCHES)
def test_line_search_matches_torch_strong_wolfe(case, x64):
    expected = torch_line_search(*LINE_SEARCHES[case])
    *actual, nonfinite = optix_line_search(*LINE_SEARCHES[case])
    assert actual[3] == expected[3]
    np.testing.assert_allclose(actual[:3], expected[:3], rtol=1e-12, atol=1e-14)
    assert nonfinite == 0


def test_line_search_bisects_back_from_nan_where_torch_returns_nan(x64):
    assert np.isnan(torch_line_search(barrier_line, 10.0, 25)[0])
    f, g, t, evals, nonfinite = optix_line_search(barrier_line, 10.0, 25)
    assert 0 < t < 2 and np.isfinite([f, g]).all()
    assert f < barrier_line(0.0, np)[0] and nonfinite >= 1 and evals > nonfinite
