"""AdamW step time and compile time: optix vs Optax vs torch.optim, side by side in one run.

What is measured, for each (total size, number of leaves) pair, with float32 parameters split
into equal-sized leaves and lr=1e-3, weight_decay=1e-2 everywhere:

* optix and Optax: wall time of one call of a jitted ``step(params, opt_state, grads) ->
  (params, opt_state)`` doing ``update`` + ``apply_updates``, with params and state donated
  (``donate_argnums=(0, 1)``) and the result waited on with ``block_until_ready``.
* torch: wall time of ``opt.step()`` for ``torch.optim.AdamW(..., foreach=True)`` and
  ``fused=True``, with ``.grad`` set once beforehand and the default ``torch.set_num_threads``.
* Compile time: wall time of ``jax.jit(step, donate_argnums=(0, 1)).lower(...).compile()`` on a
  freshly built optimizer, so tracing, lowering and XLA compilation are all included.

Every timing is the median over ``--repeats`` calls after warm-up calls that are not counted
(compile time: median of ``COMPILES`` fresh compiles). The libraries take turns within each
repeat, so each step starts with caches holding the previous library's arrays, as a real
training step starts after a forward and backward pass. Only medians and ratios are reported.

Run from the repository root:

    python benchmarks/step_time.py --sizes 1e6,1e7 --leaves 1,1000 --repeats 20
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from common import fmt_size, median_seconds

import optix

LR = 1e-3
WEIGHT_DECAY = 1e-2
WARMUP = 3
COMPILES = 3


def make_step(opt, apply_updates):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    return step


def jax_runners(make_opt, apply_updates, arrays, grads_np):
    """(one donated step, one fresh compile) of a JAX library, on copies of ``arrays``."""
    # Copies, so that donating them never touches the numpy buffers shared with other libraries.
    params = [jnp.array(a) for a in arrays]
    grads = [jnp.array(g) for g in grads_np]
    opt = make_opt()
    step = jax.jit(make_step(opt, apply_updates), donate_argnums=(0, 1))
    carry = [params, opt.init(params)]

    def run_step():
        carry[0], carry[1] = step(carry[0], carry[1], grads)
        jax.block_until_ready(carry)

    def compile_fresh():
        fresh = make_step(make_opt(), apply_updates)
        jax.jit(fresh, donate_argnums=(0, 1)).lower(carry[0], carry[1], grads).compile()

    return run_step, compile_fresh


def torch_runner(arrays, grads_np, **kind):
    params = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    for p, g in zip(params, grads_np, strict=True):
        p.grad = torch.tensor(g)
    return torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY, **kind).step


def fused_torch_error() -> str | None:
    """Why ``fused=True`` AdamW cannot run on this machine, or None when it can."""
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.ones(4)
    try:
        torch.optim.AdamW([p], lr=LR, weight_decay=WEIGHT_DECAY, fused=True).step()
    except (RuntimeError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="total parameter counts")
    parser.add_argument("--leaves", default="1,1000", help="leaf counts (equal-sized leaves)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.leaves, args.repeats = "1e4", "1,10", 3
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    leaf_counts = [int(s) for s in args.leaves.split(",")]

    fused_error = fused_torch_error()
    device = jax.devices()[0]
    print(
        f"jax {jax.__version__}, optax {optax.__version__}, torch {torch.__version__}; "
        f"device: {device.platform} ({device.device_kind}), {os.cpu_count()} CPU cores, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"AdamW lr={LR} weight_decay={WEIGHT_DECAY}, float32; median of {args.repeats} steps "
        f"after {WARMUP} warm-up steps; compile: median of {COMPILES} fresh compiles"
    )
    if fused_error:
        print(f"torch fused=True unavailable: {fused_error}")
    print()
    print(
        "| size | leaves | optix step ms | Optax step ms | torch foreach ms | torch fused ms "
        "| optix/Optax | optix/torch best | optix compile s | Optax compile s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    rng = np.random.default_rng(0)
    for n in sizes:
        for leaves in leaf_counts:
            per_leaf = n // leaves
            arrays = [rng.standard_normal(per_leaf, dtype=np.float32) for _ in range(leaves)]
            grads = [rng.standard_normal(per_leaf, dtype=np.float32) for _ in range(leaves)]
            optix_step, optix_compile = jax_runners(
                lambda: optix.adamw(LR, weight_decay=WEIGHT_DECAY),
                optix.apply_updates,
                arrays,
                grads,
            )
            optax_step, optax_compile = jax_runners(
                lambda: optax.adamw(LR, weight_decay=WEIGHT_DECAY),
                optax.apply_updates,
                arrays,
                grads,
            )
            steps = {
                "optix": optix_step,
                "optax": optax_step,
                "foreach": torch_runner(arrays, grads, foreach=True),
            }
            if not fused_error:
                steps["fused"] = torch_runner(arrays, grads, fused=True)
            t = median_seconds(steps, args.repeats)
            c = median_seconds({"optix": optix_compile, "optax": optax_compile}, COMPILES, 0)
            best_torch = min(t["foreach"], t.get("fused", t["foreach"]))
            fused_ms = f"{t['fused'] * 1e3:.2f}" if "fused" in t else "n/a"
            print(
                f"| {fmt_size(per_leaf * leaves)} | {leaves} | {t['optix'] * 1e3:.2f} "
                f"| {t['optax'] * 1e3:.2f} | {t['foreach'] * 1e3:.2f} | {fused_ms} "
                f"| {t['optix'] / t['optax']:.2f} | {t['optix'] / best_torch:.2f} "
                f"| {c['optix']:.2f} | {c['optax']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
