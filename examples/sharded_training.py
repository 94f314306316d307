"""Data-parallel training on 8 host devices, with the optimizer state split 8 ways (ZeRO-1).

Run from the repository root:

    python examples/sharded_training.py --steps 600 --out examples/sharded_training.png

The script asks XLA for 8 CPU devices before JAX starts, so it runs on any machine.
Each batch of the digits MLP of ``train_digits.py`` is split over the 8 devices of a
``data`` mesh axis and the params stay whole on every device (data parallelism), while
the AdamW state is split along the same axis with ``optix.sharding``: created straight
into its shards from abstract params, laid out as if the params were split, and
updated in place by a step that donates it. XLA inserts the collectives; the numbers
are those of one device. It prints the bytes of optimizer state each device holds next
to the unsharded figure, and saves the loss curve to ``--out`` (a PNG, or the losses as
JSON when the name ends in ``.json``).
"""

import os

# Before JAX is imported: XLA reads the host device count once, when it starts.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]
).strip()

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

# The model and data are train_digits.py's (this script's folder is on sys.path).
from train_digits import MLP, batches, cross_entropy, load_data

import optix
import optix.sharding as osh

matplotlib.use("Agg")  # write the PNG without needing a display
import matplotlib.pyplot as plt


def kib(n):
    return f"{n / 1024:.1f} KiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128, help="a multiple of 8")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args()
    if args.batch_size % 8:
        parser.error("--batch-size must be a multiple of the 8 devices")

    x_train, y_train, x_test, y_test = load_data()
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

    model = MLP()
    schedule = optix.warmup_cosine_decay_schedule(0.0, args.lr, args.steps // 10, args.steps)
    tx = optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(schedule, weight_decay=1e-4))

    # Shapes only: neither the params nor the state exist whole before they are placed.
    abstract = jax.eval_shape(model.init, jax.random.key(args.seed), x_train[:1])
    plan = osh.zero_shardings(tx, abstract, replicated, stage=1)
    params = jax.jit(model.init, out_shardings=plan.params)(jax.random.key(args.seed), x_train[:1])
    opt_state = osh.init(tx, abstract, plan.state)

    whole = sum(
        x.size * x.dtype.itemsize for x in jax.tree.leaves(jax.eval_shape(tx.init, abstract))
    )
    held = osh.device_bytes(opt_state)
    print(f"optimizer state: {kib(whole)} unsharded; held per device:")
    for device, nbytes in sorted(held.items(), key=lambda item: item[0].id):
        print(f"  device {device.id}: {kib(nbytes)} ({whole / nbytes:.1f}x less)")

    def train_step(params, opt_state, x, y):
        def loss_fn(p):
            return cross_entropy(model.apply(p, x), y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optix.apply_updates(params, updates), opt_state, loss

    step = osh.jit_step(
        train_step,
        (plan.params, plan.state, split, split),
        (plan.params, plan.state, replicated),
    )

    losses = []
    order = batches(np.random.default_rng(args.seed), len(x_train), args.batch_size)
    with tqdm(range(args.steps), desc="8 devices, ZeRO-1 AdamW") as progress:
        for _ in progress:
            idx = next(order)
            x, y = jax.device_put((x_train[idx], y_train[idx]), split)
            params, opt_state, loss = step(params, opt_state, x, y)
            losses.append(float(loss))
            progress.set_postfix(loss=f"{losses[-1]:.4f}")

    logits = jax.jit(model.apply)(params, x_test)
    accuracy = float(jnp.mean(jnp.argmax(logits, axis=-1) == y_test))
    print(f"final test accuracy: {accuracy:.4f} ({args.steps} steps)")

    if args.out.suffix == ".json":
        args.out.write_text(json.dumps({"losses": losses, "test_accuracy": accuracy}))
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(range(1, len(losses) + 1), losses, lw=0.8)
        ax.set(title="Digits MLP on 8 devices, ZeRO-1 AdamW", xlabel="step", yscale="log")
        ax.set(ylabel="cross-entropy")
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
