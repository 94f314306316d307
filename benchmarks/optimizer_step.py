"""Step time of every registry optimizer: optix (leaf by leaf and packed), Optax, torch.optim.

For each optimizer and each (total size, number of leaves), float32 parameters split into
equal 1-D leaves, one run times side by side, taking turns within every repeat:

* ``kernel``: the STREAM-like in-place C kernel of ``bandwidth.py`` on the same number of
  parameters (28 bytes per parameter). The optimizer's floor is this time scaled by the
  bytes the optimizer must move per parameter (3 x 4 for p and g, plus 2 x its state
  bytes per parameter) over 28.
* ``optix``: ``donating_step(tx)`` on the tree of leaves (the plain path).
* ``packed``: ``donating_step(packed(tx, layout))`` on the buffers of ``layout`` (params
  and gradients kept packed; the loss would unpack them). Where ``packing_plan`` refuses,
  this is the fallback (unpack, plain, pack) and the ``plan`` column says why.
* ``packed tree`` (``--tree-packed``): ``packed(tx)`` on the tree, which packs and unpacks
  every step.
* ``one leaf`` (with more than one leaf): ``donating_step(tx)`` on the same parameters as a
  single leaf, the reference of the many-leaves targets.
* ``Optax``: the optimizer of the same name in ``optax`` (or ``optax.contrib``), jitted and
  donated the same way.
* ``torch``: the torch.optim class of the same name, ``fused=True`` where torch has it on
  CPU and ``foreach=True`` otherwise, ``.grad`` set once.

optix and Optax are built as ``<name>(1e-3)`` with their defaults where Optax has the
name; other optimizers use the registry's test hyperparameters (the step does the same
work whatever their values). Medians of ``--repeats`` steps after 3 warm-up steps.

    python benchmarks/optimizer_step.py --sizes 1e6,1e7,5e7 --leaves 1,1000,4096 \
        --optimizers adamw,adam,sgd --repeats 20 --out adamw.json
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from bandwidth import ADAMW_BYTES, floor_bytes_per_param, kernel_runners
from common import fmt, fmt_size, load_average, median_seconds, table

import optix
from optix.transforms.packing import Layout, donating_step, packed, packing_plan
from tests.registry import ENTRIES

LR = 1e-3
TORCH = {
    "sgd": ("SGD", {}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "nadam": ("NAdam", {}),
    "amsgrad": ("Adam", {"amsgrad": True}),
    "adamax": ("Adamax", {}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
    "rmsprop": ("RMSprop", {}),
    "rprop": ("Rprop", {}),
    "asgd": ("ASGD", {}),
    "radam": ("RAdam", {}),
}
EXTRA_ARGS = {"polyak_sgd": {"value": 1.0}}


def optax_maker(name: str):
    for namespace in (optax, optax.contrib):
        if hasattr(namespace, name):
            return lambda: getattr(namespace, name)(LR)
    return None


def optix_maker(name: str):
    if optax_maker(name) is not None:
        return lambda: getattr(optix, name)(LR)
    if name.startswith("torch.") and name[6:] in TORCH:
        return lambda: getattr(optix.torch, name[6:])(LR)
    return ENTRIES[name].make


def state_bytes_per_param(tx, params) -> float:
    """Bytes of parameter-sized state per parameter (shared scalars do not count)."""
    n = sum(x.size for x in jax.tree.leaves(params))
    state = jax.eval_shape(tx.init, params)
    big = [x for x in jax.tree.leaves(state) if x.size >= n / max(len(jax.tree.leaves(params)), 1)]
    return sum(x.size * x.dtype.itemsize for x in big) / n


def jax_runner(tx, apply_fn, params, grads, extra, profiles=None, label=""):
    """One donated step as a no-argument call, on copies of ``params``."""
    carry = [jax.tree.map(jnp.array, params)]
    carry.append(jax.tree.map(jnp.copy, tx.init(carry[0])))  # init may share constants
    compiled = donating_step(tx, apply_fn).lower(carry[0], carry[1], grads, **extra).compile()
    if profiles is not None:
        profiles[label] = hlo_profile(compiled)

    def run():
        carry[0], carry[1] = compiled(carry[0], carry[1], grads, **extra)
        jax.block_until_ready(carry)

    return run


def hlo_profile(compiled) -> dict:
    """Kernels in the optimized HLO, XLA's bytes-accessed estimate, scratch memory."""
    entry = compiled.as_text().split("ENTRY")[-1]
    kernels = sum(line.count(" fusion(") + line.count(" copy(") for line in entry.splitlines())
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    memory = compiled.memory_analysis()
    return {
        "kernels": kernels,
        "bytes": cost.get("bytes accessed", float("nan")),
        "temp": memory.temp_size_in_bytes,
    }


def torch_runner(name: str, arrays, grads):
    cls, kwargs = TORCH[name.removeprefix("torch.")]
    params = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.tensor(g)
    try:
        opt = getattr(torch.optim, cls)(params, lr=LR, fused=True, **kwargs)
        opt.step()
        return opt.step, "fused"
    except (TypeError, RuntimeError):
        return getattr(torch.optim, cls)(params, lr=LR, foreach=True, **kwargs).step, "foreach"


def run_one(name, n, leaves, repeats, tree_packed, rng, profiles=None):
    per_leaf = n // leaves
    arrays = [rng.standard_normal(per_leaf, dtype=np.float32) for _ in range(leaves)]
    grads_np = [(1e-2 * rng.standard_normal(per_leaf)).astype(np.float32) for _ in range(leaves)]
    params = {f"p{i:05d}": jnp.asarray(a) for i, a in enumerate(arrays)}
    grads = {f"p{i:05d}": jnp.asarray(g) for i, g in enumerate(grads_np)}
    layout = Layout.of(params)
    make, extra = optix_maker(name), EXTRA_ARGS.get(name, {})
    plan = packing_plan(make(), params, extra)
    flat_params, flat_grads = layout.pack(params), layout.pack(grads)
    runners = {"kernel": kernel_runners(per_leaf * leaves)["stream"]}
    jax_args = {"profiles": profiles}
    runners["optix"] = jax_runner(
        make(), optix.apply_updates, params, grads, extra, label="optix", **jax_args
    )
    fast = packed(make(), layout, extra_args=extra)
    runners["packed"] = jax_runner(
        fast, optix.apply_updates, flat_params, flat_grads, extra, label="packed", **jax_args
    )
    if tree_packed:
        fast = packed(make(), extra_args=extra)
        runners["packed tree"] = jax_runner(
            fast, optix.apply_updates, params, grads, extra, label="packed tree", **jax_args
        )
    if optax_maker(name) is not None:
        tx = optax_maker(name)()
        runners["Optax"] = jax_runner(
            tx, optax.apply_updates, params, grads, extra, label="Optax", **jax_args
        )
    if leaves > 1:  # the same parameters as one leaf, timed in the same turns
        one = {"p": jnp.concatenate(list(params.values()))}
        one_grad = {"p": jnp.concatenate(list(grads.values()))}
        runners["one leaf"] = jax_runner(make(), optix.apply_updates, one, one_grad, extra)
    torch_kind = None
    if name.removeprefix("torch.") in TORCH:
        runners["torch"], torch_kind = torch_runner(name, arrays, grads_np)
    times = median_seconds(runners, repeats)
    state_bytes = state_bytes_per_param(make(), flat_params)
    floor = times["kernel"] * floor_bytes_per_param(state_bytes) / ADAMW_BYTES
    return {
        "optimizer": name,
        "size": per_leaf * leaves,
        "leaves": leaves,
        "state_bytes": state_bytes,
        "floor": floor,
        "plan": "packed" if plan.packable else f"fallback: {plan.reason[:60]}",
        "torch_kind": torch_kind,
        **{k: v for k, v in times.items()},
    }


def row(r: dict) -> list[str]:
    ms = lambda k: fmt(r[k] * 1e3) if k in r else "n/a"
    ratio = lambda a, b: fmt(r[a] / r[b]) if a in r and b in r else "n/a"
    return [
        r["optimizer"],
        fmt_size(r["size"]),
        str(r["leaves"]),
        f"{r['state_bytes']:g}",
        ms("floor"),
        ms("optix"),
        ms("packed"),
        ms("packed tree"),
        ms("Optax"),
        ms("torch") + (f" ({r['torch_kind']})" if r["torch_kind"] else ""),
        ratio("packed", "floor"),
        ratio("packed", "one leaf") if r["leaves"] > 1 else "1",
        ratio("packed", "optix"),
        ratio("packed", "Optax"),
        ratio("packed", "torch"),
        r["plan"],
    ]


HEADER = [
    "optimizer",
    "size",
    "leaves",
    "state B/param",
    "floor ms",
    "optix ms",
    "packed ms",
    "packed tree ms",
    "Optax ms",
    "torch ms",
    "packed/floor",
    "packed/one leaf",
    "packed/optix",
    "packed/Optax",
    "packed/torch",
    "plan",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,5e7", help="total parameter counts")
    parser.add_argument("--leaves", default="1,1000,4096", help="leaf counts")
    parser.add_argument("--optimizers", default="", help="registry names (default: all)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tree-packed", action="store_true", help="also time packed(tx) on trees")
    parser.add_argument("--out", default="", help="also write the rows as JSON here")
    parser.add_argument(
        "--hlo", action="store_true", help="also print kernels, bytes accessed and scratch"
    )
    args = parser.parse_args()
    names = args.optimizers.split(",") if args.optimizers else sorted(ENTRIES)
    names = [n for n in names if not ENTRIES[n].objective]  # line searches need an objective
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    leaf_counts = [int(s) for s in args.leaves.split(",")]
    print(
        f"jax {jax.__version__}, optax {optax.__version__}, torch {torch.__version__}, "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}; {load_average()}"
    )
    rows, rng = [], np.random.default_rng(0)
    for name in names:
        for n in sizes:
            for leaves in leaf_counts:
                profiles = {} if args.hlo else None
                rows.append(run_one(name, n, leaves, args.repeats, args.tree_packed, rng, profiles))
                print(table(HEADER, [row(rows[-1])]).splitlines()[-1], flush=True)
                if profiles:
                    rows[-1]["hlo"] = profiles
                    for label, p in profiles.items():
                        print(
                            f"    {label}: {p['kernels']} kernels, XLA bytes accessed "
                            f"{p['bytes'] / rows[-1]['size']:.1f} B/param, scratch "
                            f"{p['temp'] / rows[-1]['size']:.2f} B/param"
                        )
    print(f"\nafter the run: {load_average()}\n")
    print(table(HEADER, [row(r) for r in rows]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"load": load_average(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
