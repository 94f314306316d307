"""Optimizer paths on the 2-D Rosenbrock function, drawn over its contour plot.

Run from the repository root:

    python examples/rosenbrock_paths.py --steps 1000 --out examples/rosenbrock_paths.png

f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 has its minimum at (1, 1) at the end of a long, curved,
flat-bottomed valley. Every optimizer starts at the classic point (-1.2, 1.0). Each first-order
optimizer is tuned the same way: it runs ``--steps`` steps at every learning rate of
``LEARNING_RATES`` (quarter decades from 1e-4 to 10, all in one vmapped scan) and keeps the one
whose run ends at the lowest f. L-BFGS has no learning rate: its zoom line search picks each
step, it gets ``value``, ``grad`` and ``value_fn``, and its path has one point per iteration
(each iteration evaluates f a few times) until the gradient norm falls under 1e-9. The script
prints each optimizer's learning rate and final distance to (1, 1).
"""

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm import tqdm

import optix

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm

START = (-1.2, 1.0)
MINIMUM = np.array([1.0, 1.0])
LEARNING_RATES = 10.0 ** np.arange(-4.0, 1.01, 0.25)

# name -> constructor of a learning rate; hyperparameters besides it are each method's defaults.
OPTIMIZERS = {
    "SGD": lambda lr: optix.sgd(lr),
    "Momentum": lambda lr: optix.sgd(lr, momentum=0.9),
    "Nesterov": lambda lr: optix.sgd(lr, momentum=0.9, nesterov=True),
    "Adagrad": lambda lr: optix.adagrad(lr),
    "RMSprop": lambda lr: optix.rmsprop(lr),
    "Adam": lambda lr: optix.adam(lr),
    "AdamW": lambda lr: optix.adamw(lr, weight_decay=1e-4),
    "Adan": lambda lr: optix.adan(lr),
    "Lion": lambda lr: optix.lion(lr),
}


def rosenbrock(xy):
    x, y = xy[0], xy[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def tuned_path(make, steps):
    """Path (steps + 1, 2) and learning rate of the grid run that ends at the lowest f."""

    def run(lr):
        tx = make(lr)

        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(rosenbrock)(params), state, params)
            params = optix.apply_updates(params, updates)
            return (params, state), params

        start = jnp.asarray(START, jnp.float32)
        _, path = jax.lax.scan(step, (start, tx.init(start)), length=steps)
        return jnp.concatenate([start[None], path])

    paths = np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(LEARNING_RATES, jnp.float32)))
    final = np.asarray(jax.vmap(rosenbrock)(paths[:, -1]))
    best = int(np.argmin(np.where(np.isfinite(final), final, np.inf)))  # diverged runs lose
    return paths[best], float(LEARNING_RATES[best])


def lbfgs_path(max_iters, gtol=1e-9):
    """L-BFGS iterates from START until |grad| < gtol or ``max_iters`` iterations."""
    tx = optix.lbfgs()
    value_and_grad = optix.value_and_grad_from_state(rosenbrock)

    @jax.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=rosenbrock)
        return optix.apply_updates(params, updates), state, jnp.linalg.norm(grad)

    params = jnp.asarray(START, jnp.float32)
    state, path = tx.init(params), [np.asarray(params)]
    for _ in range(max_iters):
        params, state, grad_norm = step(params, state)
        if grad_norm < gtol:  # measured at the last recorded point, which is the optimum
            break
        path.append(np.asarray(params))
    return np.stack(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per first-order run")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()

    results = {}
    with tqdm([*OPTIMIZERS, "L-BFGS"], desc="optimizers") as progress:
        for name in progress:
            progress.set_postfix(now=name)
            if name == "L-BFGS":
                results[name] = (lbfgs_path(args.steps), None)
            else:
                results[name] = tuned_path(OPTIMIZERS[name], args.steps)

    print(f"{'optimizer':<10} {'lr':>8} {'steps':>6} {'f(final)':>10} {'|final - (1, 1)|':>17}")
    for name, (path, lr) in results.items():
        dist = np.linalg.norm(path[-1] - MINIMUM)
        f_end = float(rosenbrock(path[-1]))
        lr_text = "search" if lr is None else f"{lr:.3g}"
        print(f"{name:<10} {lr_text:>8} {len(path) - 1:>6} {f_end:>10.2e} {dist:>17.2e}")

    xs, ys = np.meshgrid(np.linspace(-2.0, 2.0, 300), np.linspace(-1.0, 3.0, 300))
    zs = rosenbrock((xs, ys))
    levels = np.logspace(-1, 3.5, 19)
    fig, axes = plt.subplots(2, 5, figsize=(18, 7.6), sharex=True, sharey=True)
    for ax, (name, (path, lr)) in zip(axes.flat, results.items(), strict=True):
        ax.contourf(xs, ys, zs, levels=levels, norm=LogNorm(), cmap="Blues_r", extend="both")
        marker = "." if len(path) <= 100 else None  # few points: show every iterate
        ax.plot(path[:, 0], path[:, 1], color="tab:orange", lw=1.4, marker=marker, ms=4)
        ax.plot(*START, "o", color="black", ms=6, label="start (-1.2, 1)")
        ax.plot(*path[-1], "o", color="tab:red", ms=6, label="end")
        ax.plot(*MINIMUM, "*", color="gold", mec="black", ms=13, label="minimum (1, 1)")
        setting = f"line search, {len(path) - 1} iterations" if lr is None else f"lr={lr:.3g}"
        dist = np.linalg.norm(path[-1] - MINIMUM)
        ax.set_title(f"{name} ({setting})\n|end - (1, 1)| = {dist:.1e}")
        ax.set(xlim=(-2, 2), ylim=(-1, 3))
    plt.setp(axes[-1], xlabel="x")
    plt.setp(axes[:, 0], ylabel="y")
    axes.flat[0].legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.suptitle(
        r"Rosenbrock $f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$ from (-1.2, 1): each learning rate "
        rf"is the best of a $10^{{-4}}$ to $10$ grid (final $f$ after {args.steps} steps)",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
