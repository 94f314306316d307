"""Move a checkpointed state into the state of a changed optimizer, by names and paths."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from optix.serialization.layout import section
from optix.serialization.matching import match_leaves
from optix.serialization.paths import (
    KeyPath,
    describe,
    is_typed_key,
    leaves_with_paths,
    show_path,
)
from optix.tree import NamedTupleKey

logger = logging.getLogger("optix.serialization")

KeepFresh = Callable[[KeyPath, Any], bool]
Count = Literal["continue"] | int | None


class MigrationError(ValueError):
    """A strict migration would have left part of the new state fresh or unmatched."""


@dataclasses.dataclass(frozen=True)
class MigrationReport:
    """What ``migrate_state`` did with each leaf; paths as text."""

    copied: dict[str, str]  # new path -> the old path its value came from
    cast: dict[str, str]  # new path -> "float32 -> bfloat16" for copies that changed dtype
    counted: dict[str, str]  # new `count` leaf -> the value it was given and where from
    fresh: tuple[str, ...]  # new leaves nothing old matched: as the new init made them
    reset: tuple[str, ...]  # new leaves `keep_fresh` selected: as the new init made them
    dropped: tuple[str, ...]  # old leaves whose values went nowhere
    problems: tuple[str, ...]  # new leaves left fresh: ambiguous match, shape or dtype clash

    def __str__(self) -> str:
        renamed = [f"{new} <- {old}" for new, old in self.copied.items() if new != old]
        return "\n".join(
            [
                f"{len(self.copied)} leaves copied, {len(self.counted)} counts "
                f"set, {len(self.fresh)} fresh, {len(self.reset)} kept fresh, "
                f"{len(self.dropped)} dropped, {len(self.problems)} problems",
                *section("copied from another path", renamed),
                *section("copied with a new dtype", [f"{k}: {v}" for k, v in self.cast.items()]),
                *section("counts set", [f"{k} = {v}" for k, v in self.counted.items()]),
                *section("fresh (nothing in the old state matched)", list(self.fresh)),
                *section("kept fresh (keep_fresh)", list(self.reset)),
                *section("dropped (old leaves used nowhere)", list(self.dropped)),
                *section("problems (left fresh)", list(self.problems)),
            ]
        )


def check_count(fn: str, count: Any) -> None:
    if isinstance(count, str) and count != "continue":
        raise ValueError(f"{fn}: count must be 'continue', an int or None, got count={count!r}")


def template_for(fn: str, new: Any, params: Any) -> Any:
    """The new state: ``new.init(params)`` for a transformation, else ``new`` itself."""
    if not callable(getattr(new, "init", None)):
        return new
    if params is None:
        raise TypeError(
            f"{fn}: pass params= to initialize the new transformation, or pass its state "
            "(new_tx.init(params)) in its place"
        )
    return new.init(params)


def _kind(dtype: Any) -> Any:
    for kind in (jnp.bool_, jnp.integer, jnp.floating, jnp.complexfloating):
        if jnp.issubdtype(dtype, kind):
            return kind
    return dtype


def _convert(value: Any, like: Any) -> tuple[Any, str | None, str | None]:
    """``(value fitted to like, dtype change or None, problem or None)``.

    A value changes dtype only within its kind (float to float, int to int); a typed PRNG
    key and its raw key data (Optax's and optix's ``noisy_sgd``) convert either way.
    """
    if is_typed_key(value) and not is_typed_key(like):
        value = jax.random.key_data(value)
    elif is_typed_key(like) and not is_typed_key(value) and value.dtype == jnp.uint32:
        value = jax.random.wrap_key_data(value, dtype=like.dtype)
    shape = np.shape(value)
    dtype = value.dtype if hasattr(value, "dtype") else jnp.result_type(value)
    if shape != np.shape(like):
        found, expected = describe(shape, dtype), describe(np.shape(like), like.dtype)
        return None, None, f"expected {expected}, found {found}"
    change = None
    if dtype != like.dtype:
        if _kind(dtype) != _kind(like.dtype):
            return None, None, f"expected dtype {like.dtype}, found {dtype}"
        value, change = value.astype(like.dtype), f"{dtype} -> {like.dtype}"
    return _placed_like(value, like), change, None


def _placed_like(value: Any, like: Any) -> Any:
    if isinstance(like, jax.Array) and not isinstance(like, jax.core.Tracer):
        return jax.device_put(value, like.sharding)
    return value


def _is_count(path: KeyPath, leaf: Any) -> bool:
    last = path[-1] if path else None
    return (
        isinstance(last, NamedTupleKey)
        and last.name == "count"
        and np.shape(leaf) == ()
        and jnp.issubdtype(leaf.dtype, jnp.integer)
    )


def _common_prefix(a: KeyPath, b: KeyPath) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _continued_count(path: KeyPath, copied: list[tuple[KeyPath, Any]]) -> tuple[Any, str]:
    """The count of the copied ``count`` leaves nearest to ``path`` (longest shared path
    prefix), and where it came from; ``(None, why)`` if there are none or they disagree."""
    if not copied:
        return None, "the old state holds no count to continue from; pass count=<steps taken>"
    reach = max(_common_prefix(path, p) for p, _ in copied)
    nearest = [(p, v) for p, v in copied if _common_prefix(path, p) == reach]
    values = {int(np.asarray(v)) for _, v in nearest}
    where = ", ".join(show_path(p) for p, _ in nearest)
    if len(values) > 1:
        return None, f"the nearest counts disagree ({where}: {sorted(values)}); pass count="
    return values.pop(), f"from {where}"


def _renamed(path: KeyPath, renames: Mapping[str, str]) -> KeyPath:
    return tuple(
        NamedTupleKey(renames.get(e.tuple_name, e.tuple_name), e.name)
        if isinstance(e, NamedTupleKey)
        else e
        for e in path
    )


def migrate_leaves(
    old_state: Any,
    template: Any,
    keep_fresh: KeepFresh | None,
    count: Count,
    renames: Mapping[str, str],
) -> tuple[Any, MigrationReport]:
    """The migrated state and its report; see ``migrate_state``."""
    old, new = leaves_with_paths(old_state), leaves_with_paths(template)
    matching = match_leaves([_renamed(p, renames) for p, _ in old], [p for p, _ in new])
    paired = dict(matching.pairs)
    leaves = [leaf for _, leaf in new]
    copied, cast, counted, problems, used = {}, {}, {}, [], set()
    fresh, reset, copied_counts = [], [], []
    for n, (path, like) in enumerate(new):
        if keep_fresh is not None and keep_fresh(path, like):
            reset.append(show_path(path))
        elif n in matching.ambiguous:
            problems.append(f"{show_path(path)}: {matching.ambiguous[n]}")
        elif n not in paired:
            fresh.append(n)
        else:
            old_path, value = old[paired[n]]
            value, change, problem = _convert(value, like)
            if problem is not None:
                problems.append(f"{show_path(path)}: {problem} at {show_path(old_path)}")
                continue
            leaves[n] = value
            used.add(paired[n])
            copied[show_path(path)] = show_path(old_path)
            if change is not None:
                cast[show_path(path)] = change
            if _is_count(path, like):
                copied_counts.append((path, value))

    fresh_paths = []
    for n in fresh:
        path, like = new[n]
        if count is None or not _is_count(path, like):
            fresh_paths.append(show_path(path))
            continue
        if isinstance(count, str):
            value, where = _continued_count(path, copied_counts)
        else:
            value, where = int(count), "given"
        if value is None:
            problems.append(f"{show_path(path)}: cannot continue the count: {where}")
            continue
        leaves[n] = _placed_like(jnp.asarray(value, like.dtype), like)
        counted[show_path(path)] = f"{value} ({where})"

    dropped = tuple(show_path(p) for i, (p, _) in enumerate(old) if i not in used)
    report = MigrationReport(
        copied, cast, counted, tuple(fresh_paths), tuple(reset), dropped, tuple(problems)
    )
    return jax.tree.unflatten(jax.tree.structure(template), leaves), report


def migrate_state(
    old_state: Any,
    new: Any,
    params: Any = None,
    *,
    strict: bool = False,
    keep_fresh: KeepFresh | None = None,
    count: Count = "continue",
    renames: Mapping[str, str] | None = None,
) -> tuple[Any, MigrationReport]:
    """Move the leaves of ``old_state`` into the state of a changed optimizer.

    Leaves are matched by the NamedTuple classes, field names and dict keys on their paths,
    never by chain positions: adding ``clip_by_global_norm`` in front of a checkpointed
    ``adamw``, or a schedule, keeps its ``mu``, ``nu`` and ``count``; a state moved under a
    wrapper (``masked``, ``inject_hyperparams``, ``MultiSteps``) or out of one is found
    again; a removed transform's state is dropped; new parameters get fresh state. A new
    leaf matches the old leaves whose path names agree from its last NamedTuple field on
    (``ScaleByAdamState.mu['w']``); among several, the longest agreement wins. Leaves
    named alike (two Adam states in one chain) pair in order when both sides have as
    many, else by their whole paths, positions included, when that is unique. Anything
    else is ambiguous: reported and left fresh.

    Args:
      old_state: the restored old state (restore it into the old optimizer's
        ``abstract_state``).
      new: the new transformation (then pass ``params``), or its freshly built state.
      params: the parameters, to build the new state with ``new.init(params)``.
      strict: raise ``MigrationError`` unless every new leaf is copied, counted or
        selected by ``keep_fresh``; dropped old leaves are allowed.
      keep_fresh: ``keep_fresh(path, leaf) -> bool`` selecting new leaves to keep as the
        new init made them even when the old state has them, e.g.
        ``optix.tree.inside("hyperparams")`` to take new ``inject_hyperparams`` values.
      count: how a new ``count`` field with no match starts (the count of a wrapper
        added around a trained optimizer, such as ``inject_hyperparams``' schedules):
        ``"continue"`` from the copied ``count`` nearest to it in the tree (longest shared
        path), so schedules resume where the run was; an int, that step; ``None``, as
        the new init made it (0).
      renames: ``{old class name: new class name}`` for NamedTuple state classes renamed
        since the checkpoint (fields are matched by name within the class).

    Returns:
      ``(new_state, report)``: the report (also logged at INFO on ``optix.serialization``)
      lists what was copied, cast, counted, kept fresh, dropped, and every problem.
    """
    check_count("migrate_state", count)
    template = template_for("migrate_state", new, params)
    state, report = migrate_leaves(old_state, template, keep_fresh, count, renames or {})
    logger.info("migrate_state: %s", report)
    if strict and (report.fresh or report.problems):
        raise MigrationError(
            "migrate_state(strict=True): part of the new state has no match in the old "
            f"one.\n{report}"
        )
    return state, report
