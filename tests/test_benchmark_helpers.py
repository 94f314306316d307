"""The arithmetic the benchmark tables rest on: floors, state bytes, medians, tables."""

import pathlib
import sys

import jax
import jax.numpy as jnp

import optix

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))

from bandwidth import ADAMW_BYTES, floor_bytes_per_param
from common import median_seconds, table
from state_bytes import bytes_per_param, model_params


def test_floor_bytes_count_params_grads_and_state_reads_and_writes():
    assert floor_bytes_per_param(8) == ADAMW_BYTES == 28  # fp32 AdamW: p, g, m, v in; p, m, v out
    assert floor_bytes_per_param(0) == 12  # plain SGD
    assert floor_bytes_per_param(4, param_bytes=2) == 14  # bf16 params, one bf16 moment


def test_state_bytes_per_param_of_known_states():
    params = model_params(jnp.float32)
    assert sum(x.size for x in jax.tree.leaves(params)) == 32_000 * 512 + 8 * 3_149_312
    # Adam's count is 4 bytes over 41.6M params: invisible at three decimals.
    assert round(bytes_per_param(optix.adam(1e-3), params), 3) == 8.0
    assert round(bytes_per_param(optix.adam(1e-3, mu_dtype=jnp.bfloat16), params), 3) == 6.0
    assert bytes_per_param(optix.sgd(1e-3), params) < 1e-6


def test_median_seconds_takes_turns_and_skips_warmup():
    calls = []
    times = median_seconds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, 2)
    assert calls == ["a", "b"] * 5
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_table_is_markdown():
    assert table(["x", "y"], [["1", "2"]]).splitlines() == ["| x | y |", "|---:|---:|", "| 1 | 2 |"]
