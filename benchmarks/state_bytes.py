"""Bytes of optimizer state per parameter, for every registry optimizer and its options.

The params are a GPT-like tree (a 32000 x 512 embedding and 8 blocks of attention and
MLP matrices with their norm scales and biases, 41.6M parameters), in float32 and in
bfloat16. The state is built abstractly (``jax.eval_shape``), so nothing is allocated;
every leaf of it counts, scalars included. Options: the registry's test
hyperparameters, then state dtypes (``mu_dtype``/``nu_dtype``), Adafactor unfactored,
and 8-bit block-wise moments (``optix.precision.quantize_moments``).

    python benchmarks/state_bytes.py
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from common import table

import optix
from tests.registry import ENTRIES


def model_params(dtype) -> dict:
    d, vocab, hidden = 512, 32_000, 2048
    block = {
        "qkv": (d, 3 * d),
        "out": (d, d),
        "mlp_in": (d, hidden),
        "mlp_in_bias": (hidden,),
        "mlp_out": (hidden, d),
        "mlp_out_bias": (d,),
        "norm1_scale": (d,),
        "norm2_scale": (d,),
    }
    tree = {"embed": (vocab, d), "blocks": [dict(block) for _ in range(8)]}
    is_shape = lambda x: isinstance(x, tuple)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, dtype), tree, is_leaf=is_shape)


def bytes_per_param(tx, params) -> float:
    n = sum(x.size for x in jax.tree.leaves(params))
    state = jax.eval_shape(tx.init, params)
    return sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(state)) / n


def options() -> dict:
    """Name -> transformation maker: the registry, then the options that change bytes."""
    cases = {name: entry.make for name, entry in ENTRIES.items()}
    bf16 = jnp.bfloat16
    for name in sorted(n for n in ENTRIES if "." not in n):
        parameters = inspect.signature(getattr(optix, name)).parameters
        if "mu_dtype" in parameters:
            cases[f"{name}(mu_dtype=bf16)"] = lambda n=name: getattr(optix, n)(1e-3, mu_dtype=bf16)
        if "mu_dtype" in parameters and "nu_dtype" in parameters:
            cases[f"{name}(mu_dtype=bf16, nu_dtype=bf16)"] = lambda n=name: getattr(optix, n)(
                1e-3, mu_dtype=bf16, nu_dtype=bf16
            )
    cases["adafactor() (defaults: factored, no momentum)"] = lambda: optix.adafactor(1e-3)
    cases["sm3() (defaults, momentum 0.9)"] = lambda: optix.sm3(1e-3)
    cases["adafactor(factored=False)"] = lambda: optix.adafactor(1e-3, factored=False)
    cases["adafactor(momentum=0.9)"] = lambda: optix.adafactor(1e-3, momentum=0.9)
    cases["sgd(momentum=0.9)"] = lambda: optix.sgd(1e-3, momentum=0.9)
    cases["quantize_moments(adamw)"] = lambda: optix.precision.quantize_moments(optix.adamw(1e-3))
    cases["quantize_moments(lion)"] = lambda: optix.precision.quantize_moments(optix.lion(1e-3))
    return cases


def main() -> None:
    f32, bf16 = model_params(jnp.float32), model_params(jnp.bfloat16)
    n = sum(x.size for x in jax.tree.leaves(f32))
    print(f"{n:,} parameters in {len(jax.tree.leaves(f32))} leaves\n")
    rows = []
    for name, make in options().items():
        rows.append(
            [name, f"{bytes_per_param(make(), f32):.3f}", f"{bytes_per_param(make(), bf16):.3f}"]
        )
    print(table(["optimizer", "state B/param (fp32 params)", "state B/param (bf16 params)"], rows))


if __name__ == "__main__":
    main()
