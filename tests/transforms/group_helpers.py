"""Shared by the parameter-group tests: state layouts, real Flax models, Optax runs."""

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tests.reference import max_relative_difference, run_jax


def layout(state):
    """A state as plain data: class and field names, keys, and each array's shape and dtype.

    Two states with equal layouts are interchangeable in a checkpoint.
    """
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state).__name__, {f: layout(getattr(state, f)) for f in state._fields}
    if isinstance(state, Mapping):
        return type(state).__name__, {k: layout(v) for k, v in state.items()}
    if isinstance(state, tuple | list):
        return type(state).__name__, [layout(x) for x in state]
    if state is None:
        return None
    return np.shape(state), jnp.asarray(state).dtype.name


def run_optax(tx, dtype=np.float64, **kwargs):
    """``run_jax`` for an Optax transformation, which needs standard dtype promotion."""
    with jax.numpy_dtype_promotion("standard"):
        return run_jax(tx, dtype, **kwargs)


def assert_same_trajectory(ours, theirs, rtol):
    """Equal to ``rtol`` relative (floored at 1e-3, as in tests/reference.py); 0: bitwise."""
    if rtol == 0:
        for a, b in zip(ours, theirs, strict=True):
            jax.tree.map(np.testing.assert_array_equal, a, b)
        return
    difference = max_relative_difference(ours, theirs)
    assert difference <= rtol, f"trajectories differ by {difference:.3g} > {rtol:.3g}"


class LinenMLP(nn.Module):
    """Dense -> LayerNorm -> Dense: kernels, biases and a norm scale."""

    @nn.compact
    def __call__(self, x):
        x = nn.LayerNorm()(nn.relu(nn.Dense(6)(x)))
        return nn.Dense(2)(x)


class NnxMLP(nnx.Module):
    """The same layers in nnx, the hidden layers in a list to give paths an index."""

    def __init__(self, rngs):
        self.first = nnx.Linear(3, 6, rngs=rngs)
        self.norm = nnx.LayerNorm(6, rngs=rngs)
        self.layers = nnx.List([nnx.Linear(6, 2, rngs=rngs)])

    def __call__(self, x):
        return self.layers[0](self.norm(nnx.relu(self.first(x))))


def linen_params():
    """Float32 params of ``LinenMLP`` (Flax's init is float32 even under x64)."""
    with jax.enable_x64(False):
        return LinenMLP().init(jax.random.key(0), jnp.ones((1, 3)))
