"""Checkpoints on disk with Orbax: save a state, restore it into a target's exact tree.

Orbax writes one array per leaf (typed PRNG keys included) and can restore each onto a
different sharding than it was saved with. Without a target it returns dicts and lists
with empty states as ``None``, and with a target of another shape or dtype it casts or
fails deep inside; ``restore_state`` therefore compares the checkpoint's metadata
with the target first and restores only when every leaf fits.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp

from optix.serialization.abstract import as_abstract
from optix.serialization.layout import check_fits, scalars_as_arrays, stored_layout


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as error:
        raise ImportError(
            "optix.serialization.save_state and restore_state write Orbax checkpoints and "
            "need Orbax: pip install orbax-checkpoint (or the extra: pip install "
            "'optix-jax[checkpoint]')"
        ) from error
    return ocp


def _is_empty(leaf: Any) -> bool:
    return math.prod(getattr(leaf, "shape", (1,))) == 0


def _without_empty(tree: Any) -> Any:
    """``tree`` with zero-size arrays left out: Orbax refuses to write them, and they hold
    nothing but a shape and dtype, which the restore target gives back."""
    return jax.tree.map(lambda x: None if _is_empty(x) else x, tree)


def _empty_like(like: Any) -> jax.Array:
    return jax.device_put(jnp.zeros(like.shape, like.dtype), getattr(like, "sharding", None))


def save_state(path: str | os.PathLike, tree: Any, *, overwrite: bool = False) -> None:
    """Write ``tree`` (a state, or a dict of params, state and step) as an Orbax checkpoint.

    Returns once the checkpoint is complete on disk.

    Args:
      path: the checkpoint directory; it must not exist unless ``overwrite``.
      tree: any pytree of arrays; NamedTuple states, empty states and typed PRNG keys are
        fine. Python scalars are stored as JAX arrays (an ``int`` as int32); zero-size
        arrays, which Orbax cannot write, are left out and rebuilt from the target.
      overwrite: replace an existing checkpoint at ``path``.
    """
    ocp = _orbax()
    with ocp.StandardCheckpointer() as checkpointer:
        tree = _without_empty(scalars_as_arrays(tree))
        checkpointer.save(os.path.abspath(path), tree, force=overwrite)
        checkpointer.wait_until_finished()


def restore_state(path: str | os.PathLike, target: Any) -> Any:
    """Read the Orbax checkpoint at ``path`` into the tree of ``target``.

    Args:
      path: a directory written by ``save_state`` (or Orbax's ``StandardCheckpointer``).
      target: the tree to fill, e.g. ``abstract_state``, or a dict of abstract params,
        state and step. Its NamedTuple classes, empty states, dtypes and shardings are what
        comes back (a leaf with a sharding is read straight onto it, resharding if the
        checkpoint was written with another). It is not modified.

    Returns:
      A new tree like ``target`` holding the stored values as JAX arrays.

    Raises:
      CheckpointMismatchError: if the checkpoint differs from ``target`` in structure,
        shapes or dtypes; the message lists every difference, and nothing is read.
    """
    ocp = _orbax()
    path = os.path.abspath(path)
    stored_target = _without_empty(target)
    with ocp.StandardCheckpointer() as checkpointer:
        stored = stored_layout(checkpointer.metadata(path).item_metadata.tree)
        check_fits("restore_state", f"the checkpoint at {path}", stored_target, stored)
        restored = checkpointer.restore(path, as_abstract(stored_target))
    values = iter(jax.tree.leaves(restored))
    leaves = [
        _empty_like(like) if _is_empty(like) else jnp.asarray(next(values))
        for like in jax.tree.leaves(target)
    ]
    return jax.tree.unflatten(jax.tree.structure(target), leaves)
