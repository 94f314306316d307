"""optix's softmax cross entropies against Optax's, forward and gradient, side by side.

For each shape (examples, classes), dtype (float32, bfloat16) and kind of labels:

- integer: ``softmax_cross_entropy_with_integer_labels(logits, labels)``;
- soft: ``softmax_cross_entropy(logits, labels)`` with label-smoothed one-hot targets
  (every entry non-zero), in the logits' dtype;

two jitted programs per library are timed: the forward pass (the loss per example) and
the gradient of the summed loss with respect to the logits. Times are medians over the
repeats, optix and Optax taking turns in each repeat (``common.median_seconds``), each
call waiting on its result (``block_until_ready``). The ``ops`` columns count the
top-level operations of each compiled CPU program that XLA did not fuse away (fusions,
reductions, copies...), from ``jit(f).lower(...).compile().as_text()``.

Run from the repository root:

    python benchmarks/losses.py
    python benchmarks/losses.py --shapes 256x32000 --repeats 50
"""

from __future__ import annotations

import argparse
import re

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


def measure(shape, dtype, kind, mode, repeats):
    x, y = inputs(shape, dtype, kind)
    runs, ops = {}, {}
    for name, module in LIBRARIES.items():
        exe = jax.jit(program(getattr(module, KINDS[kind]), mode)).lower(x, y).compile()
        ops[name] = top_level_ops(exe)
        runs[name] = lambda exe=exe: jax.block_until_ready(exe(x, y))
    seconds = common.median_seconds(runs, repeats)
    return seconds, ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="256x32000,4096x1000")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--kinds", default="integer,soft")
    parser.add_argument("--modes", default="forward,gradient")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    rows = []
    load_before = common.load_average()
    for shape in shapes:
        for dtype in args.dtypes.split(","):
            for kind in args.kinds.split(","):
                for mode in args.modes.split(","):
                    seconds, ops = measure(shape, jnp.dtype(dtype), kind, mode, args.repeats)
                    ratio = seconds["optix"] / seconds["Optax"]
                    row = [f"{shape[0]}x{shape[1]}", dtype, kind, mode]
                    row += [common.fmt(1e3 * seconds[n]) for n in LIBRARIES]
                    row += [common.fmt(ratio), str(ops["optix"]), str(ops["Optax"])]
                    rows.append(row)
                    print(" | ".join(row), flush=True)
    header = ["shape", "dtype", "labels", "pass", "optix ms", "Optax ms", "optix/Optax"]
    header += ["optix ops", "Optax ops"]
    print()
    print(common.table(header, rows))
    print()
    print(f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}; "
          f"median of {args.repeats}; {load_before} before, {common.load_average()} after")


if __name__ == "__main__":
    main()
