"""Parameter groups: AdamW that decays only matrices, with a slower first layer.

Run from the repository root:

    python examples/param_groups.py

The digits MLP of ``train_digits.py`` trains with one AdamW per group: the first layer
(``params/Dense_0/...``) at a tenth of the learning rate, the rest at the full rate;
in both, weight decay reaches only the parameters with ndim >= 2 (kernels, not
biases). The script prints which parameter got which settings, then the test accuracy,
and saves the loss curve to ``examples/param_groups.png``.
"""

import argparse
from pathlib import Path

import jax
import matplotlib
import numpy as np
from flax.training.train_state import TrainState

# The model, data and train step are train_digits.py's (this script's folder is on sys.path).
from train_digits import MLP, accuracy, batches, load_data, train_step

import optix
from optix.transforms.labels import (
    labels_by_path,
    leaves_with_paths,
    ndim_at_least,
    paths_by_label,
)
from optix.transforms.partition import partition

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt

# Anything under the first Dense layer is in group "first"; every other path in "rest".
GROUPS = labels_by_path({r"^params/Dense_0/": "first"}, default="rest")
DECAYED = ndim_at_least(2)


def make_optimizer(lr, first_layer_factor, weight_decay):
    """One AdamW per group, each decaying only its matrices; returns it and its settings."""
    settings = {"first": lr * first_layer_factor, "rest": lr}
    tx = partition(
        {
            group: optix.adamw(group_lr, weight_decay=weight_decay, mask=DECAYED)
            for group, group_lr in settings.items()
        },
        GROUPS,
    )
    return tx, settings


def print_groups(params, settings, weight_decay):
    """The learning rate and weight decay each parameter gets, from the same labels and
    mask the optimizer was built with."""
    decayed = set(paths_by_label(DECAYED, params).get(True, []))
    shapes = {path: np.shape(leaf) for path, leaf in leaves_with_paths(params)}
    print(f"{'parameter':<26}{'shape':<12}{'group':<8}{'lr':<10}weight decay")
    for group, paths in sorted(paths_by_label(GROUPS, params).items()):
        for path in paths:
            decay = weight_decay if path in decayed else 0.0
            shape = str(shapes[path])
            print(f"{path:<26}{shape:<12}{group:<8}{settings[group]:<10.3g}{decay:g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--first-layer-factor", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = load_data()
    model = MLP()
    params = model.init(jax.random.key(args.seed), x_train[:1])
    tx, settings = make_optimizer(args.lr, args.first_layer_factor, args.weight_decay)
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    print_groups(params, settings, args.weight_decay)

    losses = []
    batch_indices = batches(np.random.default_rng(args.seed), len(x_train), args.batch_size)
    for _ in range(args.steps):
        idx = next(batch_indices)
        state, loss = train_step(state, x_train[idx], y_train[idx])
        losses.append(float(loss))
    test_accuracy = float(accuracy(state, x_test, y_test))
    print(f"final test accuracy: {test_accuracy:.4f} ({args.steps} steps)")

    window = max(1, min(50, len(losses) // 10))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    plt.figure(figsize=(6, 4))
    plt.semilogy(losses, lw=0.6, alpha=0.5, label="per step")
    plt.semilogy(np.arange(window - 1, len(losses)), smooth, label=f"mean of {window}")
    plt.xlabel("step")
    plt.ylabel("cross-entropy")
    plt.legend()
    plt.title(f"Digits MLP, AdamW by parameter group: {test_accuracy:.1%} test")
    plt.tight_layout()
    plt.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
