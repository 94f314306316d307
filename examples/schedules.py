"""Draw every optix schedule over one training run into a PNG grid.

Run from the repository root:

    python examples/schedules.py --steps 1000 --out examples/schedules.png

Each panel is one schedule function, evaluated at every step count 0..steps with one
jitted, vmapped call; curves in a panel vary one argument. Phase lengths are fractions
of ``--steps``, so any run length of at least 5 steps draws the same shapes.
"""

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import optix.schedules as sch
import optix.torch as pt

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt


def panels(n: int) -> list[tuple[str, dict]]:
    """(title, {label: schedule}) for every schedule, phase lengths scaled to ``n`` steps."""
    w, q, h, c = max(1, n // 10), max(1, n // 4), max(2, n // 2), max(2, n // 3)
    sgdr = [dict(init_value=0.0, peak_value=1 / (i + 1), warmup_steps=c // 5, decay_steps=c)
            for i in range(3)]  # fmt: skip
    join = [sch.constant_schedule(0.5), sch.linear_schedule(0.5, 1.0, h - w),
            sch.cosine_decay_schedule(1.0, n - h)]  # fmt: skip
    return [
        ("constant_schedule(1.0)", {"": sch.constant_schedule(1.0)}),
        (f"linear_schedule(1 -> 0.1, T={n - 2 * w}, begin={w})",
         {"": sch.linear_schedule(1.0, 0.1, n - 2 * w, w)}),
        (f"polynomial_schedule(1 -> 0, T={n})",
         {f"power={p}": sch.polynomial_schedule(1.0, 0.0, p, n) for p in (0.5, 1, 2, 4)}),
        (f"exponential_decay(1, T={w}, rate=0.7)",
         {"continuous": sch.exponential_decay(1.0, w, 0.7),
          "staircase": sch.exponential_decay(1.0, w, 0.7, staircase=True),
          "end_value=0.2": sch.exponential_decay(1.0, w, 0.7, end_value=0.2)}),
        (f"piecewise_constant_schedule(1, {{{h}: 0.3, {h + q}: 0.3}})",
         {"": sch.piecewise_constant_schedule(1.0, {h: 0.3, h + q: 0.3})}),
        (f"piecewise_interpolate_schedule(1, {{{q}: 0.2, {h}: 4, {h + q}: 0.5}})",
         {t: sch.piecewise_interpolate_schedule(t, 1.0, {q: 0.2, h: 4.0, h + q: 0.5})
          for t in ("linear", "cosine")}),
        (f"cosine_decay_schedule(1, T={n - w})",
         {"exponent=1": sch.cosine_decay_schedule(1.0, n - w),
          "exponent=2": sch.cosine_decay_schedule(1.0, n - w, exponent=2.0),
          "alpha=0.2": sch.cosine_decay_schedule(1.0, n - w, alpha=0.2)}),
        (f"warmup_constant_schedule(0 -> 1, W={q})",
         {"": sch.warmup_constant_schedule(0.0, 1.0, q)}),
        (f"warmup_cosine_decay_schedule(0 -> 1 -> 0.1, W={w}, T={n - w})",
         {"": sch.warmup_cosine_decay_schedule(0.0, 1.0, w, n - w, 0.1)}),
        (f"warmup_exponential_decay_schedule(0 -> 1, W={w}, T={w}, 0.7, end=0.1)",
         {"": sch.warmup_exponential_decay_schedule(0.0, 1.0, w, w, 0.7, end_value=0.1)}),
        (f"sgdr_schedule(3 cycles of {c} steps, W={c // 5})", {"": sch.sgdr_schedule(sgdr)}),
        (f"cosine_onecycle_schedule(T={n}, peak=1)", {"": sch.cosine_onecycle_schedule(n, 1.0)}),
        (f"linear_onecycle_schedule(T={n}, peak=1)", {"": sch.linear_onecycle_schedule(n, 1.0)}),
        (f"join_schedules([constant, linear, cosine], [{w}, {h}])",
         {"": sch.join_schedules(join, [w, h])}),
        (f"warmup_stable_decay_schedule(0 -> 1 -> 0.1, W={w}, S={h}, D={n - w - h})",
         {t: sch.warmup_stable_decay_schedule(0.0, 1.0, w, h, n - w - h, 0.1, t)
          for t in ("1-sqrt", "linear", "cosine", "1-square")}),
        (f"optix.torch: OneCycleLR(T={n}), CosineAnnealingLR(T_max={h})",
         {"one_cycle_lr": pt.one_cycle_lr(1.0, n),
          "one_cycle_lr momentum": pt.one_cycle_lr(1.0, n).momentum,
          "cosine_annealing_lr": pt.cosine_annealing_lr(1.0, h)}),
        (f"optix.torch: CyclicLR(0.1 -> 1, up={c // 2}), warm restarts(T_0={c // 2}, x2)",
         {f"cyclic_lr {m}": pt.cyclic_lr(0.1, 1.0, c // 2, mode=m, gamma=0.995)
          for m in ("triangular", "triangular2", "exp_range")}
         | {"cosine_annealing_warm_restarts": pt.cosine_annealing_warm_restarts(1.0, c // 2, 2)}),
        (f"optix.torch: StepLR, MultiStepLR, ExponentialLR, LinearLR over {n} steps",
         {"step_lr": pt.step_lr(1.0, q, 0.5),
          "multi_step_lr": pt.multi_step_lr(1.0, [w, h], 0.3),
          "exponential_lr": pt.exponential_lr(1.0, 0.995),
          "linear_lr": pt.linear_lr(1.0, 0.1, 1.0, h),
          "polynomial_lr": pt.polynomial_lr(1.0, n, 2.0)}),
    ]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="run length (>= 5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("schedules.png"))
    args = parser.parse_args()
    if args.steps < 5:
        parser.error("--steps must be >= 5")
    counts = jnp.arange(args.steps + 1)
    grid = panels(args.steps)
    cols = 3
    rows = -(-len(grid) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, grid, strict=False):
        for label, schedule in curves.items():
            ax.plot(np.asarray(counts), np.asarray(jax.jit(jax.vmap(schedule))(counts)),
                    label=label or None, lw=1.6)  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if any(curves):
            ax.legend(fontsize=7, loc="best")
    for ax in axes.flat[len(grid) :]:
        ax.axis("off")
    fig.suptitle(f"optix.schedules over {args.steps} steps (x: step count, y: value)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
