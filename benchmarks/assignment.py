"""optix.assignment against SciPy's linear_sum_assignment and Optax's assignment solvers.

For each size n, one random n x n cost matrix (uniform in [0, 1), float32 by default)
goes to:

- optix: ``jax.jit(optix.assignment.hungarian_algorithm)`` (``base_hungarian_algorithm``
  runs the same solver and only lists the pairs in another order);
- SciPy: ``scipy.optimize.linear_sum_assignment`` on the same NumPy array (it solves in
  float64);
- Optax: ``jax.jit(optax.assignment.hungarian_algorithm)`` and, up to ``--base-max``, the
  slower ``jax.jit(optax.assignment.base_hungarian_algorithm)``.

Times are medians over the repeats, the runners taking turns in each repeat, after one
uncounted call; each jitted call waits on its result (``block_until_ready``). Compile
time (``jit(...).lower(...).compile()``) is reported apart. Every run checks that the
three optimal costs agree. A second table times a batch of matrices: ``jax.vmap`` of the
solver against SciPy in a Python loop.

Run from the repository root:

    python benchmarks/assignment.py
    python benchmarks/assignment.py --sizes 10,100 --repeats 50 --dtype float64
"""

from __future__ import annotations

import argparse
import time

import common
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy
import scipy.optimize

import optix.assignment


def compiled(fn, example):
    """The compiled ``jit(fn)`` for ``example`` and the seconds its compilation took."""
    start = time.perf_counter()
    exe = jax.jit(fn).lower(example).compile()
    return exe, time.perf_counter() - start


def timed(exe):
    return lambda x: jax.block_until_ready(exe(x))


def repeats_for(n: int, repeats: int) -> int:
    """Fewer repeats where one solve takes long."""
    return max(3, repeats // 4) if n >= 1000 else max(5, repeats // 2) if n >= 300 else repeats


def square_table(sizes, repeats, dtype, base_max):
    rows = []
    for n in sizes:
        cost_np = np.random.default_rng(n).random((n, n)).astype(dtype)
        cost = jnp.asarray(cost_np)
        ours, ours_compile = compiled(optix.assignment.hungarian_algorithm, cost)
        theirs, theirs_compile = compiled(optax.assignment.hungarian_algorithm, cost)
        fns = {
            "optix": lambda: timed(ours)(cost),
            "scipy": lambda: scipy.optimize.linear_sum_assignment(cost_np),
            "optax": lambda: timed(theirs)(cost),
        }
        if n <= base_max:
            base, _ = compiled(optax.assignment.base_hungarian_algorithm, cost)
            fns["optax base"] = lambda: timed(base)(cost)
        costs = {}
        for name, fn in fns.items():
            i, j = fn()
            costs[name] = float(cost_np.astype(np.float64)[np.asarray(i), np.asarray(j)].sum())
        spread = max(costs.values()) - min(costs.values())
        assert spread <= 1e-5 * n, f"n={n}: the solvers disagree on the optimum: {costs}"
        k = repeats_for(n, repeats)
        t = common.median_seconds(fns, k, warmup=1)
        base_ms = common.fmt(t["optax base"] * 1e3, 3) if "optax base" in t else "n/a"
        rows.append([
            str(n), str(k),
            common.fmt(t["optix"] * 1e3, 3), common.fmt(t["scipy"] * 1e3, 3),
            common.fmt(t["optax"] * 1e3, 3), base_ms,
            common.fmt(t["optix"] / t["scipy"]), common.fmt(t["optix"] / t["optax"]),
            common.fmt(ours_compile), common.fmt(theirs_compile),
        ])
    header = [
        "n", "repeats", "optix ms", "SciPy ms", "Optax ms", "Optax base ms",
        "optix/SciPy", "optix/Optax", "optix compile s", "Optax compile s",
    ]
    return common.table(header, rows)


def batch_table(batch, sizes, repeats, dtype):
    rows = []
    for n in sizes:
        costs_np = np.random.default_rng(n).random((batch, n, n)).astype(dtype)
        costs = jnp.asarray(costs_np)
        ours, _ = compiled(jax.vmap(optix.assignment.hungarian_algorithm), costs)
        theirs, _ = compiled(jax.vmap(optax.assignment.hungarian_algorithm), costs)
        fns = {
            "optix": lambda: timed(ours)(costs),
            "scipy": lambda: [scipy.optimize.linear_sum_assignment(c) for c in costs_np],
            "optax": lambda: timed(theirs)(costs),
        }
        t = common.median_seconds(fns, repeats_for(n, repeats), warmup=1)
        rows.append([
            f"{batch} x {n} x {n}",
            common.fmt(t["optix"] * 1e3, 3), common.fmt(t["scipy"] * 1e3, 3),
            common.fmt(t["optax"] * 1e3, 3),
            common.fmt(t["optix"] / t["scipy"]), common.fmt(t["optix"] / t["optax"]),
        ])
    header = ["batch", "optix vmap ms", "SciPy loop ms", "Optax vmap ms", "optix/SciPy",
              "optix/Optax"]
    return common.table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,30,100,300,1000")
    parser.add_argument("--repeats", type=int, default=20, help="fewer for n >= 300")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--base-max", type=int, default=100,
                        help="largest n for Optax's base_hungarian_algorithm")
    parser.add_argument("--batch", type=int, default=32, help="0 skips the batch table")
    parser.add_argument("--batch-sizes", default="10,100")
    args = parser.parse_args()
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"jax {jax.__version__}, optax {optax.__version__}, scipy {scipy.__version__}, "
          f"device {jax.devices()[0].device_kind}, {args.dtype} costs uniform in [0, 1)")
    print(common.load_average())
    print()
    print(square_table(sizes, args.repeats, np.dtype(args.dtype), args.base_max))
    if args.batch:
        print()
        batch_sizes = [int(s) for s in args.batch_sizes.split(",")]
        print(batch_table(args.batch, batch_sizes, args.repeats, np.dtype(args.dtype)))
    print()
    print(common.load_average())


if __name__ == "__main__":
    main()
