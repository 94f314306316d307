"""Gradient accumulation and bf16 training with fp32 master weights on the digits MLP.

Run from the repository root:

    python examples/digits_accumulation_mixed_precision.py --steps 500 \\
        --out examples/digits_accumulation_mixed_precision.png

Four runs of Adam with a learning rate cosine-decayed to a tenth, from the same weights, on
the same batches (model and data of ``examples/train_digits.py``):

1. fp32, one batch of ``--batch-size`` per step;
2. fp32, each batch split into ``--micro-batches`` micro-batches whose gradients
   ``optix.MultiSteps`` averages before one Adam step: the same loss curve as run 1 up to
   float32 rounding (the script prints the largest difference);
3. bf16 params and activations, Adam run on an fp32 master copy of the weights
   (``optix.precision.with_master_weights``; Adam's moments are fp32 too);
4. bf16 params and Adam state, no master weights: a step under half a bf16 spacing of its
   weight (2**-9 relative) rounds away. The right panel counts, per step, the weights whose
   nonzero step was rounded away (run 4) or held back in the master copy (run 3).
"""

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm import tqdm
from train_digits import MLP, batches, cross_entropy, load_data

import optix
from optix.precision import MasterWeightsState, with_master_weights

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt


def fraction_stuck(old, new, moved):
    """Fraction of weights whose ``moved`` entry is nonzero while ``new`` equals ``old``."""
    stuck = jax.tree.map(lambda o, n, m: jnp.sum((n == o) & (m != 0)), old, new, moved)
    return sum(jax.tree.leaves(stuck)) / sum(p.size for p in jax.tree.leaves(old))


def make_step(tx, dtype):
    """A jitted step: loss and gradient in ``dtype`` (logits and loss in fp32), then ``tx``."""
    model = MLP()

    def loss_fn(params, x, y):
        return cross_entropy(model.apply(params, x.astype(dtype)).astype(jnp.float32), y)

    @jax.jit
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, new_state = tx.update(grads, state, params)
        new_params = optix.apply_updates(params, updates)
        # A weight is stuck if the optimizer moved it but its stored value did not change:
        # without master weights the step is lost; with them it waits in the fp32 copy.
        moved = updates
        if isinstance(state, MasterWeightsState):
            moved = jax.tree.map(jnp.subtract, new_state.master, state.master)
        return new_params, new_state, loss, fraction_stuck(params, new_params, moved)

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak of the cosine decay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()
    k = args.micro_batches
    if args.batch_size % k:
        parser.error("--batch-size must be a multiple of --micro-batches")

    x_train, y_train, x_test, y_test = load_data()
    params32 = MLP().init(jax.random.key(args.seed), x_train[:1])
    params16 = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params32)
    schedule = optix.cosine_decay_schedule(args.lr, args.steps, alpha=0.1)
    adam = optix.adam(schedule)
    runs = {  # name -> (initial params, optimizer, compute dtype, micro-batches per step)
        "bf16, no master weights": (params16, adam, jnp.bfloat16, 1),
        "bf16 + fp32 master weights": (params16, with_master_weights(adam), jnp.bfloat16, 1),
        "fp32": (params32, adam, jnp.float32, 1),
        f"fp32, {k} accumulated micro-batches": (
            params32, optix.MultiSteps(adam, k).gradient_transformation(), jnp.float32, k),
    }  # fmt: skip
    stream = batches(np.random.default_rng(args.seed), len(x_train), args.batch_size)
    batch_indices = [next(stream) for _ in range(args.steps)]

    results = {}  # name -> (loss per step, % of weights stuck per step, test accuracy, params)
    for name, (params, tx, dtype, micro) in runs.items():
        step, state = make_step(tx, dtype), tx.init(params)
        losses, stuck = [], []
        for idx in tqdm(batch_indices, desc=name):
            micro_losses = []
            for part in np.split(idx, micro):
                params, state, loss, frac = step(params, state, x_train[part], y_train[part])
                micro_losses.append(loss)
            losses.append(float(np.mean(micro_losses)))  # equal-size micro means: the batch's
            stuck.append(100 * float(frac))
        logits = MLP().apply(params, jnp.asarray(x_test).astype(dtype))
        acc = float(jnp.mean(jnp.argmax(logits, axis=-1) == y_test))
        results[name] = (np.array(losses), np.array(stuck), acc, params)
        tail = np.mean(losses[-max(1, args.steps // 10) :])
        print(f"{name:<34} test accuracy: {acc:.4f}, loss over the last 10%: {tail:.3e}")

    (full, _, _, p_full), (accumulated, _, _, p_acc) = list(results.values())[2:]
    rel_gap = np.abs(accumulated - full) / full
    leaves = zip(jax.tree.leaves(p_full), jax.tree.leaves(p_acc), strict=True)
    p_gap = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in leaves)
    print(f"accumulated vs full batch: max |loss difference| {np.abs(accumulated - full).max():.2e}"
          f" ({rel_gap.max():.2e} relative), max |param difference| {p_gap:.2e}")  # fmt: skip
    for name in list(runs)[:2]:
        print(f"{name}: {results[name][1].mean():.1f}% of weights stuck per step on average")

    t = np.arange(1, args.steps + 1)
    fig, (ax_loss, ax_gap, ax_stuck) = plt.subplots(1, 3, figsize=(17, 4.8))
    for (name, (losses, _, acc, _)), ls in zip(results.items(), "---:", strict=True):
        ax_loss.plot(
            t, losses, ls=ls, lw=1.0 if ls == "-" else 1.6, label=f"{name}: {acc:.1%} test"
        )
    ax_loss.set(title="Training loss", xlabel="optimizer step", ylabel="cross-entropy")
    ax_gap.plot(t[rel_gap > 0], rel_gap[rel_gap > 0], ".", ms=3, color="tab:purple")
    ax_gap.axhline(np.finfo(np.float32).eps, color="0.3", ls="--", label="float32 epsilon")
    ax_gap.set(xlabel="optimizer step", ylabel="relative loss difference")
    ax_gap.set_title(f"{k} accumulated micro-batches vs full batch\n(equal losses on "
                     f"{np.sum(rel_gap == 0)} of {args.steps} steps, not drawn)")  # fmt: skip
    for name in list(runs)[:2]:
        ax_stuck.plot(t, results[name][1], lw=0.9, label=name)
    ax_stuck.set(title="Weights whose bf16 value the step left unchanged", xlabel="optimizer step",
                 ylabel="% of weights (lost without master, kept in it with)")  # fmt: skip
    ax_lr = ax_stuck.twinx()
    ax_lr.plot(t, [float(schedule(i)) for i in range(args.steps)], ":", color="0.4")
    ax_lr.set(ylabel="learning rate (dotted)", ylim=(0, None))
    for ax in (ax_loss, ax_gap, ax_stuck):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="center right" if ax is ax_stuck else "best")
    ax_loss.set_yscale("log")
    ax_gap.set_yscale("log")
    fig.suptitle(f"Digits MLP, Adam (lr {args.lr:g} cosine-decayed to {args.lr / 10:g}), "
                 f"batch {args.batch_size}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
