"""Optax-style names for the pytree utilities: ``tree_add`` for ``optix.tree.add``, etc."""

from optix.tree import (
    NamedTupleKey,
    add,
    add_scale,
    allclose,
    batch_shape,
    bias_correction,
    cast,
    cast_like,
    clip,
    conj,
    div,
    dtype,
    full_like,
    get,
    get_all_with_path,
    map_params,
    max,
    min,
    mul,
    norm,
    ones_like,
    random_like,
    real,
    scale,
    set,
    size,
    split_key_like,
    sub,
    sum,
    unwrap_random_key_data,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
    vdot,
    where,
    zeros_like,
)

tree_add = add
tree_add_scale = add_scale
tree_allclose = allclose
tree_batch_shape = batch_shape
tree_bias_correction = bias_correction
tree_cast = cast
tree_cast_like = cast_like
tree_clip = clip
tree_conj = conj
tree_div = div
tree_dtype = dtype
tree_full_like = full_like
tree_get = get
tree_get_all_with_path = get_all_with_path
tree_map_params = map_params
tree_max = max
tree_min = min
tree_mul = mul
tree_norm = norm
tree_ones_like = ones_like
tree_random_like = random_like
tree_real = real
tree_scale = scale
tree_set = set
tree_size = size
tree_split_key_like = split_key_like
tree_sub = sub
tree_sum = sum
tree_unwrap_random_key_data = unwrap_random_key_data
tree_update_infinity_moment = update_infinity_moment
tree_update_moment = update_moment
tree_update_moment_per_elem_norm = update_moment_per_elem_norm
tree_vdot = vdot
tree_where = where
tree_zeros_like = zeros_like

__all__ = [
    "NamedTupleKey",
    "tree_add",
    "tree_add_scale",
    "tree_allclose",
    "tree_batch_shape",
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_clip",
    "tree_conj",
    "tree_div",
    "tree_dtype",
    "tree_full_like",
    "tree_get",
    "tree_get_all_with_path",
    "tree_map_params",
    "tree_max",
    "tree_min",
    "tree_mul",
    "tree_norm",
    "tree_ones_like",
    "tree_random_like",
    "tree_real",
    "tree_scale",
    "tree_set",
    "tree_size",
    "tree_split_key_like",
    "tree_sub",
    "tree_sum",
    "tree_unwrap_random_key_data",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_vdot",
    "tree_where",
    "tree_zeros_like",
]
