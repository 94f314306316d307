"""Pair the leaves of an old state with those of a new one by names, not positions.

A leaf is known by its descriptor: its path without positions (chain indices, list
indices), e.g. ``ScaleByAdamState.mu / 'w'``. A new leaf matches the old leaves whose
descriptor ends the same way from the new leaf's last NamedTuple field on, so a state
found again under a new wrapper (``MaskedState.inner_state``, ``inject_hyperparams``) or
without one still matches; among several such, the one sharing the longest ending wins,
and an exact descriptor beats every other. Leaves sharing one descriptor (two Adam
states in one chain) are paired in order when both states have as many; otherwise each
leaf on the side with fewer goes to the leaf on the other side whose whole path,
positions included, ends most like its own, when that choice is unique
(``chain(adamw, scale_by_schedule)`` against ``adamw``: the schedule count inside
``adamw`` keeps its value, the new one starts fresh).
"""

from __future__ import annotations

import collections
from typing import Any, NamedTuple

import jax

from optix.serialization.paths import KeyPath, show_path
from optix.tree import NamedTupleKey

Descriptor = tuple[Any, ...]


class Matching(NamedTuple):
    pairs: list[tuple[int, int]]  # (new leaf index, old leaf index)
    ambiguous: dict[int, str]  # new leaf index -> why it was not paired
    unused: list[int]  # old leaf indices paired with nothing


def descriptor(path: KeyPath) -> Descriptor:
    return tuple(e for e in path if not isinstance(e, jax.tree_util.SequenceKey))


def _owner(desc: Descriptor) -> Descriptor:
    """The ending every match must share: from the last NamedTuple field on."""
    for i in range(len(desc) - 1, -1, -1):
        if isinstance(desc[i], NamedTupleKey):
            return desc[i:]
    return desc


def _common_ending(a: Descriptor, b: Descriptor) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _group(paths: list[KeyPath]) -> dict[Descriptor, list[int]]:
    groups: dict[Descriptor, list[int]] = collections.defaultdict(list)
    for index, path in enumerate(paths):
        groups[descriptor(path)].append(index)
    return groups


def _show_group(paths: list[KeyPath], indices: list[int]) -> str:
    shown = ", ".join(show_path(paths[i]) for i in indices[:3])
    return shown + (f" (+{len(indices) - 3} more)" if len(indices) > 3 else "")


def _pair_unevenly(
    new_paths: list[KeyPath], members: list[int], old_paths: list[KeyPath], old_members: list[int]
) -> list[tuple[int, int]] | None:
    """Pairs for leaves named alike but more often on one side: each leaf of the smaller
    side takes the leaf of the larger side whose whole path, positions included, ends
    most like its own; None unless every choice is unique and no two coincide."""
    flip = len(members) > len(old_members)
    small, large = (old_members, members) if flip else (members, old_members)
    small_paths, large_paths = (old_paths, new_paths) if flip else (new_paths, old_paths)
    chosen = []
    for i in small:
        scores = [_common_ending(small_paths[i], large_paths[j]) for j in large]
        top = [j for j, score in zip(large, scores, strict=True) if score == max(scores)]
        if len(top) != 1:
            return None
        chosen.append(top[0])
    if len(set(chosen)) != len(chosen):
        return None
    return [(j, i) if flip else (i, j) for i, j in zip(small, chosen, strict=True)]


def match_leaves(old_paths: list[KeyPath], new_paths: list[KeyPath]) -> Matching:
    """Pair new leaves with old ones; see the module docstring for the rule."""
    old_groups, new_groups = _group(old_paths), _group(new_paths)
    by_owner: dict[Descriptor, list[Descriptor]] = collections.defaultdict(list)
    for desc in old_groups:
        by_owner[_owner(desc)].append(desc)

    ambiguous: dict[int, str] = {}
    claims: dict[Descriptor, list[Descriptor]] = collections.defaultdict(list)
    for desc, members in new_groups.items():
        candidates = by_owner.get(_owner(desc), [])
        if not candidates:
            continue
        best = max(_common_ending(desc, c) for c in candidates)
        top = [c for c in candidates if _common_ending(desc, c) == best]
        if desc in top:
            top = [desc]
        if len(top) == 1:
            claims[top[0]].append(desc)
            continue
        places = "; ".join(_show_group(old_paths, old_groups[c]) for c in top)
        for i in members:
            ambiguous[i] = f"matches {len(top)} places in the old state equally well: {places}"

    pairs = []
    for old_desc, claimants in claims.items():
        exact = old_desc in claimants
        winners = [old_desc] if exact else claimants if len(claimants) == 1 else []
        old_members = old_groups[old_desc]
        for desc in claimants:
            members = new_groups[desc]
            if desc not in winners:
                rivals = [c for c in claimants if c != desc]
                others = "; ".join(_show_group(new_paths, new_groups[c]) for c in rivals)
                reason = f"{_show_group(old_paths, old_members)} also matches {others}"
            elif len(members) != len(old_members):
                uneven = _pair_unevenly(new_paths, members, old_paths, old_members)
                if uneven is not None:
                    pairs.extend(uneven)
                    continue
                reason = (
                    f"{len(members)} leaves are named like this in the new state and "
                    f"{len(old_members)} in the old one ({_show_group(old_paths, old_members)})"
                )
            else:
                pairs.extend(zip(members, old_members, strict=True))
                continue
            for i in members:
                ambiguous[i] = reason

    paired = {old for _, old in pairs}
    return Matching(pairs, ambiguous, [i for i in range(len(old_paths)) if i not in paired])
