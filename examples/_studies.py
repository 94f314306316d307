"""Shared harness of the optimizer studies ``cnn_digits.py`` and ``char_transformer.py``.

Not an example itself. ``main`` trains a ``Task`` with momentum SGD, AdamW and Adan
under one warmup-cosine schedule; with ``--sweep`` it first picks each peak learning
rate from the task's grid by final validation loss (seeds 0, 100, ...), then compares
the three on seeds 1..N, prints markdown tables and draws the curves.
"""

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import matplotlib
import numpy as np
from tqdm import tqdm

import optix

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt

# name -> (plot label, constructor from a schedule). Both adaptive methods get the same
# small decoupled weight decay; SGD gets none, as in the usual CNN recipes.
OPTIMIZERS = {
    "sgd": ("SGD, momentum 0.9", lambda lr: optix.sgd(lr, momentum=0.9)),
    "adamw": ("AdamW", lambda lr: optix.adamw(lr, weight_decay=1e-4)),
    "adan": ("Adan", lambda lr: optix.adan(lr, weight_decay=1e-4)),
}


@dataclass(frozen=True)
class Task:
    """A model and its data: ``metrics(params, batch) -> (mean loss, accuracy)``,
    ``sample(key)`` draws a training batch, ``splits`` holds the fixed "train", "val"
    and "test" evaluation batches (one shape, so one compiled evaluation)."""

    title: str
    init: Callable[[jax.Array], Any]
    metrics: Callable[[Any, Any], tuple[jax.Array, jax.Array]]
    sample: Callable[[jax.Array], Any]
    splits: dict[str, Any]
    lrs: dict[str, float]  # what ``--sweep`` chose, the default run's learning rates
    grids: dict[str, tuple[float, ...]]  # as many candidates for every optimizer


class Trainer:
    """Compiles the model's gradient once and each optimizer's update once: the peak
    learning rate is a traced argument, so a sweep never recompiles."""

    def __init__(self, task: Task, steps: int, evals: int = 20):
        self.task, self.steps, self.eval_every = task, steps, max(1, steps // evals)
        loss = lambda params, key: task.metrics(params, task.sample(key))[0]
        self.grad = jax.jit(jax.grad(loss))
        self.evaluate = jax.jit(task.metrics)
        self.update = {name: jax.jit(self._step(name)) for name in OPTIMIZERS}

    def optimizer(self, name: str, lr: Any) -> optix.GradientTransformation:
        warmup = self.steps // 20  # 5% linear warmup, then cosine decay to zero
        return OPTIMIZERS[name][1](optix.warmup_cosine_decay_schedule(0.0, lr, warmup, self.steps))

    def _step(self, name: str) -> Callable:
        def step(lr, grads, state, params):
            updates, state = self.optimizer(name, lr).update(grads, state, params)
            return optix.apply_updates(params, updates), state

        return step

    def run(self, name: str, lr: float, seed: int, bar: tqdm) -> dict[str, Any]:
        """One run: its evaluation curves, and the test loss and accuracy at the end."""
        key_init, key_data = jax.random.split(jax.random.key(seed))
        params = self.task.init(key_init)
        state, curves = self.optimizer(name, lr).init(params), []
        for step, key in enumerate(jax.random.split(key_data, self.steps), start=1):
            params, state = self.update[name](lr, self.grad(params, key), state, params)
            bar.update()
            if step % self.eval_every == 0 or step == self.steps:
                train_loss, _ = self.evaluate(params, self.task.splits["train"])
                curves.append((step, train_loss, *self.evaluate(params, self.task.splits["val"])))
        run = dict(zip(("step", "train", "val", "val_acc"), np.array(curves).T, strict=True))
        test_loss, test_acc = self.evaluate(params, self.task.splits["test"])
        return run | {"test": float(test_loss), "test_acc": float(test_acc)}

    def run_all(self, jobs: list[tuple[str, float, int]], desc: str) -> list[dict[str, Any]]:
        """One run per (optimizer, learning rate, seed), under one progress bar."""
        results = []
        with tqdm(total=len(jobs) * self.steps, desc=desc) as bar:
            for name, lr, seed in jobs:
                bar.set_postfix(optimizer=name, lr=lr, seed=seed)
                results.append(self.run(name, lr, seed, bar))
        return results


def sweep(trainer: Trainer, seeds: list[int]) -> dict[str, float]:
    """Each optimizer's grid point with the lowest final validation loss (seed mean)."""
    grid = [(name, lr) for name, lrs in trainer.task.grids.items() for lr in lrs]
    runs = trainer.run_all([(name, lr, seed) for name, lr in grid for seed in seeds], "sweep")
    finals = np.reshape([run["val"][-1] for run in runs], (len(grid), len(seeds))).mean(1)
    finals = np.where(np.isfinite(finals), finals, np.inf)  # a diverged run never wins
    print("\n| optimizer | peak lr: final val loss |\n|---|---|")
    best = {}
    for name, lrs in trainer.task.grids.items():
        losses = [loss for (n, _), loss in zip(grid, finals, strict=True) if n == name]
        best[name] = lrs[int(np.argmin(losses))]
        edge = " AT THE GRID'S EDGE" if best[name] in (lrs[0], lrs[-1]) else ""
        cells = ", ".join(f"{lr:g}: {loss:.4f}" for lr, loss in zip(lrs, losses, strict=True))
        print(f"| {name} | {cells} (best {best[name]:g}{edge}) |")
    return best


def summarize(runs: dict[str, list[dict]], lrs: dict[str, float]) -> float:
    """Print the comparison (mean ± std over seeds); return AdamW's final val loss."""
    target = float(np.mean([run["val"][-1] for run in runs["adamw"]]))
    fmt = lambda xs, digits=4: f"{np.mean(xs):.{digits}f} ± {np.std(xs):.{digits}f}"
    header = "optimizer | peak lr | train loss | val loss | val acc | test loss | test acc"
    print(f"\n| {header} | first step at val loss <= {target:.4f} |\n" + "|---" * 8 + "|")
    for name, rs in runs.items():
        hits = [run["step"][run["val"] <= target][:1] for run in rs]  # first hit, if any
        reached = [int(h[0]) for h in hits if len(h)]
        hit = f"{fmt(reached, 0)} ({len(reached)}/{len(rs)} seeds)" if reached else "never"
        cols = [fmt([run[k][-1] for run in rs]) for k in ("train", "val", "val_acc")]
        cols += [fmt([run[k] for run in rs]) for k in ("test", "test_acc")]
        print(f"| {name} | {lrs[name]:g} | {' | '.join(cols)} | {hit} |")
    return target


def plot(runs: dict[str, list[dict]], target: float, title: str, out: Path) -> None:
    """Loss and validation accuracy, mean over seeds with a min..max band."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.6))
    acc_floor = 1.0  # lowest mean accuracy after the first quarter, where the zoom starts
    for color, (name, rs) in zip(("C0", "C1", "C2"), runs.items(), strict=True):
        label, steps = OPTIMIZERS[name][0], rs[0]["step"]
        val, train, acc = (np.array([run[k] for run in rs]) for k in ("val", "train", "val_acc"))
        ax_loss.plot(steps, val.mean(0), color=color)
        ax_loss.fill_between(steps, val.min(0), val.max(0), color=color, alpha=0.2)
        ax_loss.plot(steps, train.mean(0), color=color, ls="--", lw=1)
        ax_acc.plot(steps, acc.mean(0), color=color, label=label)
        ax_acc.fill_between(steps, acc.min(0), acc.max(0), color=color, alpha=0.2)
        acc_floor = min(acc_floor, acc.mean(0)[len(steps) // 4 :].min())
    # Colors name the optimizers in the accuracy panel; the loss panel's legend keys the styles.
    ax_loss.plot([], [], color="k", label="validation")
    ax_loss.plot([], [], color="k", ls="--", lw=1, label="train")
    ax_loss.axhline(target, color="gray", ls=":", label="AdamW's final validation loss")
    ax_loss.set(title="Loss", xlabel="step", ylabel="cross-entropy", yscale="log")
    ax_acc.set(title="Validation accuracy", xlabel="step", ylabel="accuracy")
    ax_acc.set_ylim(acc_floor - 0.02, min(1.0, ax_acc.get_ylim()[1]))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


def main(task: Task, doc: str, script: str, steps: int, seeds: int) -> None:
    """A study's command line: --steps, --seeds, --sweep, --sweep-seeds, --out."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=steps, help="training steps per run")
    parser.add_argument("--seeds", type=int, default=seeds, help="compare on seeds 1..N")
    parser.add_argument("--sweep", action="store_true", help="first pick each lr from its grid")
    parser.add_argument("--sweep-seeds", type=int, default=1, help="sweep on seeds 0, 100, ...")
    parser.add_argument("--out", type=Path, default=Path(script).with_suffix(".png"))
    args = parser.parse_args()
    if args.steps < 2 or args.seeds < 1 or args.sweep_seeds < 1:
        parser.error("--steps must be >= 2, --seeds and --sweep-seeds >= 1")

    start, trainer = time.perf_counter(), Trainer(task, args.steps)
    # The sweep's seeds 0, 100, ... never meet the comparison's seeds 1..N.
    lrs = sweep(trainer, list(range(0, 100 * args.sweep_seeds, 100))) if args.sweep else task.lrs
    jobs = [(name, lrs[name], seed) for name in OPTIMIZERS for seed in range(1, args.seeds + 1)]
    results = iter(trainer.run_all(jobs, "compare"))
    runs = {name: [next(results) for _ in range(args.seeds)] for name in OPTIMIZERS}
    target = summarize(runs, lrs)
    chosen = ", ".join(f"{OPTIMIZERS[name][0]} {lr:g}" for name, lr in lrs.items())
    title = f"{task.title}: {args.steps} steps, {args.seeds} seed(s)\npeak learning rates {chosen}"
    plot(runs, target, title, args.out)
    print(f"wall time: {time.perf_counter() - start:.1f} s after imports")
