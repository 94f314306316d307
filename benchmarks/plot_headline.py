"""The headline plot: AdamW step time over the floor, and compile time over leaves.

Reads the JSON that ``optimizer_step.py --out`` and ``compile_time.py --out`` write:

    python benchmarks/optimizer_step.py --optimizers adamw --out /tmp/step.json
    python benchmarks/compile_time.py --leaves 10,100,1000,4096 --out /tmp/compile.json
    python benchmarks/compile_time.py --leaves 5000 --cases "clip+adamw(warmup-cosine)" \
        --libraries packed,Optax --out /tmp/compile5000.json
    python benchmarks/plot_headline.py --step /tmp/step.json \
        --compile /tmp/compile.json /tmp/compile5000.json \
        --out benchmarks/headline.png
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import fmt_size

STEP_SERIES = ["optix", "packed", "Optax", "torch"]
COMPILE_SERIES = ["optix", "packed", "Optax"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", required=True)
    parser.add_argument("--compile", required=True, nargs="+", help="one or more JSON files")
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--case", default="clip+adamw(warmup-cosine)")
    parser.add_argument("--out", default="benchmarks/headline.png")
    args = parser.parse_args()
    with open(args.step) as f:
        steps = [r for r in json.load(f)["rows"] if r["optimizer"] == args.optimizer]
    compiles = []
    for path in args.compile:
        with open(path) as f:
            compiles += [r for r in json.load(f)["rows"] if r["case"] == args.case]
    compiles.sort(key=lambda r: r["leaves"])

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.4))
    # Sizes split into equal leaves fall a little short of the nominal size (999.424K).
    labels = [f"{fmt_size(round(r['size'], -5))}\nx{r['leaves']}" for r in steps]
    x, width = np.arange(len(steps)), 0.8 / len(STEP_SERIES)
    for i, name in enumerate(STEP_SERIES):
        ratios = [r[name] / r["floor"] if name in r else np.nan for r in steps]
        left.bar(x + (i - 1.5) * width, ratios, width, label=name)
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_yscale("log")
    left.set_xticks(x, labels, fontsize=8)
    left.set_xlabel("parameters x leaves")
    left.set_ylabel("step time / in-place kernel floor")
    left.set_title(f"{args.optimizer} step (lower is better; 1 = floor)")
    left.legend(fontsize=8)

    leaves = [r["leaves"] for r in compiles]
    for name in COMPILE_SERIES:
        right.plot(leaves, [r.get(name, np.nan) for r in compiles], marker="o", label=name)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("leaves")
    right.set_ylabel("seconds to a compiled step")
    right.set_title(f"compile time of {args.case}")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
