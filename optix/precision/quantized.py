"""8-bit optimizer state: any transformation's large moments stored block-wise quantized."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation
from optix.precision.blockwise import QuantizedArray, dequantize_blockwise, quantize_blockwise
from optix.transforms.conditional import as_transformation


class QuantizeMomentsState(NamedTuple):
    """State of ``quantize_moments``."""

    inner_state: Any  # the inner state, each large float leaf a QuantizedArray


def _is_quantized(x: Any) -> bool:
    return isinstance(x, QuantizedArray)


def quantize_moments(
    inner: GradientTransformation, *, block_size: int = 2048, min_size: int = 4096
) -> GradientTransformation:
    """Store the moments of ``inner`` in 8 bits: uint8 codes plus a float32 absmax per block.

    Every floating leaf of ``inner``'s state with at least ``min_size`` entries (the
    param-shaped moments of a large leaf) is kept as a ``QuantizedArray``; counts, scalars
    and small leaves stay as they are. Each step:

        state = dequantize(stored)                       (in float32)
        u, state = inner.update(g, state, params)
        stored = quantize(state)                          (block-wise, dynamic map)

    so the inner update itself runs in float32 on the dequantized moments, and only
    storage is 8-bit. A leaf with no negative entry (a second moment) is coded with the
    unsigned dynamic map, any other (a first moment) with the signed one, as bitsandbytes
    does for Adam's ``exp_avg_sq`` and ``exp_avg``. Adam's two moments then take
    ``2 + 8 / block_size`` bytes per parameter (2.004 for blocks of 2048) instead of 8.

    Wrap the alias (``quantize_moments(optix.adamw(1e-3))``) or only its moment
    transform: every large float leaf is quantized, so a state that keeps a copy of the
    params (Lookahead's slow weights, ASGD's average) should not be wrapped as a whole.
    The state is plain arrays, so it checkpoints like any other state.

    Args:
        inner: The transformation whose state to quantize.
        block_size: Entries per quantization block, an int >= 1 (the paper's 2048).
        min_size: Leaves with fewer entries stay unquantized, an int >= 0 (bitsandbytes'
            ``min_8bit_size``, 4096).

    Returns:
        A GradientTransformation whose state is ``QuantizeMomentsState``.

    References:
        Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise
        Quantization", ICLR 2022, arXiv:2110.02861.
        Checked against quantize_blockwise and the unquantized optimizer in
        tests/precision/test_quantized.py.
    """
    _checks.integer_at_least("quantize_moments", "block_size", block_size, 1)
    _checks.integer_at_least("quantize_moments", "min_size", min_size, 0)
    inner = as_transformation(inner)

    def quantize(leaf):
        dtype = getattr(leaf, "dtype", None)
        floating = dtype is not None and jnp.issubdtype(dtype, jnp.floating)
        if floating and leaf.size >= max(min_size, 1):
            return quantize_blockwise(leaf, block_size)
        return leaf

    def init(params):
        return QuantizeMomentsState(jax.tree.map(quantize, inner.init(params)))

    def update(updates, state, params=None, **extra_args):
        stored, treedef = jax.tree.flatten(state.inner_state, is_leaf=_is_quantized)
        inner_state = treedef.unflatten(
            [dequantize_blockwise(s, block_size) if _is_quantized(s) else s for s in stored]
        )
        updates, inner_state = inner.update(updates, inner_state, params, **extra_args)
        new = treedef.flatten_up_to(inner_state)
        # Re-quantize exactly the leaves that came in quantized, so the structure is fixed.
        kept = [
            quantize_blockwise(n, block_size) if _is_quantized(s) else n
            for s, n in zip(stored, new, strict=True)
        ]
        return updates, QuantizeMomentsState(treedef.unflatten(kept))

    return GradientTransformation(init, update)
