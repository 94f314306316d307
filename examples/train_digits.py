"""Train a small MLP on scikit-learn's 8x8 digits with an optix optimizer.

Run from the repository root:

    python examples/train_digits.py

Other optimizers: ``--optimizer {adamw,adam,sgd,nadam,amsgrad,adamax,torch_adamw}``.
The loss curve and test accuracy are saved to ``examples/train_digits.png``.
"""

import argparse
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax.training.train_state import TrainState
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

import optix

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt

# name -> (constructor of the learning rate, its default); SGD needs a larger step than
# the Adam family, whose updates are already normalized per parameter.
OPTIMIZERS = {
    "adamw": (lambda lr: optix.adamw(learning_rate=lr, weight_decay=1e-4), 1e-3),
    "adam": (lambda lr: optix.adam(learning_rate=lr), 1e-3),
    "sgd": (lambda lr: optix.sgd(learning_rate=lr, momentum=0.9, nesterov=True), 3e-2),
    "nadam": (lambda lr: optix.nadam(learning_rate=lr), 1e-3),
    "amsgrad": (lambda lr: optix.amsgrad(learning_rate=lr), 1e-3),
    "adamax": (lambda lr: optix.adamax(learning_rate=lr), 2e-3),
    "torch_adamw": (lambda lr: optix.torch.adamw(lr=lr, weight_decay=1e-2), 1e-3),
}


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(128)(x))
        x = nn.relu(nn.Dense(128)(x))
        return nn.Dense(10)(x)


def cross_entropy(logits, labels):
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


@jax.jit
def train_step(state, x, y):
    def loss_fn(params):
        return cross_entropy(state.apply_fn(params, x), y)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


@jax.jit
def accuracy(state, x, y):
    return jnp.mean(jnp.argmax(state.apply_fn(state.params, x), axis=-1) == y)


def load_data():
    """Standardized float32 inputs and int32 labels, with a fixed 80/20 split."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    # Fit on the training split only, so no test statistics leak into training.
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = (scaler.transform(x).astype(np.float32) for x in (x_train, x_test))
    return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)


def batches(rng, n, batch_size):
    """Index batches from a fresh shuffle each epoch; the ragged tail is dropped so
    every batch has one shape and the train step compiles once."""
    while True:
        perm = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield perm[start : start + batch_size]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adamw")
    parser.add_argument("--lr", type=float, help="learning rate (default: per optimizer)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = load_data()
    if not 1 <= args.batch_size <= len(x_train):
        parser.error(f"--batch-size must be between 1 and {len(x_train)}")

    make_optimizer, default_lr = OPTIMIZERS[args.optimizer]
    lr = default_lr if args.lr is None else args.lr
    model = MLP()
    state = TrainState.create(
        apply_fn=model.apply,
        params=model.init(jax.random.key(args.seed), x_train[:1]),
        tx=make_optimizer(lr),
    )

    eval_every = max(1, args.steps // 25)
    losses, eval_steps, accuracies = [], [], []
    batch_indices = batches(np.random.default_rng(args.seed), len(x_train), args.batch_size)
    with tqdm(range(1, args.steps + 1), desc=f"{args.optimizer} lr={lr:g}") as progress:
        for step in progress:
            idx = next(batch_indices)
            state, loss = train_step(state, x_train[idx], y_train[idx])
            losses.append(float(loss))
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
            if step % eval_every == 0 or step == args.steps:
                eval_steps.append(step)
                accuracies.append(float(accuracy(state, x_test, y_test)))

    print(f"final test accuracy: {accuracies[-1]:.4f} ({args.optimizer}, {args.steps} steps)")

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(range(1, len(losses) + 1), losses, lw=0.8)
    ax_loss.set(title="Training loss", xlabel="step", ylabel="cross-entropy", yscale="log")
    ax_acc.plot(eval_steps, accuracies, marker=".")
    ax_acc.set(title="Test accuracy", xlabel="step", ylabel="accuracy", ylim=(0, 1))
    ax_acc.grid(alpha=0.3)
    fig.suptitle(f"Digits MLP, optix {args.optimizer} (lr={lr:g}): {accuracies[-1]:.1%} test")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
