"""Sparse-rows Adam against dense Adam on an embedding table, one step each.

A float32 table of ``--rows`` x ``--dim`` gets a gradient in ``--touched`` random rows per
step (duplicates allowed, as from a batch of token ids). Side by side, in one run:

* ``sparse``: ``optix.lazy_adam`` with the gradient as ``SparseRows(indices, values)``
  and ``apply_sparse_updates``: the touched rows are gathered, updated and scattered back
  into mu, nu and the table, which are donated so the scatters write in place.
* ``lazy dense``: the same optimizer given the dense gradient (zero rows skipped).
* ``dense``: ``optix.adam`` on the dense gradient (every row moves, as in torch's Adam).
* ``torch SparseAdam`` / ``torch Adam``: torch.optim with a sparse COO gradient (the
  output of ``nn.Embedding(sparse=True)``) and with a dense one.

The dense gradient is built once outside the timed step, so the dense rows time the
optimizer alone. Medians of ``--repeats`` steps; ``memory_analysis`` of the sparse step
shows whether XLA allocated table-sized scratch.

    python benchmarks/sparse_rows.py --rows 1000000 --dim 64 --touched 1024
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import torch
from common import fmt, load_average, median_seconds, table

import optix
from optix.optimizers.lazy_adam import SparseRows, apply_sparse_updates, lazy_adam
from optix.transforms.packing import donating_step


def jax_runner(tx, apply_fn, table_, grads):
    step = donating_step(tx, apply_fn)
    carry = [jnp.array(table_)]
    carry.append(jax.tree.map(jnp.copy, tx.init(carry[0])))  # init may share constants
    compiled = step.lower(carry[0], carry[1], grads).compile()

    def run():
        carry[0], carry[1] = compiled(carry[0], carry[1], grads)
        jax.block_until_ready(carry)

    return run, compiled.memory_analysis()


def torch_runner(table_, grad, cls):
    weight = torch.nn.Parameter(torch.tensor(table_))
    weight.grad = grad
    return cls([weight], lr=1e-3).step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--touched", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table_ = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    indices = rng.integers(0, args.rows, args.touched).astype(np.int32)
    values = rng.standard_normal((args.touched, args.dim), dtype=np.float32)
    rows = SparseRows(jnp.asarray(indices), jnp.asarray(values), args.rows)
    dense = rows.todense()
    print(f"jax {jax.__version__}, torch {torch.__version__}; {load_average()}")
    sparse, memory = jax_runner(lazy_adam(1e-3), apply_sparse_updates, table_, rows)
    runners = {
        "sparse": sparse,
        "lazy dense": jax_runner(lazy_adam(1e-3), optix.apply_updates, table_, dense)[0],
        "dense": jax_runner(optix.adam(1e-3), optix.apply_updates, table_, dense)[0],
    }
    coo = torch.sparse_coo_tensor(
        torch.tensor(indices[None].astype(np.int64)),
        torch.tensor(values),
        (args.rows, args.dim),
    ).coalesce()
    runners["torch SparseAdam"] = torch_runner(table_, coo, torch.optim.SparseAdam)
    runners["torch Adam"] = torch_runner(table_, torch.tensor(np.asarray(dense)), torch.optim.Adam)
    times = median_seconds(runners, args.repeats)
    table_bytes = args.rows * args.dim * 4
    print(
        f"sparse step: temp {memory.temp_size_in_bytes:,} B, table {table_bytes:,} B, "
        f"aliased {memory.alias_size_in_bytes:,} B"
    )
    print(f"after the run: {load_average()}\n")
    header = ["step", "ms", "dense / this"]
    print(
        table(
            header,
            [[k, fmt(v * 1e3, 3), fmt(times["dense"] / v, 1)] for k, v in times.items()],
        )
    )


if __name__ == "__main__":
    main()
