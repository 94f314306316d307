"""What a restore target expects and what a checkpoint holds, and the error naming every
difference between the two.

Both sides are compared as ``{stored key: (shape, dtype)}``, the form checkpoints keep
(NamedTuples as their field names, tuples as positions). A typed PRNG key is stored as
its ``jax.random.key_data``; the comparison expects that form.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix.serialization.paths import (
    KeyPath,
    describe,
    is_typed_key,
    leaves_with_paths,
    show_path,
    show_stored,
    stored_key,
)

StoredKey = tuple[str, ...]
NUMBERS = (numbers.Number, np.generic)
_SHOWN = 20  # differences listed per kind; the rest are counted


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit its restore target; the message lists every difference."""


class Expected(NamedTuple):
    path: KeyPath  # in the target, with NamedTuple class names
    shape: tuple[int, ...]  # as stored: a typed key's shape includes its key data
    dtype: Any
    weak: bool  # a Python scalar: any stored dtype of the same kind fits


def stored_form(leaf: Any) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype a leaf is written with (typed keys as their key data)."""
    if is_typed_key(leaf):
        data = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(leaf.shape, leaf.dtype))
        return tuple(data.shape), data.dtype
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return tuple(leaf.shape), leaf.dtype
    return (), jnp.result_type(leaf)


def scalars_as_arrays(tree: Any) -> Any:
    """Python and NumPy scalars as JAX arrays, so they are stored with JAX's dtypes
    (an ``int`` step as int32, as a restore target built from it expects)."""
    return jax.tree.map(lambda x: jnp.asarray(x) if isinstance(x, NUMBERS) else x, tree)


def expected_layout(fn: str, target: Any) -> dict[StoredKey, Expected]:
    """Every leaf of ``target`` by the key a checkpoint stores it under."""
    layout: dict[StoredKey, Expected] = {}
    for path, leaf in leaves_with_paths(target):
        key = stored_key(path)
        if key in layout:
            raise ValueError(
                f"{fn}: {show_path(layout[key].path)} and {show_path(path)} are stored under "
                f"the same key {show_stored(key)}; give their dict keys distinct strings"
            )
        shape, dtype = stored_form(leaf)
        weak = not hasattr(leaf, "dtype") or bool(getattr(leaf, "weak_type", False))
        layout[key] = Expected(path, shape, dtype, weak)
    return layout


def stored_layout(tree: Any, key: StoredKey = ()) -> dict[StoredKey, tuple[tuple[int, ...], Any]]:
    """``{key: (shape, dtype)}`` of a checkpoint's tree of dicts and lists, whose leaves are
    arrays, scalars or Orbax metadata (anything with ``shape`` and ``dtype``)."""
    if tree is None:
        return {}
    if isinstance(tree, Mapping):
        items = [(str(k), v) for k, v in tree.items()]
    elif isinstance(tree, list | tuple):
        items = [(str(i), v) for i, v in enumerate(tree)]
    else:
        dtype = getattr(tree, "dtype", None)
        shape = getattr(tree, "shape", None)
        return {
            key: (
                np.shape(tree) if shape is None else tuple(shape),
                np.result_type(tree) if dtype is None else dtype,
            )
        }
    layout = {}
    for name, child in items:
        layout.update(stored_layout(child, (*key, name)))
    return layout


def _fits(expected: Expected, shape: tuple[int, ...], dtype: Any) -> bool:
    if expected.shape != shape:
        return False
    if expected.weak:
        return np.dtype(dtype).kind == np.dtype(expected.dtype).kind
    return np.dtype(dtype) == np.dtype(expected.dtype)


def section(title: str, lines: list[str]) -> list[str]:
    """A titled, indented list of message lines, the first few of them."""
    if not lines:
        return []
    more = [f"    ... and {len(lines) - _SHOWN} more"] if len(lines) > _SHOWN else []
    return [f"  {title} ({len(lines)}):", *(f"    {line}" for line in lines[:_SHOWN]), *more]


def check_fits(fn: str, source: str, target: Any, found: Mapping[StoredKey, Any]) -> None:
    """Raise ``CheckpointMismatchError`` unless ``found`` holds exactly the leaves of
    ``target`` with the same shapes and dtypes.

    Args:
      fn: the public function, for the message.
      source: what was read, e.g. ``"the checkpoint at /tmp/ckpt"``.
      target: the restore target (arrays or ``jax.ShapeDtypeStruct`` leaves).
      found: ``stored_layout`` of what was read.
    """
    expected = expected_layout(fn, target)
    missing = [
        f"{show_path(e.path)}  {describe(e.shape, e.dtype)}  (stored as {show_stored(key)})"
        for key, e in expected.items()
        if key not in found
    ]
    extra = [f"{show_stored(key)}  {describe(*found[key])}" for key in found if key not in expected]
    differ = [
        f"{show_path(e.path)}: expected {describe(e.shape, e.dtype)}, found {describe(*found[key])}"
        for key, e in expected.items()
        if key in found and not _fits(e, *found[key])
    ]
    if not (missing or extra or differ):
        return
    count = len(missing) + len(extra) + len(differ)
    lines = [
        f"{fn}: {source} does not fit the target ({count} difference"
        f"{'s' if count > 1 else ''}); nothing was restored.",
        *section("in the target, not in the checkpoint", missing),
        *section("in the checkpoint, not in the target", extra),
        *section("shape or dtype differs", differ),
    ]
    if missing or extra:
        lines.append(
            "If the optimizer or the parameters changed since the checkpoint was written, "
            "restore into the old abstract_state and move the state over with "
            "optix.serialization.migrate_state."
        )
    raise CheckpointMismatchError("\n".join(lines))
