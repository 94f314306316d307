"""optix's softmax cross entropies against Optax's, forward and gradient, side by side.

For each shape (examples, classes), dtype (float32, bfloat16) and kind of labels:

- integer: ``softmax_cross_entropy_with_integer_labels(logits, labels)``;
- soft: ``softmax_cross_entropy(logits, labels)`` with label-smoothed one-hot targets
  (every entry non-zero), in the logits' dtype;

two jitted programs per library are timed: the forward pass (the loss per example) and
the gradient of the summed loss with respect to the logits. Each call waits on its
result (``block_until_ready``); optix and Optax take turns in each repeat, after three
uncounted calls each. Two medians are reported per call: wall time, and the CPU time of
the process (``time.process_time``, all threads), which a loaded machine disturbs far
less than wall time (a call that waits for a core accrues none). The ``ops`` columns
count the top-level operations of each compiled program that do work (fusions, gathers,
scatters, copies), from ``jit(f).lower(...).compile().as_text()``.

With ``--safe``, a second table sets optix's ``softmax_cross_entropy`` against Optax's
``safe_softmax_cross_entropy``, the Optax function with the same guarantee (finite loss
and gradient with logits of -inf under zero labels, where Optax's plain version gives
NaN).

Run from the repository root:

    python benchmarks/losses.py
    python benchmarks/losses.py --shapes 256x32000 --repeats 50 --safe
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import common
import jax
import jax.numpy as jnp
import numpy as np
import optax

import optix.losses

LIBRARIES = {"optix": optix.losses, "Optax": optax.losses}
KINDS = {
    "integer": "softmax_cross_entropy_with_integer_labels",
    "soft": "softmax_cross_entropy",
}


def inputs(shape, dtype, kind):
    """Logits of scale 3 and labels of ``kind`` for ``shape`` = (examples, classes)."""
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=shape) * 3, dtype)
    classes = rng.integers(shape[1], size=shape[0])
    if kind == "integer":
        return logits, jnp.asarray(classes)
    return logits, optix.losses.smooth_labels(jax.nn.one_hot(classes, shape[1], dtype=dtype), 0.1)


def program(loss, mode):
    if mode == "forward":
        return loss
    return jax.grad(lambda x, y: loss(x, y).sum())


def top_level_ops(exe) -> int:
    """Instructions of the compiled entry computation that do work (not parameters,
    tuples, bitcasts or constants)."""
    text = exe.as_text()
    entry = text[text.index("ENTRY") :]
    body = entry[: entry.index("\n}")]
    skip = r"parameter|tuple|get-tuple-element|bitcast|constant"
    ops = re.findall(r"=\s*\S+\s+([\w-]+)\(", body)
    return sum(1 for op in ops if not re.fullmatch(skip, op))


def medians(runs, repeats, warmup=3):
    """Median wall and CPU seconds of each ``runs[name]()``, the runs taking turns."""
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return (
        {name: statistics.median(ts) for name, ts in wall.items()},
        {name: statistics.median(ts) for name, ts in cpu.items()},
    )


def measure(shape, dtype, kind, mode, repeats, safe=False):
    x, y = inputs(shape, dtype, kind)
    runs, ops = {}, {}
    for name, module in LIBRARIES.items():
        loss = getattr(module, KINDS[kind])
        if safe and name == "Optax":
            loss = module.safe_softmax_cross_entropy
        exe = jax.jit(program(loss, mode)).lower(x, y).compile()
        ops[name] = top_level_ops(exe)
        runs[name] = lambda exe=exe: jax.block_until_ready(exe(x, y))
    wall, cpu = medians(runs, repeats)
    return wall, cpu, ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="256x32000,4096x1000")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--kinds", default="integer,soft")
    parser.add_argument("--modes", default="forward,gradient")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--safe", action="store_true", help="also against safe_softmax_...")
    args = parser.parse_args()
    shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    load_before = common.load_average()
    tables = [("Optax", args.kinds.split(","), False)]
    if args.safe:
        tables.append(("Optax safe_softmax_cross_entropy", ["soft"], True))
    for title, kinds, safe in tables:
        rows = []
        for shape in shapes:
            for dtype in args.dtypes.split(","):
                for kind in kinds:
                    for mode in args.modes.split(","):
                        wall, cpu, ops = measure(
                            shape, jnp.dtype(dtype), kind, mode, args.repeats, safe
                        )
                        row = [f"{shape[0]}x{shape[1]}", dtype, kind, mode]
                        row += [common.fmt(1e3 * wall[n]) for n in LIBRARIES]
                        row += [common.fmt(wall["optix"] / wall["Optax"])]
                        row += [common.fmt(1e3 * cpu[n]) for n in LIBRARIES]
                        row += [common.fmt(cpu["optix"] / cpu["Optax"])]
                        row += [str(ops["optix"]), str(ops["Optax"])]
                        rows.append(row)
                        print(" | ".join(row), flush=True)
        header = ["shape", "dtype", "labels", "pass", "optix ms", "Optax ms", "optix/Optax"]
        header += ["optix CPU ms", "Optax CPU ms", "optix/Optax CPU", "optix ops", "Optax ops"]
        print(f"\noptix against {title}\n")
        print(common.table(header, rows))
    print()
    print(
        f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].device_kind}; "
        f"medians of {args.repeats}; {load_before} before, {common.load_average()} after"
    )


if __name__ == "__main__":
    main()
