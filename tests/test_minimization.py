"""minimize: one compiled loop, its stopping tests, its counts, against scipy.optimize.minimize."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import optix
from optix.minimization import MinimizeStatus, minimize
from optix.optimizers.lbfgs import lbfgs
from optix.optimizers.truncated_newton import newton_cg
from optix.torch.quasi_newton import lbfgs as torch_lbfgs
from optix.transforms.backtracking_linesearch import scale_by_backtracking_linesearch


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def scipy_lbfgsb(fun, x0, args=(), **options):
    value_and_grad = jax.jit(jax.value_and_grad(fun))

    def np_fun(x):
        value, grad = value_and_grad(jnp.asarray(x), *args)
        return float(value), np.asarray(grad, np.float64)

    return scipy.optimize.minimize(np_fun, x0, jac=True, method="L-BFGS-B", options=options)


def status(stats) -> MinimizeStatus:
    return MinimizeStatus(int(stats.status))


def test_lbfgs_reaches_scipy_lbfgsb_optimum_on_rosenbrock(x64):
    x0 = np.zeros(10)
    x, stats = minimize(rosenbrock, jnp.asarray(x0), lbfgs(), tol=1e-8)
    expected = scipy_lbfgsb(rosenbrock, x0, gtol=1e-10, ftol=0.0)
    assert status(stats) is MinimizeStatus.GRAD_TOL and bool(stats.converged)
    np.testing.assert_allclose(x, expected.x, atol=1e-7)
    np.testing.assert_allclose(x, np.ones(10), atol=1e-7)
    assert float(stats.grad_norm) <= 1e-8
    assert float(stats.value) == pytest.approx(float(rosenbrock(x)), abs=1e-20)
    assert float(stats.grad_norm) == pytest.approx(float(jnp.linalg.norm(jax.grad(rosenbrock)(x))))


def logistic_loss(w, features, labels):
    z = features @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - labels * z) + 0.05 * w @ w


def logistic_data(seed, n=100, d=8):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, d))
    labels = (rng.uniform(size=n) < 0.5).astype(np.float64)
    return features, labels


@pytest.mark.parametrize("make", [lbfgs, newton_cg], ids=["lbfgs", "newton_cg"])
def test_data_goes_in_args_and_new_data_does_not_recompile(make, x64):
    traces = []

    def loss(w, features, labels):
        traces.append(1)
        return logistic_loss(w, features, labels)

    tx = make()
    for seed in range(2):
        features, labels = logistic_data(seed)
        w, stats = minimize(loss, jnp.zeros(8), tx, args=(features, labels), tol=1e-10)
        expected = scipy_lbfgsb(logistic_loss, np.zeros(8), (features, labels), gtol=1e-12, ftol=0)
        np.testing.assert_allclose(w, expected.x, atol=1e-8)
        assert bool(stats.converged)
        if seed == 0:
            first = len(traces)
    assert len(traces) == first, "the second solve traced the objective again"
    assert first <= 8, f"the objective was traced {first} times: once per iteration?"


def counting(fun):
    """fun, and a list that grows by one at each evaluation at run time."""
    calls = []

    def counted(x, *args):
        jax.debug.callback(lambda: calls.append(1))
        return fun(x, *args)

    return counted, calls


@pytest.mark.parametrize(
    "make",
    [
        lambda: lbfgs(),
        lambda: optix.chain(
            optix.scale(-1e-3), scale_by_backtracking_linesearch(20, increase_factor=2.0)
        ),
        lambda: optix.chain(
            optix.scale(-1e-3),
            scale_by_backtracking_linesearch(20, increase_factor=2.0, store_grad=True),
        ),
        lambda: optix.sgd(1e-3),
        lambda: torch_lbfgs(max_iter=5, line_search_fn="strong_wolfe"),
        lambda: torch_lbfgs(lr=0.5, max_iter=3),
    ],
    ids=["lbfgs", "backtracking", "backtracking_store_grad", "sgd", "torch_wolfe", "torch"],
)
def test_function_evaluations_are_counted_exactly(make, x64):
    fun, calls = counting(rosenbrock)
    _, stats = minimize(fun, jnp.zeros(5), make(), max_iter=40, tol=1e-8)
    assert int(stats.num_iterations) > 3
    assert int(stats.num_fun_evals) == len(calls)


def test_line_search_values_are_reused_not_recomputed(x64):
    fun, calls = counting(rosenbrock)
    _, stats = minimize(fun, jnp.zeros(5), lbfgs(), max_iter=30, tol=0.0)
    # One evaluation at the start; every later one happened inside a line search.
    assert int(stats.num_iterations) == 30
    assert len(calls) == int(stats.num_fun_evals) < 2 * 30


def test_non_finite_values_stop_at_the_last_finite_iterate():
    def quartic(x):
        return jnp.sum(x**4)

    x, stats = minimize(quartic, jnp.full(3, 3.0), optix.sgd(10.0), max_iter=50)
    assert status(stats) is MinimizeStatus.NON_FINITE and not bool(stats.converged)
    assert bool(jnp.all(jnp.isfinite(x))) and np.isfinite(float(stats.value))
    assert float(stats.value) == pytest.approx(float(quartic(x)))
    assert int(stats.num_iterations) < 10


def test_non_finite_start_and_converged_start_make_no_update():
    _, stats = minimize(lambda x: jnp.sum(jnp.log(x)), -jnp.ones(2), optix.sgd(0.1))
    assert status(stats) is MinimizeStatus.NON_FINITE and int(stats.num_iterations) == 0
    _, stats = minimize(lambda x: jnp.sum(x**2), jnp.zeros(2), optix.sgd(0.1))
    assert status(stats) is MinimizeStatus.GRAD_TOL and int(stats.num_iterations) == 0
    assert int(stats.num_fun_evals) == 1


def test_iteration_evaluation_value_and_progress_limits(x64):
    x0 = jnp.zeros(6)
    _, stats = minimize(rosenbrock, x0, optix.adam(1e-2), max_iter=7)
    assert status(stats) is MinimizeStatus.MAX_ITER
    assert (int(stats.num_iterations), int(stats.num_fun_evals)) == (7, 8)
    _, stats = minimize(rosenbrock, x0, lbfgs(), max_fun_evals=10)
    assert status(stats) is MinimizeStatus.MAX_FUN_EVALS and int(stats.num_fun_evals) >= 10
    _, stats = minimize(rosenbrock, x0, lbfgs(), tol=0.0, ftol=1e-3)
    assert status(stats) is MinimizeStatus.VALUE_TOL and bool(stats.converged)
    assert 0.0 < float(stats.value) < 1.0
    _, stats = minimize(rosenbrock, x0, optix.set_to_zero())
    assert status(stats) is MinimizeStatus.NO_PROGRESS and int(stats.num_iterations) == 1


def test_infinity_norm_tolerance(x64):
    x, stats = minimize(rosenbrock, jnp.zeros(4), lbfgs(), tol=1e-6, norm="inf")
    grad = jax.grad(rosenbrock)(x)
    assert float(stats.grad_norm) == pytest.approx(float(jnp.max(jnp.abs(grad))))
    assert float(stats.grad_norm) <= 1e-6 < float(jnp.linalg.norm(grad)) * 10


def test_pytree_params_in_float32_vmapped_and_jitted():
    def loss(params):
        return rosenbrock(jnp.concatenate([params["a"], params["b"]]))

    params = {"a": jnp.zeros(2), "b": jnp.full(3, 0.5)}
    solution, stats = minimize(loss, params, lbfgs(), tol=1e-4)
    assert bool(stats.converged) and solution["a"].dtype == jnp.float32
    np.testing.assert_allclose(solution["b"], np.ones(3), atol=1e-3)

    starts = jnp.stack([jnp.zeros(3), jnp.full(3, 2.0), jnp.asarray([-1.0, 0.5, 1.5])])
    tx = lbfgs()
    solutions, batched = jax.vmap(lambda x: minimize(rosenbrock, x, tx, tol=1e-4))(starts)
    for start, solution, iterations in zip(starts, solutions, batched.num_iterations, strict=True):
        alone, stats = minimize(rosenbrock, start, tx, tol=1e-4)
        np.testing.assert_allclose(solution, alone, rtol=1e-5, atol=1e-6)
        assert int(iterations) == int(stats.num_iterations)
    jitted, _ = jax.jit(lambda x: minimize(rosenbrock, x, tx, tol=1e-4))(starts[1])
    np.testing.assert_allclose(jitted, solutions[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_iter": -1}, ValueError, "minimize: max_iter must be >= 0, got max_iter=-1"),
        ({"max_iter": 2.5}, TypeError, "minimize: max_iter must be an int, got max_iter=2.5"),
        ({"tol": -1.0}, ValueError, "minimize: tol must be finite and >= 0, got tol=-1.0"),
        ({"norm": "l1"}, ValueError, "minimize: norm must be one of ('l2', 'inf'), got norm='l1'"),
        ({"ftol": -1.0}, ValueError, "minimize: ftol must be finite and >= 0, got ftol=-1.0"),
        (
            {"max_fun_evals": 0},
            ValueError,
            "minimize: max_fun_evals must be >= 1, got max_fun_evals=0",
        ),
    ],
)
def test_invalid_options_are_rejected(kwargs, error, message):
    with pytest.raises(error) as info:
        minimize(rosenbrock, jnp.zeros(3), lbfgs(), **kwargs)
    assert str(info.value) == message
