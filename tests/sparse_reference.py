"""Drive optix and a reference with the same sparse-row gradients (tests/reference.py's dense twin).

The problem: an embedding table ``emb`` and a vector ``vec`` whose gradients arrive as
rows ``(indices, values)`` (some rows absent, a repeated index, an explicitly zero row
at ZERO_ROW_STEP), and a ``bias`` whose gradient is dense with a zero entry. Step
ZERO_STEP has no rows at all and step LARGE_STEP is x1000, as in tests/reference.py.

optix gets the rows either as ``SparseRows`` padded to a fixed size (``mode="sparse"``)
or densified (``mode="dense"``). A reference gets the rows that optix's mode reads as
present: the given rows for ``SparseRows``, the nonzero rows of a dense gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from optix.optimizers.lazy_adam import SparseRows, apply_sparse_updates
from tests.reference import LARGE_STEP, STEPS, ZERO_STEP, max_relative_difference

SHAPES = {"emb": (6, 3), "vec": (5,), "bias": (3,)}
ROW_LEAVES = ("emb", "vec")
PADDED_ROWS = 6
ZERO_ROW_STEP = 6

Rows = tuple[np.ndarray, np.ndarray]
GradStep = dict[str, Rows | np.ndarray]
Trajectory = list[dict[str, np.ndarray]]


def initial_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=shape) for k, shape in SHAPES.items()}


def gradient_sequence(zero_row: bool = True, steps: int = STEPS, seed: int = 2) -> list[GradStep]:
    """Rows for ``emb``/``vec`` (a duplicate every third step), a dense ``bias``."""
    rng = np.random.default_rng(seed)
    grads = []
    for t in range(steps):
        step: GradStep = {}
        for name in ROW_LEAVES:
            num_rows, row_shape = SHAPES[name][0], SHAPES[name][1:]
            k = 0 if t == ZERO_STEP else int(rng.integers(1, 4))
            indices = rng.choice(num_rows, size=k, replace=False)
            if k and t % 3 == 0:
                indices = np.append(indices, indices[0])
            values = rng.normal(size=(len(indices), *row_shape))
            if zero_row and t == ZERO_ROW_STEP and name == "emb":
                absent = np.setdiff1d(np.arange(num_rows), indices)[0]
                indices = np.append(indices, absent)
                values = np.concatenate([values, np.zeros((1, *row_shape))])
            step[name] = (indices, 1e3 * values if t == LARGE_STEP else values)
        bias = rng.normal(size=SHAPES["bias"])
        bias[t % 3] = 0.0
        step["bias"] = bias * (0.0 if t == ZERO_STEP else 1e3 if t == LARGE_STEP else 1.0)
        grads.append(step)
    return grads


def densify(rows: Rows, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """Duplicates summed in ``dtype``, as ``SparseRows`` sums them."""
    dense = np.zeros(shape, dtype)
    np.add.at(dense, rows[0], rows[1].astype(dtype))
    return dense


def present_rows(step: GradStep, mode: str) -> dict[str, Rows]:
    """The rows optix reads as present, as a reference's ``(indices, values)``."""
    out = {}
    for name, g in step.items():
        if isinstance(g, tuple) and mode == "sparse":
            out[name] = g
            continue
        dense = densify(g, SHAPES[name]) if isinstance(g, tuple) else g
        nonzero = np.flatnonzero(np.any(dense.reshape(len(dense), -1) != 0, axis=1))
        out[name] = (nonzero, dense[nonzero])
    return out


def optix_gradients(step: GradStep, mode: str, dtype) -> dict[str, SparseRows | jax.Array]:
    """``SparseRows`` padded to PADDED_ROWS rows (padding values are noise), or dense."""
    out = {}
    for name, g in step.items():
        if not isinstance(g, tuple):
            out[name] = jnp.asarray(g, dtype)
        elif mode == "dense":
            out[name] = jnp.asarray(densify(g, SHAPES[name], dtype))
        else:
            num_rows, (indices, values) = SHAPES[name][0], g
            pad = PADDED_ROWS - len(indices)
            indices = np.concatenate([indices, np.full(pad, num_rows)]).astype(np.int32)
            noise = np.full((pad, *values.shape[1:]), 7.0)
            values = np.concatenate([values, noise])
            out[name] = SparseRows(jnp.asarray(indices), jnp.asarray(values, dtype), num_rows)
    return out


def run_optix(tx, dtype, mode: str, grads: list[GradStep]) -> tuple[Trajectory, object]:
    """Params after every step of ``tx``, and the final state; jit compiles once."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return apply_sparse_updates(params, updates), state

    trajectory = []
    for g in grads:
        params, state = step(params, state, optix_gradients(g, mode, dtype))
        trajectory.append(jax.tree.map(np.asarray, params))
    assert len(traces) == 1
    return trajectory, state


def run_torch_sparse(
    make_optimizer: Callable, dtype, mode: str, grads: list[GradStep], lrs: list[float]
) -> Trajectory:
    """A torch optimizer fed uncoalesced sparse COO gradients of the present rows."""
    import torch

    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]
    tensors = {k: torch.tensor(v, dtype=torch_dtype) for k, v in initial_params().items()}
    optimizer = make_optimizer(list(tensors.values()), lrs[0])
    trajectory = []
    for t, step in enumerate(grads):
        for group in optimizer.param_groups:
            group["lr"] = lrs[t]
        for name, (indices, values) in present_rows(step, mode).items():
            tensors[name].grad = torch.sparse_coo_tensor(
                torch.tensor(indices, dtype=torch.int64).reshape(1, -1),
                torch.tensor(values, dtype=torch_dtype).reshape(-1, *SHAPES[name][1:]),
                SHAPES[name],
                check_invariants=True,
            )
        optimizer.step()
        trajectory.append({k: v.numpy().copy() for k, v in tensors.items()})
    return trajectory


def assert_close(actual: Trajectory, expected: Trajectory, rtol: float) -> float:
    """Every parameter at every step agrees to ``rtol``; returns the difference."""
    difference = max_relative_difference(actual, expected)
    assert difference <= rtol, f"trajectories differ by {difference:.3g} > rtol={rtol:.3g}"
    moved = max_relative_difference(actual[-1:], [initial_params()])
    assert moved > 10 * rtol, "the parameters barely moved: the comparison would prove nothing"
    return difference
