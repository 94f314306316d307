"""Damped Newton and Newton-CG against NumPy transliterations, SciPy and closed forms."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import optix
from optix.optimizers import truncated_newton as cg_module
from optix.optimizers.damped_newton import newton, scale_by_newton
from optix.optimizers.truncated_newton import newton_cg, scale_by_newton_cg
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    STEPS,
    assert_trajectories_close,
    gradient_sequence,
    initial_params,
    learning_rates,
    lr_schedule,
)
from tests.references.newton import cg_direction, damped_newton_direction
from tests.registry.newton import F32_RTOL

KEYS = sorted(initial_params())  # the order in which jax.tree.leaves visits the params
N = sum(initial_params()[k].size for k in KEYS)
QUARTIC = 0.01


def hessians() -> list[np.ndarray]:
    """One symmetric matrix per step: positive definite, indefinite with a positive
    diagonal (tau grows from 0), with a negative diagonal entry (tau starts at
    beta - min diag), or negative definite (CG's first-step fallback)."""
    rng = np.random.default_rng(3)
    out = []
    for t in range(STEPS):
        q, _ = np.linalg.qr(rng.normal(size=(N, N)))
        eigenvalues = rng.uniform(0.5, 3.0, N)
        if t % 4 == 1:
            eigenvalues[0] = -0.8
        if t % 4 == 3:
            eigenvalues[:3] = -1.7
        if t == 7:
            eigenvalues = -eigenvalues
        out.append(q @ np.diag(eigenvalues) @ q.T)
    return out


HESSIANS = hessians()


def flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(params[k], np.float64)) for k in KEYS])


def unflat(x: np.ndarray) -> dict:
    out, start = {}, 0
    for k in KEYS:
        shape = initial_params()[k].shape
        out[k] = x[start : start + int(np.prod(shape))].reshape(shape)
        start += int(np.prod(shape))
    return out


def objective(params, hessian):
    """0.5 x.Ax + QUARTIC/4 sum x**4 for the flattened params x; A comes as an extra arg."""
    x = jnp.concatenate([jnp.ravel(params[k]) for k in KEYS])
    return 0.5 * x @ hessian.astype(x.dtype) @ x + 0.25 * QUARTIC * jnp.sum(x**4)


def np_hessian(x, t):
    return HESSIANS[t] + np.diag(3 * QUARTIC * x**2)


def run_optix(tx, dtype):
    """Params after every step: update(g_t, ..., value_fn=objective, hessian=A_t)."""
    params = {k: jnp.asarray(v, dtype) for k, v in initial_params().items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads, hessian):
        updates, state = tx.update(
            grads, state, params, value_fn=objective, hessian=hessian, unused=1.0
        )
        return optix.apply_updates(params, updates), state

    trajectory = []
    for t, g in enumerate(gradient_sequence()):
        grads = {k: jnp.asarray(v, dtype) for k, v in g.items()}
        params, state = step(params, state, grads, jnp.asarray(HESSIANS[t], dtype))
        trajectory.append(jax.tree.map(np.asarray, params))
    return trajectory


def run_reference(direction, schedule):
    """x <- x - lr_t * direction(x, g_t, t), float64, on the gradient sequence."""
    lrs = learning_rates() if schedule else [CONSTANT_LR] * STEPS
    x = flat(initial_params())
    trajectory = []
    for t, g in enumerate(gradient_sequence()):
        x = x - lrs[t] * direction(x, flat(g), t)
        trajectory.append(unflat(x))
    return trajectory


def compare_to_reference(make_tx, direction, dtype, schedule, f32_rtol):
    expected = run_reference(direction, schedule)
    tx = make_tx(lr_schedule if schedule else CONSTANT_LR)
    if dtype == np.float64:
        with jax.enable_x64(True):
            assert_trajectories_close(run_optix(tx, np.float64), expected, 1e-10)
    else:
        assert_trajectories_close(run_optix(tx, np.float32), expected, f32_rtol)


NEWTON_CASES = {
    "default": {},
    "damping": {"damping": 0.5},
    "increment_factor": {"damping_increment": 0.3, "damping_factor": 3.0},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("case", NEWTON_CASES)
def test_newton_trajectory_matches_algorithm_3_3(case, dtype, schedule):
    kwargs = NEWTON_CASES[case]
    ref_kwargs = {
        "damping": kwargs.get("damping", 0.0),
        "beta": kwargs.get("damping_increment", 1e-3),
        "factor": kwargs.get("damping_factor", 2.0),
    }
    shifted = []

    def direction(x, g, t):
        u, tau, _, failed = damped_newton_direction(np_hessian(x, t), g, **ref_kwargs)
        shifted.append(tau > ref_kwargs["damping"])
        assert not failed
        return u

    compare_to_reference(
        lambda lr: optix.chain(scale_by_newton(**kwargs), optix.scale_by_learning_rate(lr)),
        direction,
        dtype,
        schedule,
        F32_RTOL["newton"],
    )
    assert any(shifted), "no step had an indefinite Hessian: the damping path went untested"


CG_CASES = {
    "default": {},
    "rtol_l2": {"cg_rtol": 0.1, "residual_norm": "l2"},
    "max_steps": {"max_cg_steps": 3},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("case", CG_CASES)
def test_newton_cg_trajectory_matches_scipy_cg_loop(case, dtype, schedule):
    kwargs = CG_CASES[case]
    ref_kwargs = {
        "cg_maxiter": kwargs.get("max_cg_steps"),
        "cg_rtol": kwargs.get("cg_rtol"),
        "norm_ord": 2 if kwargs.get("residual_norm") == "l2" else 1,
    }

    reasons = set()

    def direction(x, g, t):
        u, _, reason = cg_direction(lambda v: np_hessian(x, t) @ v, g, **ref_kwargs)
        reasons.add(reason)
        return u

    compare_to_reference(
        lambda lr: newton_cg(lr, **kwargs, linesearch=None),
        direction,
        dtype,
        schedule,
        F32_RTOL["newton_cg"],
    )
    assert {"steepest", "curvature"} <= reasons, reasons
    assert ("max_steps" in reasons) == ("max_cg_steps" in kwargs), reasons


def split(x):
    """A vector as two leaves, so the methods see a multi-leaf pytree."""
    return {"a": x[:3], "b": x[3:]}


def joined(params):
    return jnp.concatenate([params["a"], params["b"]])


def spd(n, seed=0):
    m = np.random.default_rng(seed).normal(size=(n, n))
    return m @ m.T + np.eye(n)


def one_update(tx, value_fn, x, grad=None, **extra):
    params = split(jnp.asarray(x))
    value, g = jax.value_and_grad(value_fn)(params)
    g = g if grad is None else split(jnp.asarray(grad))
    updates, state = tx.update(g, tx.init(params), params, value=value, grad=g, value_fn=value_fn)
    return np.asarray(joined(updates)), state


@pytest.mark.parametrize(
    "make",
    [
        lambda: newton(),
        lambda: newton(linesearch=None),
        lambda: newton_cg(cg_rtol=1e-12),
        lambda: newton_cg(cg_rtol=1e-12, residual_norm="l2", linesearch=None),
    ],
    ids=["newton", "newton_no_linesearch", "newton_cg", "newton_cg_no_linesearch"],
)
def test_one_step_solves_a_quadratic(make, x64):
    a, b = spd(6), np.random.default_rng(1).normal(size=6)

    def value_fn(params):
        x = joined(params)
        return 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x

    x0 = np.random.default_rng(2).normal(size=6)
    updates, _ = one_update(make(), value_fn, x0)
    np.testing.assert_allclose(x0 + updates, np.linalg.solve(a, b), rtol=1e-12, atol=1e-12)


def logistic_problem(n=80, d=6, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, d))
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-features @ rng.normal(size=d)))).astype(float)
    return features, labels, 0.1


def logistic_loss(params, features, labels, l2):
    w = joined(params)
    z = features @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - labels * z) + 0.5 * l2 * w @ w


def iterate_errors(tx, steps):
    """Distances to the optimum of the logistic problem after each update, from w = 0."""
    features, labels, l2 = (jnp.asarray(v) for v in logistic_problem())

    def loss(params):
        return logistic_loss(params, features, labels, l2)

    params = split(jnp.zeros(6))
    state = tx.init(params)
    iterates = []
    for _ in range(steps):
        value, g = jax.value_and_grad(loss)(params)
        updates, state = tx.update(g, state, params, value=value, grad=g, value_fn=loss)
        params = optix.apply_updates(params, updates)
        iterates.append(np.asarray(joined(params)))
    optimum = iterates[-1]
    return [np.linalg.norm(w - optimum) for w in iterates[:-1]]


def test_newton_converges_quadratically(x64):
    errors = iterate_errors(newton(linesearch=None), steps=8)
    assert errors[4] < 1e-13, errors
    ratios = [e1 / e0**2 for e0, e1 in itertools.pairwise(errors) if e0 > 1e-6]
    assert len(ratios) >= 2 and max(ratios) < 1.0, (errors, ratios)


def test_newton_cg_converges_superlinearly(x64):
    errors = iterate_errors(newton_cg(linesearch=None), steps=10)
    assert errors[6] < 1e-12, errors
    ratios = [e1 / e0 for e0, e1 in itertools.pairwise(errors) if e0 > 1e-9]
    # Superlinear: the contraction factor itself goes to zero.
    assert ratios[-1] < 1e-2 and ratios[-1] < ratios[0] / 10, (errors, ratios)


def indefinite_quadratic(matrix):
    def value_fn(params):
        x = joined(params)
        return 0.5 * x @ jnp.asarray(matrix, x.dtype) @ x

    return value_fn


def test_indefinite_hessian_is_damped_as_algorithm_3_3_does(x64):
    # Diagonal 1, smallest eigenvalue 1 - 2.5: tau doubles from beta until H + tau I factors.
    matrix = np.eye(5) + 2.5 * (np.ones((5, 5)) - np.eye(5))
    matrix[3:, :3] = matrix[:3, 3:] = 0.0
    g = np.arange(1.0, 6.0)
    u, state = one_update(scale_by_newton(), indefinite_quadratic(matrix), np.ones(5), grad=g)
    expected, tau, tries, failed = damped_newton_direction(matrix, g)
    assert not failed and tries > 5 and tau > 1.5
    np.testing.assert_allclose(u, expected, rtol=1e-10)
    assert float(state.info.damping) == pytest.approx(tau, rel=1e-12)
    assert int(state.info.num_factorizations) == tries
    assert not bool(state.info.failed)
    assert g @ u > 0, "-u must be a descent direction"


def test_negative_diagonal_starts_the_damping_at_beta_minus_the_diagonal(x64):
    matrix = np.diag([2.0, -3.0, 1.0, 0.5, 4.0])
    g = np.ones(5)
    tx = scale_by_newton(damping=0.1, damping_increment=0.2)
    u, state = one_update(tx, indefinite_quadratic(matrix), np.ones(5), grad=g)
    np.testing.assert_allclose(u, g / (np.diag(matrix) + 3.2), rtol=1e-12)
    assert float(state.info.damping) == pytest.approx(3.2)
    assert int(state.info.num_factorizations) == 1


def test_non_finite_hessian_passes_the_update_through(x64):
    def value_fn(params):
        return jnp.sum(jnp.sqrt(joined(params) - 5.0))  # NaN everywhere near 0

    g = np.arange(1.0, 6.0)
    u, state = one_update(scale_by_newton(max_factorizations=4), value_fn, np.zeros(5), grad=g)
    np.testing.assert_array_equal(u, g)
    assert bool(state.info.failed) and int(state.info.num_factorizations) == 4
    assert np.isfinite(float(state.info.damping))


@pytest.mark.parametrize(
    ("diagonal", "g", "status", "reason"),
    [
        ([1.0, -1.0, 2.0, 3.0, 4.0], [1.0, 0.01, 0.5, 0.2, 0.1], "NEGATIVE_CURVATURE", "curvature"),
        ([1.0, -1.0, -2.0, 3.0, 4.0], [0.01, 1.0, 1.0, 0.0, 0.1], "NEGATIVE_CURVATURE", "steepest"),
        ([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, -1.0, 0.5, 0.2, 0.1], "CONVERGED", "converged"),
        ([1.0, 2.0, 3.0, 4.0, 5.0], [0.0] * 5, "CONVERGED", "converged"),
    ],
    ids=["negative_later", "negative_first", "positive", "zero_gradient"],
)
def test_cg_stops_as_scipy_does(diagonal, g, status, reason, x64):
    matrix, g = np.diag(diagonal), np.asarray(g)
    tx = scale_by_newton_cg(cg_rtol=1e-8)
    u, state = one_update(tx, indefinite_quadratic(matrix), np.ones(5), grad=g)
    expected, hvps, expected_reason = cg_direction(lambda v: matrix @ v, g, cg_rtol=1e-8)
    assert expected_reason == reason
    np.testing.assert_allclose(u, expected, rtol=1e-12, atol=1e-300)
    assert int(state.info.num_hvps) == hvps
    assert int(state.info.status) == getattr(cg_module, f"CG_{status}")


def test_tiny_gradients_still_get_a_newton_step(x64):
    """SciPy's absolute curvature test (p.Hp <= 3 eps) returns 0 for |g| near 1e-9;
    the relative test keeps solving H u = g."""
    matrix, g = spd(5), 1e-9 * np.arange(1.0, 6.0)
    tx = scale_by_newton_cg(cg_rtol=1e-10)
    u, state = one_update(tx, indefinite_quadratic(matrix), np.ones(5), grad=g)
    np.testing.assert_allclose(u, np.linalg.solve(matrix, g), rtol=1e-8)
    assert int(state.info.status) == cg_module.CG_CONVERGED
    assert not np.any(cg_direction(lambda v: matrix @ v, g, cg_rtol=1e-10)[0])


def test_cg_step_budget_and_non_finite_products(x64):
    matrix, g = spd(5), np.arange(1.0, 6.0)
    tx = scale_by_newton_cg(max_cg_steps=2, cg_rtol=1e-10)
    u, state = one_update(tx, indefinite_quadratic(matrix), np.ones(5), grad=g)
    np.testing.assert_allclose(u, cg_direction(lambda v: matrix @ v, g, 2, 1e-10)[0], rtol=1e-12)
    assert int(state.info.status) == cg_module.CG_MAX_STEPS and int(state.info.num_hvps) == 2

    def value_fn(params):
        return jnp.sum(jnp.sqrt(joined(params) - 5.0))

    u, state = one_update(scale_by_newton_cg(), value_fn, np.zeros(5), grad=g)
    np.testing.assert_array_equal(u, g)
    assert int(state.info.status) == cg_module.CG_NON_FINITE


def test_newton_cg_follows_scipy_newton_cg_iterates(x64):
    """Where SciPy's Wolfe line search accepts the unit step (on this problem: every
    iteration) and its CG loop ends on the residual test, the two methods coincide."""
    features, labels, l2 = logistic_problem(seed=4)

    def np_loss(w):
        z = features @ w
        return np.mean(np.logaddexp(0, z) - labels * z) + 0.5 * l2 * w @ w

    def np_grad(w):
        return features.T @ (1 / (1 + np.exp(-features @ w)) - labels) / len(labels) + l2 * w

    def np_hessp(w, v):
        s = 1 / (1 + np.exp(-features @ w))
        return features.T @ (s * (1 - s) * (features @ v)) / len(labels) + l2 * v

    w0 = np.full(6, 0.5)
    scipy_iterates = []
    result = scipy.optimize.minimize(
        np_loss,
        w0,
        jac=np_grad,
        hessp=np_hessp,
        method="Newton-CG",
        callback=lambda xk: scipy_iterates.append(np.copy(xk)),
    )
    # Iterates reached by SciPy's full Newton-CG step (checked with the transliteration),
    # up to where its absolute curvature test (p.Hp <= 3 eps) cuts the CG loop short:
    # on this convex problem that happens only once |g| is about 1e-8.
    full_steps, w = [], w0
    for w_next in scipy_iterates:
        step, _, reason = cg_direction(lambda v, w=w: np_hessp(w, v), np_grad(w))
        if reason != "converged" or not np.allclose(w - step, w_next, rtol=1e-14, atol=0):
            break
        full_steps.append(w_next)
        w = w_next
    assert len(full_steps) >= 3

    features_, labels_ = jnp.asarray(features), jnp.asarray(labels)
    tx = newton_cg(linesearch=None)
    params = split(jnp.asarray(w0))
    state = tx.init(params)
    for expected in full_steps:
        value, g = jax.value_and_grad(logistic_loss)(params, features_, labels_, l2)
        updates, state = tx.update(
            g,
            state,
            params,
            value=value,
            grad=g,
            value_fn=logistic_loss,
            features=features_,
            labels=labels_,
            l2=l2,
        )
        params = optix.apply_updates(params, updates)
        np.testing.assert_allclose(joined(params), expected, rtol=1e-10)
    for _ in range(3):
        g = jax.grad(logistic_loss)(params, features_, labels_, l2)
        updates, state = tx.update(
            g, state, params, value_fn=logistic_loss, features=features_, labels=labels_, l2=l2
        )
        params = optix.apply_updates(params, updates)
    # SciPy's last step was cut short (see above) and it stops on its xtol = 1e-5 test.
    assert float(jnp.max(jnp.abs(joined(g)))) < 1e-12
    np.testing.assert_allclose(joined(params), result.x, rtol=1e-5)


NONNEGATIVE = "finite and >= 0"
INVALID = [
    (scale_by_newton, "damping", -1.0, NONNEGATIVE),
    (scale_by_newton, "damping_increment", 0.0, "> 0"),
    (scale_by_newton, "damping_factor", 1.0, "> 1"),
    (scale_by_newton, "max_factorizations", 0, ">= 1"),
    (newton, "damping", -2.0, NONNEGATIVE),
    (newton, "learning_rate", float("nan"), "finite"),
    (scale_by_newton_cg, "max_cg_steps", 0, ">= 1"),
    (scale_by_newton_cg, "cg_rtol", 1.0, "in [0, 1)"),
    (scale_by_newton_cg, "cg_rtol", 0.0, "> 0"),
    (scale_by_newton_cg, "residual_norm", "inf", "one of ('l1', 'l2')"),
    (newton_cg, "learning_rate", float("nan"), "finite"),
]


@pytest.mark.parametrize(("make", "name", "value", "valid"), INVALID)
def test_invalid_arguments_are_rejected(make, name, value, valid):
    with pytest.raises(ValueError) as info:
        make(**{name: value})
    assert str(info.value) == f"{make.__name__}: {name} must be {valid}, got {name}={value!r}"


@pytest.mark.parametrize("make", [scale_by_newton, scale_by_newton_cg])
def test_missing_params_or_value_fn_is_explained(make):
    tx = make()
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    with pytest.raises(ValueError, match="needs the objective: call update"):
        tx.update(params, state, params)
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(params, state, value_fn=lambda p: jnp.sum(p["w"] ** 2))
