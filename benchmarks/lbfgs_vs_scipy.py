"""optix L-BFGS (through ``optix.minimize``) against SciPy's L-BFGS-B, problem by problem.

Both solve the same float64 problems from the same start with the same stopping rule:
the largest |gradient entry| <= ``--gtol`` (SciPy's ``gtol``; optix's ``tol`` with
``norm="inf"``), SciPy's relative-decrease test off (``ftol=0``), and 10 memory pairs
(SciPy's ``maxcor``, optix's ``memory_size``). optix runs ``optix.lbfgs()`` as it is:
Optax's composition with the zoom line search (strong Wolfe, at most 20 evaluations,
first trial step 1). SciPy gets the objective and gradient from one jitted JAX function,
as a JAX user would call it.

Reported per problem: iterations, function evaluations (SciPy's ``nfev``, each a value
and gradient; optix's ``num_fun_evals``), the final objective of each, the largest
|difference| between the two solutions, and wall time: the median over ``--repeats``
solves, with optix's compile time (its first call minus that median) apart. The target:
the same optimum to 1e-6 within 1.5x SciPy's function evaluations.

Run from the repository root:

    python benchmarks/lbfgs_vs_scipy.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

# One BLAS thread: L-BFGS-B's small dense solves gain nothing from threads, and on a
# loaded machine OpenBLAS's spinning threads made SciPy's solves 10x slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import optix  # noqa: E402
from optix.minimization import MinimizeStatus, minimize  # noqa: E402
from optix.optimizers.lbfgs import lbfgs  # noqa: E402

MEMORY = 10
MAX_ITER = 20_000


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_start(n: int) -> np.ndarray:
    """The classic start (-1.2, 1) repeated."""
    return np.where(np.arange(n) % 2 == 0, -1.2, 1.0)


def quadratic_problem(n: int = 100, condition: float = 1e4, seed: int = 0):
    """0.5 x.Ax - b.x with A's eigenvalues log-spaced over [1, condition], random axes."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0.0, np.log10(condition), n)) @ q.T
    b = rng.normal(size=n)

    def fun(x):
        return 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x

    return fun, np.zeros(n)


def digits_problem(l2: float = 1e-3):
    """Multinomial logistic regression on sklearn's digits: 64 x 10 weights + 10 biases.

    The biases are penalized too: softmax is unchanged by adding one constant to every
    bias, so without it the optimum is a line and two solvers may stop anywhere on it.
    """
    digits = load_digits()
    features = jnp.asarray(digits.data / 16.0)
    onehot = jax.nn.one_hot(jnp.asarray(digits.target), 10, dtype=jnp.float64)
    d = features.shape[1]

    def fun(theta):
        weights, bias = theta[: d * 10].reshape(d, 10), theta[d * 10 :]
        logits = features @ weights + bias
        nll = jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.sum(onehot * logits, axis=1))
        return nll + 0.5 * l2 * jnp.sum(theta**2)

    return fun, np.zeros(d * 10 + 10)


def problems() -> dict[str, tuple[Callable, np.ndarray]]:
    return {
        "Rosenbrock n=10": (rosenbrock, rosenbrock_start(10)),
        "Rosenbrock n=100": (rosenbrock, rosenbrock_start(100)),
        "quadratic n=100, cond 1e4": quadratic_problem(),
        "digits logistic (650 params)": digits_problem(),
    }


def numpy_objective(fun):
    """``x -> (value, gradient)`` in NumPy from one jitted JAX function, compiled here."""
    value_and_grad = jax.jit(jax.value_and_grad(fun))

    def np_fun(x):
        value, grad = value_and_grad(jnp.asarray(x))
        return float(value), np.asarray(grad)

    return np_fun


def run_scipy(np_fun, x0, gtol):
    options = {"maxcor": MEMORY, "gtol": gtol, "ftol": 0.0, "maxiter": MAX_ITER, "maxfun": MAX_ITER}
    return scipy.optimize.minimize(np_fun, x0, jac=True, method="L-BFGS-B", options=options)


def run_optix(fun, x0, tx, gtol):
    x, stats = minimize(fun, jnp.asarray(x0), tx, tol=gtol, norm="inf", max_iter=MAX_ITER)
    return jax.block_until_ready((x, stats))


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def benchmark(name, fun, x0, gtol, repeats):
    tx = lbfgs(memory_size=MEMORY)
    start = time.perf_counter()
    x, stats = run_optix(fun, x0, tx, gtol)
    first_call = time.perf_counter() - start
    optix_time, _ = timed(lambda: run_optix(fun, x0, tx, gtol), repeats)
    np_fun = numpy_objective(fun)
    np_fun(x0)  # compiles outside the timed runs
    result = run_scipy(np_fun, x0, gtol)
    scipy_time, _ = timed(lambda: run_scipy(np_fun, x0, gtol), repeats)
    scipy_gnorm = float(np.max(np.abs(result.jac)))
    evals, scipy_evals = int(stats.num_fun_evals), int(result.nfev)
    # When SciPy stops short of gtol, count what optix needs to reach SciPy's accuracy.
    same_accuracy = evals
    if scipy_gnorm > gtol:
        same_accuracy = int(run_optix(fun, x0, tx, scipy_gnorm)[1].num_fun_evals)
    difference = float(np.max(np.abs(np.asarray(x) - result.x)))
    return {
        "problem": name,
        "iters": f"{int(stats.num_iterations)} / {result.nit}",
        "evals": f"{evals} / {scipy_evals}",
        "ratio": same_accuracy / scipy_evals,
        "same_accuracy": same_accuracy,
        "f": f"{float(stats.value):.12g} / {result.fun:.12g}",
        "gnorm": f"{float(stats.grad_norm):.1e} / {scipy_gnorm:.1e}",
        "diff": difference,
        "time": f"{optix_time * 1e3:.1f} / {scipy_time * 1e3:.1f}",
        "compile": first_call - optix_time,
        "status": f"{MinimizeStatus(int(stats.status)).name} / {result.status}",
        "ok": difference <= 1e-6 and same_accuracy <= 1.5 * scipy_evals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gtol", type=float, default=1e-10)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, scipy {scipy.__version__}, optix {optix.__version__}, ")
    print(f"device {jax.devices()[0].device_kind}, gtol {args.gtol:g} (max |g_i|), memory {MEMORY}")
    print()
    print(
        "| problem | iterations optix / SciPy | evaluations optix / SciPy "
        "| optix evaluations to SciPy's final max abs g | ratio to SciPy "
        "| final objective optix / SciPy | final max abs g optix / SciPy "
        "| max abs diff of solutions | time ms optix / SciPy | optix compile s "
        "| stop optix / SciPy | target met |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (fun, x0) in problems().items():
        row = benchmark(name, fun, x0, args.gtol, args.repeats)
        print(
            f"| {row['problem']} | {row['iters']} | {row['evals']} | {row['same_accuracy']} "
            f"| {row['ratio']:.2f} | {row['f']} | {row['gnorm']} | {row['diff']:.1e} "
            f"| {row['time']} | {row['compile']:.2f} | {row['status']} "
            f"| {'yes' if row['ok'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
