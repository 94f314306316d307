"""Train the digits MLP with float32 and with 8-bit block-wise quantized Adam(W) moments.

Run from the repository root:

    python examples/train_digits_8bit.py --steps 1000 --out examples/train_digits_8bit.png

Both runs start from the same weights and see the same batches; the only difference is
that ``optix.precision.quantize_moments`` stores the moments as uint8 codes with one
float32 scale per block of ``--block-size`` entries. The script prints both test
accuracies and the optimizer state's bytes per parameter, and plots the two runs.
"""

import argparse
from pathlib import Path

import jax
import matplotlib
import numpy as np
from flax.training.train_state import TrainState
from tqdm import tqdm
from train_digits import MLP, accuracy, batches, load_data, train_step

import optix
from optix.precision import quantize_moments

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt

OPTIMIZERS = {
    "adamw": lambda lr: optix.adamw(learning_rate=lr, weight_decay=1e-4),
    "adam": lambda lr: optix.adam(learning_rate=lr),
}


def state_bytes_per_param(state):
    """Bytes of the optimizer state (moments, scales, counts) per model parameter."""
    n_params = sum(np.size(p) for p in jax.tree.leaves(state.params))
    return sum(np.asarray(x).nbytes for x in jax.tree.leaves(state.opt_state)) / n_params


def train(tx, args, data):
    """Test accuracy every few steps and the loss of every step, for one optimizer."""
    x_train, y_train, x_test, y_test = data
    model = MLP()
    state = TrainState.create(
        apply_fn=model.apply, params=model.init(jax.random.key(args.seed), x_train[:1]), tx=tx
    )
    batch_indices = batches(np.random.default_rng(args.seed), len(x_train), args.batch_size)
    eval_every = max(1, args.steps // 25)
    losses, evals = [], []
    for step in tqdm(range(1, args.steps + 1), leave=False):
        idx = next(batch_indices)
        state, loss = train_step(state, x_train[idx], y_train[idx])
        losses.append(float(loss))
        if step % eval_every == 0 or step == args.steps:
            evals.append((step, float(accuracy(state, x_test, y_test))))
    return state, losses, evals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adamw")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=2048)
    parser.add_argument(
        "--min-size", type=int, default=0, help="leaves smaller than this stay float32"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()

    data = load_data()
    make = OPTIMIZERS[args.optimizer]
    runs = {
        "float32": make(args.lr),
        "8-bit": quantize_moments(
            make(args.lr), block_size=args.block_size, min_size=args.min_size
        ),
    }
    results = {}
    for name, tx in runs.items():
        state, losses, evals = train(tx, args, data)
        results[name] = (losses, evals)
        print(
            f"{name:>7} {args.optimizer}: test accuracy: {evals[-1][1]:.4f}, "
            f"optimizer state {state_bytes_per_param(state):.3f} bytes/param"
        )
    gap = results["8-bit"][1][-1][1] - results["float32"][1][-1][1]
    print(f"8-bit minus float32: {100 * gap:+.2f} points ({args.steps} steps)")

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (losses, evals) in results.items():
        ax_loss.plot(range(1, len(losses) + 1), losses, lw=0.8, label=name)
        ax_acc.plot(*zip(*evals, strict=True), marker=".", label=name)
    ax_loss.set(title="Training loss", xlabel="step", ylabel="cross-entropy", yscale="log")
    ax_acc.set(title="Test accuracy", xlabel="step", ylabel="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"Digits MLP, {args.optimizer} with float32 vs 8-bit block-wise moments")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
