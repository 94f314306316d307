"""A state sharded over 8 devices is restored onto another mesh, resharded on load.

XLA's host device count is fixed when JAX starts, so the 8-device run is a subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    import optix
    from optix.serialization import (
        abstract_state, from_bytes, restore_state, save_state, to_bytes)

    params = {"w": jnp.arange(64 * 16, dtype=jnp.float32).reshape(64, 16) / 1e3,
              "b": jnp.ones(16)}
    tx = optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(0.1))

    data = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    def zero1(x):  # the first dimension divisible by 8 goes over "data"
        spec = P("data") if x.ndim and x.shape[0] % 8 == 0 else P()
        return NamedSharding(data, spec)
    saved_shardings = abstract_state(tx, params, shardings=lambda a: jax.tree.map(zero1, a))
    out = jax.tree.map(lambda x: x.sharding, saved_shardings)
    state = jax.jit(tx.init, out_shardings=out)(params)
    step = jax.jit(lambda g, s: tx.update(g, s, params)[1], out_shardings=out)
    for t in range(3):
        state = step(jax.tree.map(lambda p: jnp.cos(p * (t + 1)), params), state)

    grid = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    def model_parallel(x):
        return NamedSharding(grid, P(None, "model") if x.ndim == 2 else P())
    target = abstract_state(tx, params, shardings=lambda a: jax.tree.map(model_parallel, a))

    path = tempfile.mkdtemp() + "/ckpt"
    save_state(path, state)
    report = {"saved_mu_w_shard": list(state[1][0].mu["w"].addressable_shards[0].data.shape)}
    for how, restored in [("orbax", restore_state(path, target)),
                          ("msgpack", from_bytes(target, to_bytes(state)))]:
        same = all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(restored), jax.tree.leaves(state)))
        placed = all(r.sharding == t.sharding for r, t in
                     zip(jax.tree.leaves(restored), jax.tree.leaves(target)))
        shard = restored[1][0].mu["w"].addressable_shards[0].data.shape
        report[how] = {"values_equal": same, "on_target_shardings": placed,
                       "mu_w_shard": list(shard), "devices": len(restored[1][0].mu["w"].devices())}
    print(json.dumps(report))
    """
)


def test_an_8_way_sharded_state_restores_onto_a_2x4_mesh():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["saved_mu_w_shard"] == [8, 16]
    for how in ("orbax", "msgpack"):
        assert report[how] == {
            "values_equal": True,
            "on_target_shardings": True,
            "mu_w_shard": [64, 4],
            "devices": 8,
        }
