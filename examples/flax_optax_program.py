"""A Flax training program written for Optax, run on optix by its import line alone.

Everything below the import is ordinary Optax code, as Flax's examples write it: a linen
CNN in a ``TrainState``, ``optax.softmax_cross_entropy_with_integer_labels``, a warmup-cosine
schedule, gradient clipping chained before AdamW, an evaluation loop, Adam's step count read
from the optimizer state with ``optax.tree.get`` and a checkpoint written with
``flax.serialization``. Replace ``import optix as optax`` by ``import optax`` and it runs on
Optax, with the same numbers to float32 rounding (tests/test_flax_optax_program.py runs both).

Run from the repository root (offline, CPU, about half a minute):

    python examples/flax_optax_program.py

The loss and test accuracy curves are saved to ``examples/flax_optax_program.png``.
"""

import argparse
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import serialization
from flax.training import train_state
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import optix as optax

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt


class CNN(nn.Module):
    """Flax's MNIST CNN, sized for 8x8 digits."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(features=16, kernel_size=(3, 3))(x))
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(features=32, kernel_size=(3, 3))(x))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(features=64)(x))
        return nn.Dense(features=10)(x)


def load_data():
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    return train_test_split(images, digits.target, test_size=0.25, random_state=0)


def create_train_state(rng, learning_rate, steps):
    params = CNN().init(rng, jnp.ones((1, 8, 8, 1)))["params"]
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=learning_rate,
        warmup_steps=steps // 10,
        decay_steps=steps,
        end_value=learning_rate / 100,
    )
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, weight_decay=1e-4),
    )
    return train_state.TrainState.create(apply_fn=CNN().apply, params=params, tx=tx)


@jax.jit
def train_step(state, images, labels):
    def loss_fn(params):
        logits = state.apply_fn({"params": params}, images)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return state, {"loss": loss, "accuracy": accuracy}


@jax.jit
def eval_step(params, images, labels):
    logits = CNN().apply({"params": params}, images)
    one_hot = jax.nn.one_hot(labels, 10)
    loss = optax.softmax_cross_entropy(logits, one_hot).mean()
    return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def evaluate(params, images, labels, batch_size):
    metrics = [
        eval_step(params, images[i : i + batch_size], labels[i : i + batch_size])
        for i in range(0, len(images), batch_size)
    ]
    sizes = np.array([len(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    return {k: float(np.dot([m[k] for m in metrics], sizes) / sizes.sum()) for k in metrics[0]}


def train(steps, batch_size=64, learning_rate=3e-3, eval_every=100, seed=0):
    x_train, x_test, y_train, y_test = load_data()
    state = create_train_state(jax.random.key(seed), learning_rate, steps)
    rng = np.random.default_rng(seed)
    history = {"step": [], "train_loss": [], "test_loss": [], "test_accuracy": []}
    for step in range(1, steps + 1):
        batch = rng.choice(len(x_train), batch_size, replace=False)
        state, metrics = train_step(state, x_train[batch], y_train[batch])
        if step % eval_every == 0 or step == steps:
            test = evaluate(state.params, x_test, y_test, batch_size=256)
            in_adam = lambda path, _: path[-1].tuple_name == "ScaleByAdamState"
            count = int(optax.tree.get(state.opt_state, "count", filtering=in_adam))
            print(
                f"step {step:4d} (optimizer count {count}): train loss {metrics['loss']:.4f}, "
                f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.4f}"
            )
            for key, value in (
                ("step", step),
                ("train_loss", float(metrics["loss"])),
                ("test_loss", test["loss"]),
                ("test_accuracy", test["accuracy"]),
            ):
                history[key].append(value)
    return state, history


def checkpoint_round_trip(state):
    """Write the train state with flax.serialization and read it into a fresh one."""
    restored = serialization.from_bytes(state, serialization.to_bytes(state))
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), state, restored)
    return all(jax.tree.leaves(same))


def plot(history, out):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(history["step"], history["train_loss"], label="train")
    left.plot(history["step"], history["test_loss"], label="test")
    left.set(xlabel="step", ylabel="cross entropy", yscale="log", title="Loss")
    left.legend()
    right.plot(history["step"], history["test_accuracy"])
    right.set(xlabel="step", ylabel="accuracy", title="Test accuracy")
    fig.suptitle("An Optax program on optix: CNN on digits, clip + AdamW, warmup-cosine")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()
    state, history = train(args.steps, eval_every=max(1, min(100, args.steps)))
    print(f"checkpoint round trip exact: {checkpoint_round_trip(state)}")
    print(f"final test accuracy: {history['test_accuracy'][-1]:.4f}")
    plot(history, args.out)


if __name__ == "__main__":
    main()
