"""One of two processes (4 CPU devices each) training on one 8-device mesh over loopback.

    python tests/sharding/two_processes.py <process_id> <port>

Both processes join through ``jax.distributed`` (gloo collectives on CPU), create an
AdamW state split over all 8 devices with ``optix.sharding.init``, and take a few
clipped steps with ``optix.sharding.jit_step``. Each then compares its params with a
run on one of its own devices and prints one JSON object for
tests/sharding/test_eight_devices.py.
"""

import os
import sys

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=4"]
).strip()
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import json

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optix
import optix.sharding as osh

SHAPES = {"w": (64, 16), "b": (16,), "odd": (5,)}


def main(process_id, port):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}]
    grads = grads * 3
    tx = optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(1e-2, weight_decay=0.1))

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optix.apply_updates(p, u), s

    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated = NamedSharding(mesh, P())
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    plan = osh.zero_shardings(tx, abstract, replicated, stage=1)

    def global_array(tree, shardings):
        return jax.tree.map(
            lambda x, sh: jax.make_array_from_callback(x.shape, sh, lambda idx: x[idx]),
            tree,
            shardings,
        )

    p = global_array(params, plan.params)
    state = osh.init(tx, abstract, plan.state)
    fresh_bytes = sum(osh.device_bytes(state).values())
    train = osh.jit_step(step, (plan.params, plan.state, plan.grads), (plan.params, plan.state))
    for g in grads:
        p, state = train(p, state, global_array(g, plan.grads))

    local = jax.local_devices()[0]
    q, s = jax.device_put(params, local), jax.jit(tx.init)(jax.device_put(params, local))
    single = jax.jit(step)
    for g in grads:
        q, s = single(q, s, jax.device_put(g, local))
    mine = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), p)
    diff = max(
        float(np.max(np.abs(a - np.asarray(b))) / np.max(np.abs(np.asarray(b))))
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(q), strict=True)
    )
    mu = state[1][0].mu["w"]
    result = {
        "process": jax.process_index(),
        "global_devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "state_local_bytes": sum(osh.device_bytes(state).values()),
        "state_local_bytes_at_init": fresh_bytes,
        "state_full_bytes": sum(x.nbytes for x in jax.tree.leaves(s)),
        # ZeRO: a leaf with a dim divisible by 8 is split 8 ways, the others stay whole.
        "expected_per_device": sum(
            x.nbytes // 8 if any(n % 8 == 0 for n in x.shape) else x.nbytes
            for x in jax.tree.leaves(s)
        ),
        "mu_block": list(mu.addressable_shards[0].data.shape),
        "mu_fully_addressable": mu.is_fully_addressable,
        "diff": diff,
    }
    print(json.dumps(result))
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
