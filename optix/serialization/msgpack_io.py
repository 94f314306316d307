"""Flax's msgpack format: a state as bytes, and back into a target's exact tree.

The bytes are what ``flax.serialization.to_bytes`` writes, so either side can read the
other's. Flax stores a NamedTuple as a dict of its fields and an empty one as ``{}``;
the classes come back from the target. msgpack has no PRNG key type: typed keys are
written as their ``jax.random.key_data`` (uint32) and wrapped again, with the target's
key implementation, on the way back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optix.serialization.layout import NUMBERS, check_fits, scalars_as_arrays, stored_layout
from optix.serialization.paths import is_typed_key, leaves_with_paths, show_stored, stored_key
from optix.tree import unwrap_random_key_data


def _flax_serialization():
    try:
        import flax.serialization
    except ImportError as error:
        raise ImportError(
            "optix.serialization.to_bytes and from_bytes write Flax's msgpack format and need "
            "Flax: pip install flax (or the extra: pip install 'optix-jax[checkpoint]')"
        ) from error
    return flax.serialization


def _check_serializable(value: Any, key: tuple[str, ...] = ()) -> None:
    if isinstance(value, Mapping):
        for name, child in value.items():
            _check_serializable(child, (*key, str(name)))
    elif not (value is None or isinstance(value, (jax.Array, np.ndarray, str, bytes, *NUMBERS))):
        raise TypeError(
            f"to_bytes: msgpack cannot store the {type(value).__name__} at "
            f"{show_stored(key)}: Flax writes dicts, lists, tuples, NamedTuples and arrays. "
            "Use a NamedTuple state, register the class with "
            "flax.serialization.register_serialization_state, or save with save_state "
            "(Orbax)."
        )


def to_bytes(tree: Any) -> bytes:
    """Serialize a pytree (a state, or a dict of params, state and step) to msgpack bytes.

    Typed PRNG keys are written as their ``jax.random.key_data``.
    """
    serialization = _flax_serialization()
    state_dict = serialization.to_state_dict(scalars_as_arrays(unwrap_random_key_data(tree)))
    _check_serializable(state_dict)
    return serialization.msgpack_serialize(state_dict)


def _as_leaf(value: Any, like: Any) -> jax.Array:
    if is_typed_key(like):
        array = jax.random.wrap_key_data(jnp.asarray(value), dtype=like.dtype)
    else:
        array = jnp.asarray(
            value, dtype=like.dtype if hasattr(like, "dtype") else jnp.result_type(like)
        )
    sharding = getattr(like, "sharding", None)
    return array if sharding is None else jax.device_put(array, sharding)


def from_bytes(target: Any, data: bytes) -> Any:
    """Read msgpack bytes into the tree of ``target``.

    Args:
      target: the tree to fill, e.g. ``abstract_state``: its NamedTuple classes, empty
        states, dtypes and shardings are what comes back. It is not modified.
      data: bytes from ``to_bytes`` or ``flax.serialization.to_bytes``.

    Returns:
      A new tree like ``target`` holding the stored values, as JAX arrays placed on each
      target leaf's sharding when it has one.

    Raises:
      CheckpointMismatchError: if the stored tree differs from ``target`` in structure,
        shapes or dtypes; the message lists every difference, and nothing is returned.
    """
    raw = _flax_serialization().msgpack_restore(data)
    check_fits("from_bytes", "the msgpack data", target, stored_layout(raw))

    def read(key: tuple[str, ...]) -> Any:
        value = raw
        for name in key:
            value = value[name]
        return value

    leaves = [_as_leaf(read(stored_key(path)), like) for path, like in leaves_with_paths(target)]
    return jax.tree.unflatten(jax.tree.structure(target), leaves)
