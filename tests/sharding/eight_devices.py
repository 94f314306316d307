"""Checks that need 8 devices, run as a script so the device count is set before JAX starts.

    python tests/sharding/eight_devices.py registry 0 2    # the first half of the registry
    python tests/sharding/eight_devices.py reductions

Prints one JSON object, ``{check: result}``, that tests/sharding/test_eight_devices.py
asserts on. Both the single-device and the sharded runs compile with
``jax_disable_most_optimizations`` (compile time dominates here); they share the flag,
so the comparison is like for like.
"""

import os
import sys

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]
).strip()
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import json

import jax
import numpy as np

jax.config.update("jax_disable_most_optimizations", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

from tests.sharding import checks  # noqa: E402


def main(argv):
    if argv[0] == "registry":
        part, parts = int(argv[1]), int(argv[2])
        results = checks.registry(part, parts)
    elif argv[0] == "reductions":
        results = checks.reductions()
    else:
        raise SystemExit(f"unknown group {argv[0]!r}")
    print(json.dumps(results, default=lambda x: np.asarray(x).tolist()))


if __name__ == "__main__":
    assert len(jax.devices()) == 8, jax.devices()
    main(sys.argv[1:])
