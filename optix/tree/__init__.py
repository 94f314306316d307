"""Pytree utilities: leafwise math, moment updates, dtypes, random trees, state access.

Names match ``optax.tree_utils`` without the ``tree_`` prefix; the prefixed names
live in ``optix.tree_utils``.
"""

from optix.tree.casting import cast, cast_like, dtype
from optix.tree.math import (
    add,
    add_scale,
    allclose,
    batch_shape,
    clip,
    conj,
    div,
    full_like,
    max,
    min,
    mul,
    norm,
    ones_like,
    real,
    scale,
    size,
    sub,
    sum,
    vdot,
    where,
    zeros_like,
)
from optix.tree.moments import (
    bias_correction,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from optix.tree.random import random_like, split_key_like, unwrap_random_key_data
from optix.tree.state import (
    NamedTupleKey,
    assign,
    format_path,
    get,
    get_all_with_path,
    inside,
    map_params,
    set,
)
from optix.tree.structure import check_same_structure

__all__ = [
    "NamedTupleKey",
    "add",
    "add_scale",
    "allclose",
    "assign",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "check_same_structure",
    "clip",
    "conj",
    "div",
    "dtype",
    "format_path",
    "full_like",
    "get",
    "get_all_with_path",
    "inside",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
