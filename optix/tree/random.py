"""Random pytrees: one PRNG key per leaf, random leaves shaped like a target tree."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def split_key_like(rng_key: jax.Array, target_tree: Any) -> Any:
    """Split ``rng_key`` into one key per leaf of ``target_tree``, in a tree of its structure."""
    treedef = jax.tree.structure(target_tree)
    keys = jax.random.split(rng_key, treedef.num_leaves)
    return jax.tree.unflatten(treedef, list(keys))


def random_like(
    rng_key: jax.Array,
    target_tree: Any,
    sampler: Callable[..., jax.Array] = jax.random.normal,
    dtype: Any = None,
) -> Any:
    """A tree like ``target_tree`` whose leaves are drawn from ``sampler``.

    Args:
      rng_key: key to draw from; each leaf gets its own split.
      target_tree: tree of arrays giving the structure, shapes and (by default) dtypes.
      sampler: called as ``sampler(key, shape, dtype)``, plus ``out_sharding=`` the
        leaf's sharding when the sampler accepts it (as ``jax.random`` samplers do).
      dtype: dtype of every leaf; by default each target leaf's own dtype.
    """
    keys = split_key_like(rng_key, target_tree)
    takes_sharding = "out_sharding" in inspect.signature(sampler).parameters

    def draw(leaf: Any, key: jax.Array) -> jax.Array:
        leaf_dtype = leaf.dtype if dtype is None else dtype
        if takes_sharding:
            return sampler(key, leaf.shape, leaf_dtype, out_sharding=jax.typeof(leaf).sharding)
        return sampler(key, leaf.shape, leaf_dtype)

    return jax.tree.map(draw, target_tree, keys)


def unwrap_random_key_data(input_tree: Any) -> Any:
    """Replace typed PRNG key leaves by their raw ``uint32`` key data; keep other leaves."""

    def unwrap(x: Any) -> Any:
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(unwrap, input_tree)
