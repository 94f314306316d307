"""Compile time against the number of leaves: optix leaf by leaf, optix packed, Optax.

For each leaf count, float32 leaves of ``--leaf-size`` entries, the time from building a
fresh optimizer to a compiled ``jax.jit(step, donate_argnums=(0, 1))`` (tracing, lowering
and XLA), median of ``--compiles`` fresh compiles:

* ``optix``: the transformation on the tree;
* ``packed``: ``packed(tx, layout)`` on the buffers; the time includes ``packing_plan``,
  which traces the transformation on the tree once to prove the packing exact (its
  share is the ``plan`` column);
* ``Optax``: the same-named Optax transformation on the tree.

Two transformations: ``adamw(1e-3)`` and ``chain(clip_by_global_norm(1.0),
adamw(warmup_cosine_decay_schedule(0, 1e-3, 100, 10000)))``.

    python benchmarks/compile_time.py --leaves 10,100,1000,4096,5000 --compiles 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from common import fmt, load_average, table

import optix
from optix.transforms.packing import Layout, packed, packing_plan


def adamw(lib):
    return lib.adamw(1e-3, weight_decay=1e-2)


def clipped_adamw(lib):
    schedule = lib.warmup_cosine_decay_schedule(0.0, 1e-3, 100, 10_000)
    return lib.chain(lib.clip_by_global_norm(1.0), lib.adamw(schedule, weight_decay=1e-2))


CASES = {"adamw": adamw, "clip+adamw(warmup-cosine)": clipped_adamw}


def compile_seconds(make_tx, apply_fn, params) -> float:
    """Seconds from a fresh transformation to a compiled donated step."""
    start = time.perf_counter()
    tx = make_tx()
    state = jax.eval_shape(tx.init, params)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_fn(params, updates), state

    jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params).compile()
    return time.perf_counter() - start


def measure(case: str, leaves: int, leaf_size: int, compiles: int, libraries) -> dict:
    params = {f"p{i:05d}": jax.ShapeDtypeStruct((leaf_size,), jnp.float32) for i in range(leaves)}
    layout = Layout.of(params)
    make = CASES[case]
    runs = {
        "optix": lambda: compile_seconds(lambda: make(optix), optix.apply_updates, params),
        "packed": lambda: compile_seconds(
            lambda: packed(make(optix), layout), optix.apply_updates, layout.abstract_packed()
        ),
        "Optax": lambda: compile_seconds(lambda: make(optax), optax.apply_updates, params),
    }
    result = {"case": case, "leaves": leaves}
    for name in libraries:
        result[name] = statistics.median(runs[name]() for _ in range(compiles))
    start = time.perf_counter()
    result["packable"] = packing_plan(make(optix), params).packable
    result["plan"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", default="10,100,1000,4096")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--libraries", default="optix,packed,Optax")
    parser.add_argument("--leaf-size", type=int, default=1000)
    parser.add_argument("--compiles", type=int, default=3)
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args()
    print(f"jax {jax.__version__}, optax {optax.__version__}; {load_average()}")
    libraries = args.libraries.split(",")
    header = ["case", "leaves", *[f"{n} s" for n in libraries], "plan s", "Optax/packed"]
    rows, results = [], []
    for case in args.cases.split(","):
        for leaves in (int(x) for x in args.leaves.split(",")):
            r = measure(case, leaves, args.leaf_size, args.compiles, libraries)
            results.append(r)
            ratio = fmt(r["Optax"] / r["packed"], 1) if {"Optax", "packed"} <= r.keys() else "n/a"
            rows.append([case, str(leaves), *[fmt(r[n]) for n in libraries], fmt(r["plan"]), ratio])
            print(table(header, rows[-1:]).splitlines()[-1], flush=True)
    print(f"\nafter the run: {load_average()}\n")
    print(table(header, rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"load": load_average(), "rows": results}, f, indent=1)


if __name__ == "__main__":
    main()
