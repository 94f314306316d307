"""Train the digits MLP with 20 optix optimizers and compare their loss curves.

Run from the repository root:

    python examples/digits_optimizers.py --steps 500 --out examples/digits_optimizers.png

The model, data split and cross-entropy are those of ``examples/train_digits.py``. Every
optimizer starts from the same weights and sees the same batches. Each one is tuned the same
way: it trains at every learning rate of ``LEARNING_RATES`` (half decades from 1e-4 to 1, all
in one vmapped step) and keeps the one with the lowest mean training loss over the run (the
area under its loss curve, so fast progress counts, not only the end); the test set only
scores the chosen run. Other hyperparameters are each method's defaults. The script prints
a table of mean and final training loss and test accuracy per optimizer.
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

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt

LEARNING_RATES = 10.0 ** np.arange(-4.0, 0.01, 0.5)

# name -> constructor of a learning rate; hyperparameters besides it are each method's defaults.
OPTIMIZERS = {
    "sgd": lambda lr: optix.sgd(lr),
    "momentum": lambda lr: optix.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optix.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": lambda lr: optix.adagrad(lr),
    "rmsprop": lambda lr: optix.rmsprop(lr),
    "adam": lambda lr: optix.adam(lr),
    "adamw": lambda lr: optix.adamw(lr, weight_decay=1e-4),
    "nadam": lambda lr: optix.nadam(lr),
    "radam": lambda lr: optix.radam(lr),
    "amsgrad": lambda lr: optix.amsgrad(lr),
    "adamax": lambda lr: optix.adamax(lr),
    "adabelief": lambda lr: optix.adabelief(lr),
    "yogi": lambda lr: optix.yogi(lr),
    "adan": lambda lr: optix.adan(lr),
    "lion": lambda lr: optix.lion(lr),
    "lamb": lambda lr: optix.lamb(lr),
    "lars": lambda lr: optix.lars(lr),
    "adafactor": lambda lr: optix.adafactor(lr),
    "novograd": lambda lr: optix.novograd(lr),
    "sm3": lambda lr: optix.sm3(lr),
}


def shared_functions(data):
    """Loss and gradient, and test accuracy, each vmapped over a stack of params; they are
    compiled once for all optimizers, so each optimizer only compiles its own update."""
    x_test, y_test = jnp.asarray(data[2]), jnp.asarray(data[3])
    model = MLP()

    def loss_fn(params, x, y):
        return cross_entropy(model.apply(params, x), y)

    def accuracy(params):
        return jnp.mean(jnp.argmax(model.apply(params, x_test), axis=-1) == y_test)

    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(loss_fn), in_axes=(0, None, None)))
    return value_and_grad, jax.jit(jax.vmap(accuracy))


def train_all_rates(make, params, batch_stream, value_and_grad, accuracy, progress):
    """Per-step training losses (rates, steps) and test accuracies (rates,) for every rate."""
    lrs = jnp.asarray(LEARNING_RATES, jnp.float32)

    @jax.jit
    @jax.vmap
    def apply_step(grads, state, params, lr):
        updates, state = make(lr).update(grads, state, params)
        return optix.apply_updates(params, updates), state

    state = jax.vmap(lambda p, lr: make(lr).init(p))(params, lrs)
    losses = []
    for x, y in batch_stream:
        loss, grads = value_and_grad(params, x, y)
        params, state = apply_step(grads, state, params, lrs)
        losses.append(loss)  # kept on device: no sync, so steps dispatch ahead
        progress.update()
    return np.asarray(jnp.stack(losses, axis=1)), np.asarray(accuracy(params))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    parser.add_argument(
        "--optimizers", default=",".join(OPTIMIZERS), help="comma-separated subset to train"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.optimizers.split(",")) - set(OPTIMIZERS))
    if unknown:
        parser.error(f"unknown optimizers {unknown}; choose from {sorted(OPTIMIZERS)}")
    chosen = {name: OPTIMIZERS[name] for name in args.optimizers.split(",")}

    data = load_data()
    x_train, y_train, *_ = data
    value_and_grad, accuracy = shared_functions(data)
    params = MLP().init(jax.random.key(args.seed), x_train[:1])
    params = jax.tree.map(lambda p: jnp.stack([p] * len(LEARNING_RATES)), params)
    stream = batches(np.random.default_rng(args.seed), len(x_train), args.batch_size)
    batch_indices = [next(stream) for _ in range(args.steps)]
    tail = max(1, args.steps // 10)

    results = {}
    with tqdm(total=len(chosen) * args.steps, desc="steps, all optimizers") as progress:
        for name, make in chosen.items():
            progress.set_postfix(now=name)
            batch_stream = ((x_train[i], y_train[i]) for i in batch_indices)
            losses, accuracies = train_all_rates(
                make, params, batch_stream, value_and_grad, accuracy, progress
            )
            score = np.nan_to_num(losses.mean(axis=1), nan=np.inf)  # diverged runs lose
            best = int(np.argmin(score))
            results[name] = (losses[best], float(accuracies[best]), float(LEARNING_RATES[best]))

    # The table and the panels list the optimizers by the tuning score, best first.
    ranked = sorted(results, key=lambda name: results[name][0].mean())
    print(f"{'optimizer':<10} {'lr':>7} {'mean loss':>10} {'final loss':>11} {'test acc':>9}")
    for name in ranked:
        losses, accuracy, lr = results[name]
        final = losses[-tail:].mean()
        print(f"{name:<10} {lr:>7.0e} {losses.mean():>10.4f} {final:>11.2e} {accuracy:>9.4f}")

    # Small multiples: each panel draws one optimizer in color over all the others in grey;
    # a running mean over `width` steps keeps 20 noisy curves legible.
    width = max(1, args.steps // 50)
    steps = np.arange(width, args.steps + 1)
    curves = {n: np.convolve(results[n][0], np.ones(width) / width, "valid") for n in ranked}
    cols = min(5, len(ranked))
    rows = -(-len(ranked) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 2.6 * rows), sharex=True, sharey=True, squeeze=False
    )
    for ax in axes.flat[len(ranked) :]:
        ax.set_axis_off()
    for rank, (ax, name) in enumerate(zip(axes.flat, ranked, strict=False), start=1):
        for other in ranked:  # not antialiased: 400 background curves would bloat the PNG
            ax.plot(steps, curves[other], color="0.78", lw=0.6, antialiased=False)
        _, accuracy, lr = results[name]
        ax.plot(steps, curves[name], color="tab:blue", lw=1.6)
        ax.set_title(f"{rank}. {name} (lr={lr:.0e}): {accuracy:.1%} test", fontsize=10)
        ax.set(yscale="log", ylim=(1e-6, 5))
        ax.grid(alpha=0.3)
    plt.setp(axes[-1], xlabel="step")
    plt.setp(axes[:, 0], ylabel="training loss")
    fig.suptitle(
        f"Digits MLP: {len(chosen)} optix optimizers, {args.steps} steps of batch "
        f"{args.batch_size} (cross-entropy, running mean over {width} steps), each at its best "
        "learning rate in 1e-4 to 1; ranked by mean training loss"
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
