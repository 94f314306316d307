"""The shardings of an optimizer's state, derived from the shardings of its params.

Works for any transformation: the state is traced abstractly (``jax.eval_shape``),
each state leaf is matched to the param whose key path it contains (``mu['w']``
belongs to ``params['w']``), and its partition spec is read off that param's spec by
comparing shapes. A spec is never rank-mismatched: a leaf whose layout cannot be
read from its param is replicated (or, with ZeRO, split along its first free dim).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec
from jax.tree_util import GetAttrKey, SequenceKey

from optix.core import GradientTransformation
from optix.optimizers.adafactor import FactoredState, factored_dims
from optix.optimizers.sm3 import ScaleBySM3State
from optix.sharding.zero import axis_names, data_axis_spec

Spec = tuple[Any, ...]  # one mesh-axis entry (None, a name, or a tuple of names) per dim
# (param shape, param spec, leaf shape, keys of the leaf's path after the param's) -> spec
Rule = Callable[[tuple[int, ...], Spec, tuple[int, ...], tuple[Any, ...]], Spec | None]

_RULES: dict[tuple[type, str], Rule] = {}


def register_state_rule(state_type: type, field: str, rule: Rule) -> None:
    """Say how the leaves of ``state_type.field`` are laid out relative to their param.

    ``rule(param_shape, param_spec, leaf_shape, extra_keys)`` returns the leaf's spec
    (a tuple with one entry per dim of the leaf), or ``None`` to fall back to the
    shape-based rules. ``extra_keys`` are the path keys after the param's own path
    (``(SequenceKey(i),)`` for a list of per-dim leaves). optix registers its factored
    states (Adafactor's ``v_row``/``v_col``, SM3's per-dim accumulators).
    """
    _RULES[(state_type, field)] = rule


def _drop(spec: Spec, dim: int) -> Spec:
    return spec[:dim] + spec[dim + 1 :]


def _factored(keep_row: bool) -> Rule:
    def rule(shape, spec, leaf_shape, extra):
        dims = factored_dims(shape, True, 0)
        if dims is None:
            return None
        dropped = dims[1] if keep_row else dims[0]
        return _drop(spec, dropped) if leaf_shape == _drop(shape, dropped) else None

    return rule


def _per_dim(shape, spec, leaf_shape, extra):
    if len(extra) == 1 and isinstance(extra[0], SequenceKey) and extra[0].idx < len(shape):
        i = extra[0].idx
        return (spec[i],) if leaf_shape == (shape[i],) else None
    return None


register_state_rule(FactoredState, "v_row", _factored(keep_row=True))
register_state_rule(FactoredState, "v_col", _factored(keep_row=False))
register_state_rule(ScaleBySM3State, "mu", _per_dim)


def _by_shape(shape, spec, leaf_shape) -> Spec | None:
    """The spec of a leaf whose shape relates to its param's in a way that fixes it."""
    if leaf_shape == shape:
        return spec
    extra = len(leaf_shape) - len(shape)
    if shape and extra > 0 and leaf_shape[extra:] == shape:  # stacked history (L-BFGS)
        return (None,) * extra + spec
    if extra == 0 and all(n in (m, 1) for n, m in zip(leaf_shape, shape, strict=True)):
        return tuple(s if n == m else None for s, n, m in zip(spec, leaf_shape, shape, strict=True))
    if 0 < len(leaf_shape) < len(shape):  # some dims reduced away: unique reading only
        found = {
            tuple(spec[i] for i in kept)
            for kept in itertools.combinations(range(len(shape)), len(leaf_shape))
            if tuple(shape[i] for i in kept) == leaf_shape
        }
        if len(found) == 1:
            return found.pop()
    return None


def _padded(spec: Any, ndim: int, where: str = "a state leaf") -> Spec:
    entries = tuple(spec)
    if len(entries) > ndim:
        raise ValueError(
            f"optix.sharding: the spec {spec} of {where} has more entries than its {ndim} dims"
        )
    return entries + (None,) * (ndim - len(entries))


def _matching_param(path: tuple, params: dict[tuple, Any]) -> tuple[tuple, tuple] | None:
    """The param whose path occurs in ``path`` (longest, then last); and the keys after it."""
    for length in range(len(path), -1, -1):
        for start in range(len(path) - length, -1, -1):
            if path[start : start + length] in params:
                return path[start : start + length], path[start + length :]
    return None


def _context(path: tuple, typed_nodes: dict[tuple, type]) -> tuple[type, str] | None:
    """The registered state class and field that hold the leaf at ``path``, if any."""
    for k in range(len(path) - 1, -1, -1):
        node_type = typed_nodes.get(path[:k])
        if node_type is not None and isinstance(path[k], GetAttrKey):
            return node_type, path[k].name
    return None


def _leaf_spec(path, leaf, params, typed_nodes) -> Spec | None:
    """The leaf's spec as read from its param's, or None when it cannot be read."""
    shape = tuple(leaf.shape)
    if not shape:
        return ()
    match = _matching_param(path, params)
    if match is None:
        return None
    param_path, extra = match
    param_shape, param_spec = params[param_path]
    context = _context(path, typed_nodes)
    if context in _RULES:
        spec = _RULES[context](param_shape, param_spec, shape, extra)
        if spec is not None:
            return spec
    return _by_shape(param_shape, param_spec, shape)


def param_table(params: Any, param_specs: Any) -> dict[tuple, tuple[tuple, Spec]]:
    """``{param path: (shape, padded spec)}``; specs from the tree given or the params."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if param_specs is None:
        specs = [getattr(x, "sharding", None) for _, x in flat]
    elif isinstance(param_specs, NamedSharding | PartitionSpec):
        specs = [param_specs] * len(flat)
    else:
        specs = treedef.flatten_up_to(param_specs)
    table = {}
    for (path, x), spec in zip(flat, specs, strict=True):
        if isinstance(spec, NamedSharding):
            spec = spec.spec
        if not isinstance(spec, PartitionSpec):
            raise ValueError(
                f"optix.sharding: the param at {jax.tree_util.keystr(path)} has no "
                f"NamedSharding (got {spec!r}); pass param_shardings, or params placed "
                "with jax.device_put(x, NamedSharding(mesh, spec))."
            )
        where = f"the param at {jax.tree_util.keystr(path)}"
        table[path] = (tuple(x.shape), _padded(spec, len(x.shape), where))
    return table


def _mesh_of(params: Any, param_shardings: Any) -> jax.sharding.Mesh | jax.sharding.AbstractMesh:
    for sharding in jax.tree.leaves(
        param_shardings if param_shardings is not None else params,
        is_leaf=lambda x: isinstance(x, NamedSharding),
    ):
        sharding = getattr(sharding, "sharding", sharding)
        if isinstance(sharding, NamedSharding):
            return sharding.mesh
    raise ValueError("optix.sharding: no NamedSharding found to take the mesh from; pass mesh=")


def state_specs(
    tx: GradientTransformation,
    params: Any,
    param_specs: Any = None,
    *,
    zero_axis: Any = None,
    mesh: jax.sharding.Mesh | jax.sharding.AbstractMesh | None = None,
) -> Any:
    """The ``PartitionSpec`` of every leaf of ``tx.init(params)``, from the params' specs.

    Rules, in order: a registered rule for the leaf's state field (factored states);
    a leaf shaped like its param takes the param's spec; a stack of param-shaped
    slices (L-BFGS history) adds an unsplit leading dim; a leaf with some dims kept at
    size 1 or reduced away keeps the specs of the remaining dims when those can be
    read unambiguously; scalars and everything else are replicated.

    With ``zero_axis`` the state is laid out as if every param were also split along
    that mesh axis (on its first free dim divisible by the axis size, as
    ``data_axis_spec``): param-shaped leaves are split, factored and per-dim
    statistics follow, and every state leaf stays aligned with the blocks of its
    param, which ``shard_map`` and meshes with Explicit axes need. A statistic that
    lacks its param's split dim (Adafactor's column factor of a row-split matrix) is
    replicated; it is small. Leaves with no param are split on their first divisible dim.

    Args:
        tx: The transformation.
        params: Params or their ``jax.ShapeDtypeStruct``s (not materialized).
        param_specs: A tree like ``params`` of ``PartitionSpec`` or ``NamedSharding``,
            or one of them for every param; ``None`` reads ``params``' own shardings.
        zero_axis: A mesh axis (or tuple of axes) to split the state along, ZeRO-style.
        mesh: The mesh; needed with ``zero_axis`` when no ``NamedSharding`` gives it.

    Returns:
        A tree with the structure of ``tx.init(params)`` whose leaves are
        ``PartitionSpec``s (usable as ``shard_map`` specs).
    """
    table = param_table(params, param_specs)
    state = jax.eval_shape(tx.init, params)
    registered = tuple({state_type for state_type, _ in _RULES})
    typed_nodes = {
        path: type(node)
        for path, node in jax.tree_util.tree_flatten_with_path(
            state, is_leaf=lambda x: isinstance(x, registered)
        )[0]
        if isinstance(node, registered)
    }
    zero: Callable[[Any, tuple[int, ...]], tuple[Any, ...]] | None = None
    if zero_axis is not None:
        mesh = mesh if mesh is not None else _mesh_of(params, param_specs)
        size = math.prod(mesh.shape[name] for name in axis_names(zero_axis))

        def split_along_zero_axis(spec: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
            return tuple(data_axis_spec(PartitionSpec(*spec), shape, zero_axis, size))

        zero = split_along_zero_axis
        table = {path: (shape, zero(spec, shape)) for path, (shape, spec) in table.items()}
    flat, treedef = jax.tree_util.tree_flatten_with_path(state)
    specs = []
    for path, leaf in flat:
        shape = tuple(leaf.shape)
        spec = _leaf_spec(path, leaf, table, typed_nodes)
        if spec is None:
            spec = zero((None,) * len(shape), shape) if zero is not None else (None,) * len(shape)
        specs.append(PartitionSpec(*_padded(spec, len(shape))))
    return treedef.unflatten(specs)


def state_shardings(
    tx: GradientTransformation,
    params: Any,
    param_shardings: Any = None,
    *,
    zero_axis: Any = None,
    mesh: jax.sharding.Mesh | jax.sharding.AbstractMesh | None = None,
) -> Any:
    """The ``NamedSharding`` of every leaf of ``tx.init(params)`` (see ``state_specs``).

    Args:
        tx: The transformation.
        params: Params or their ``jax.ShapeDtypeStruct``s.
        param_shardings: As ``param_specs`` of ``state_specs``; ``None`` reads the
            params' own shardings.
        zero_axis: A mesh axis (or tuple of axes) to split the state along as ZeRO
            does; ``None`` keeps the params' layout.
        mesh: The mesh, needed only when the shardings are given as ``PartitionSpec``s.

    Returns:
        A tree with the structure of ``tx.init(params)`` of ``NamedSharding``s.
    """
    mesh = mesh if mesh is not None else _mesh_of(params, param_shardings)
    specs = state_specs(tx, params, param_shardings, zero_axis=zero_axis, mesh=mesh)
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs)
