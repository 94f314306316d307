"""Whether a transformation may run on packed buffers: proved from its traced code.

Running ``tx`` on the packed buffers gives the same numbers as running it leaf by leaf
exactly when, for each dtype, ``init`` and ``update`` apply one elementwise function to
every leaf of that dtype, combining leaves only through reductions over all of them
(global norms, finite checks), and the packed trace applies that same function to the
buffer. ``plan`` traces ``init`` and ``update`` twice, on the tree and on the buffers,
labels every value (``labels.py``) and compares the two.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from optix.transforms.packing.labels import Label, Labeler, NotElementwise
from optix.transforms.packing.layout import Layout


@dataclasses.dataclass(frozen=True)
class PackingPlan:
    """The decision for one transformation and one layout.

    Attributes:
        layout: Where each leaf lives in the buffers.
        packable: Whether the transformation runs on the buffers.
        reason: Why not, when it does not (``""`` when it does).
        exact: Packed, with no reduction over all leaves: the packed run computes each
            entry with the same operations as the plain one, so the numbers are the same
            bit for bit. With such reductions (global norms) they differ by the order in
            which the reduction adds its terms.
    """

    layout: Layout
    packable: bool
    reason: str = ""
    exact: bool = False


def plan(
    tx: Any, layout: Layout, extra_args: dict | None = None, with_params: bool = True
) -> PackingPlan:
    """Decide whether ``tx`` gives the same numbers on ``layout``'s buffers as on its tree.

    ``update`` is traced with ``extra_args`` (arrays are traced as values shared by every
    leaf; Python numbers and anything else are passed as they are) and with the params
    given, or ``None`` when ``with_params`` is False.
    """
    labeler = Labeler(layout.groups)
    extra_args = dict(extra_args or {})
    try:
        plain = _signature(labeler, tx, layout, False, extra_args, with_params)
        buffers = labeler.over(tuple(name for name, _ in layout.sizes))
        packed = _signature(buffers, tx, layout, True, extra_args, with_params)
    except NotElementwise as error:
        return PackingPlan(layout, False, str(error))
    except Exception as error:  # a trace that fails cannot be proved equal
        return PackingPlan(layout, False, f"tracing failed: {type(error).__name__}: {error}")
    if plain != packed:
        return PackingPlan(layout, False, _difference(plain, packed))
    return PackingPlan(layout, True, exact=not labeler.reductions)


def _is_value(x: Any) -> bool:
    return isinstance(x, np.ndarray | np.generic | jax.Array | jax.ShapeDtypeStruct)


def _signature(
    labeler: Labeler, tx: Any, layout: Layout, packed: bool, extra_args: dict, with_params: bool
) -> dict:
    """What ``init`` and ``update`` compute for each (stage, slot, dtype) of the state."""
    params = layout.abstract_packed() if packed else layout.abstract()
    dtypes = [x.dtype.str for x in jax.tree.leaves(params)]
    param_labels = [labeler.role(("p", d), i) for i, d in enumerate(dtypes)]
    init_jaxpr, state = jax.make_jaxpr(tx.init, return_shape=True)(params)
    prefix, slots = layout.slots(state, packed)
    result: dict = {"prefix": prefix}
    _collect(result, "init", slots, labeler.run(init_jaxpr, param_labels), labeler.groups)

    state_labels = []
    for k, (is_tree, node) in enumerate(slots):
        if is_tree:
            leaves = jax.tree.leaves(node)
            # str(dtype): typed PRNG key dtypes (noise states) have no NumPy ``.str``.
            state_labels += [labeler.role(("s", k, str(x.dtype)), i) for i, x in enumerate(leaves)]
        else:
            key = ("s", k, str(node.dtype), node.shape)
            state_labels.append(labeler.role(key, scalar=node.shape == ()))
    values = {k: v for k, v in extra_args.items() if _is_value(v)}
    others = {k: v for k, v in extra_args.items() if not _is_value(v)}
    given = params if with_params else None
    update = lambda g, s, p, extra: tx.update(g, s, p, **extra, **others)
    update_jaxpr, (out_updates, out_state) = jax.make_jaxpr(update, return_shape=True)(
        params, state, given, values
    )
    if jax.tree.structure(out_updates) != jax.tree.structure(params):
        raise NotElementwise("the updates come back in another tree structure")
    if jax.tree.structure(out_state) != jax.tree.structure(state):
        raise NotElementwise("the state comes back in another tree structure")
    in_labels = [labeler.role(("g", d), i) for i, d in enumerate(dtypes)] + state_labels
    in_labels += param_labels if with_params else []
    in_labels += [labeler.role(("x", k), scalar=np.ndim(v) == 0) for k, v in sorted(values.items())]
    outs = labeler.run(update_jaxpr, in_labels)
    n = len(dtypes)
    _collect(result, "updates", [(True, out_updates)], outs[:n], labeler.groups)
    _collect(result, "update", slots, outs[n:], labeler.groups)
    return result


def _collect(result: dict, stage: str, slots: list, labels: list[Label], groups) -> None:
    """Record each slot's signature per dtype group, requiring one per group."""
    position = 0
    for k, (is_tree, node) in enumerate(slots):
        if not is_tree:
            label = labels[position]
            position += 1
            if label.kind != "G":
                raise NotElementwise(
                    f"{stage}: a state entry not shaped like the params "
                    "depends on the values of a leaf"
                )
            result[(stage, k)] = label.sig
            continue
        for i in range(len(jax.tree.leaves(node))):
            label = labels[position]
            position += 1
            if label.kind == "P" or (label.kind == "E" and label.leaf != i):
                raise NotElementwise(f"{stage}: an output leaf depends on other leaves")
            if label.kind == "G" and not label.scalar:
                raise NotElementwise(
                    f"{stage}: an output leaf varies over its elements independently of its inputs"
                )
            key = (stage, k, groups[i])
            if result.setdefault(key, label.sig) != label.sig:
                raise NotElementwise(
                    f"{stage}: leaves of dtype {groups[i]} are computed differently "
                    "(masks, per-leaf hyperparameters or shape-dependent rules)"
                )


def _difference(plain: dict, packed: dict) -> str:
    keys = sorted(set(plain) ^ set(packed), key=str) or sorted(
        (k for k in plain if plain[k] != packed[k]), key=str
    )
    return (
        "the transformation computes something else on the packed buffers than on the "
        f"leaves (first difference at {keys[0]})"
    )
