"""What every building block must do, whatever its math: the shared checks of its tests.

jit compiles once, the state keeps its structure, shapes and dtypes across steps,
bf16 and float64 updates keep their dtype, ``None`` leaves pass through, and unknown
extra arguments change nothing.
"""

import jax
import jax.numpy as jnp
import numpy as np


def make_params(dtype=jnp.float32):
    return {
        "w": jnp.linspace(-1.0, 2.0, 12, dtype=dtype).reshape(3, 4),
        "b": jnp.full((4,), 0.25, dtype),
        "s": jnp.asarray(1.5, dtype),
    }


def make_grads(params, seed):
    """Normal gradients scaled by 3, so clipping and normalisation have work to do."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten(
        [
            (3.0 * jax.random.normal(k, x.shape, jnp.float32)).astype(x.dtype)
            for k, x in zip(keys, leaves, strict=True)
        ]
    )


def signature(tree):
    return jax.tree.structure(tree), [(jnp.shape(x), x.dtype) for x in jax.tree.leaves(tree)]


def run(tx, params, steps=3, **extra_args):
    traces = []

    @jax.jit
    def step(state, grads):
        traces.append(1)
        return tx.update(grads, state, params, **extra_args)

    state = tx.init(params)
    outputs = []
    for t in range(steps):
        updates, state = step(state, make_grads(params, t))
        outputs.append(updates)
    return outputs, state, len(traces)


def check_basics(tx) -> None:
    """Assert the shared properties of the transformation ``tx``."""
    params = make_params()
    outputs, state, traces = run(tx, params)
    assert traces == 1
    assert signature(state) == signature(tx.init(params))
    assert all(signature(u) == signature(params) for u in outputs)

    with_extra, _, _ = run(tx, params, value=jnp.asarray(1.0), unknown_flag=3)
    jax.tree.map(np.testing.assert_array_equal, outputs, with_extra)

    for dtype in (jnp.bfloat16, jnp.float16):
        low = make_params(dtype)
        outputs, state, _ = run(tx, low)
        assert all(signature(u) == signature(low) for u in outputs), dtype
        assert signature(state) == signature(tx.init(low))
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(outputs))
    with jax.enable_x64(True):
        wide = make_params(jnp.float64)
        outputs, state, _ = run(tx, wide)
        assert all(signature(u) == signature(wide) for u in outputs)
        assert signature(state) == signature(tx.init(wide))

    params = {"w": jnp.ones((2, 3)), "frozen": None}
    grads = {"w": jnp.full((2, 3), 0.3), "frozen": None}
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["frozen"] is None and updates["w"].shape == (2, 3)
