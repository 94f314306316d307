"""Block-wise dynamic 8-bit quantization: the two dynamic maps, quantize and dequantize.

An array is flattened and cut into blocks of ``block_size`` entries (the last one may be
shorter). Each block keeps its largest magnitude ``absmax`` in at least float32 and one
uint8 code per entry: the index of the map value nearest to ``x / absmax``. The maps are
dynamic (non-linear): a value's decade sets its exponent and the remaining bits a linear
fraction, so small entries of a block keep their relative precision.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.tree.leafwise import compute_dtype

# Decades 10**-6 .. 10**0 below the block's absmax each get their own exponent.
_DECADES = 7


class QuantizedArray(NamedTuple):
    """One array stored as uint8 codes and a float scale per block."""

    codes: jax.Array  # uint8, the array's shape: index of the nearest map value
    absmax: jax.Array  # (num_blocks,), float32 (float64 for float64 arrays): max |x| per block
    signed: jax.Array  # bool scalar: codes index the signed map (else the unsigned one)


@functools.cache
def _map(signed: bool) -> np.ndarray:
    values = [0.0, 1.0]
    for i in range(_DECADES):
        # Decade i holds 2**i fractions (2**(i + 1) without a sign): larger decades,
        # where a block's large entries live, get the finer steps.
        items = 2 ** (i if signed else i + 1)
        edges = np.linspace(0.1, 1.0, items + 1)
        means = 10.0 ** (i - _DECADES + 1) * (edges[:-1] + edges[1:]) / 2
        values += list(means) + (list(-means) if signed else [])
    table = np.sort(np.asarray(values, np.float32))
    table.flags.writeable = False
    return table


def dynamic_quantization_map(signed: bool = True) -> np.ndarray:
    """The 256 sorted float32 values that uint8 codes stand for, in [-1, 1] or [0, 1].

    With ``signed``: 0, 1 and, for each decade i = 0..6, the ``2**i`` midpoints of an even
    split of [0.1, 1] scaled by ``10**(i - 6)``, with both signs (so -1 itself is not in the
    map; its nearest value is -0.99297). Unsigned: the same with ``2**(i + 1)`` midpoints per
    decade and no negative values. These are ``create_dynamic_map(signed)`` of
    bitsandbytes with its defaults (7 exponent bits, 8 bits in total).

    References:
        Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise
        Quantization", ICLR 2022, arXiv:2110.02861, section 2 (dynamic tree quantization).
        Dettmers, "8-Bit Approximations for Parallelism in Deep Learning", ICLR 2016,
        arXiv:1511.04561.
        Checked against create_dynamic_map of bitsandbytes (a transliteration) in
        tests/precision/test_blockwise.py.
    """
    return _map(bool(signed))


def map_resolution(signed: bool = True) -> float:
    """The largest ``|v - nearest map value|`` over v in [-1, 1] (signed) or [0, 1].

    A block's dequantized entries are within ``resolution * absmax`` of the originals.
    """
    table = _map(bool(signed)).astype(np.float64)
    low = -1.0 if signed else 0.0
    return float(max(np.max(np.diff(table)) / 2, table[0] - low, 1.0 - table[-1]))


# Codes are found from a float32's bits: sign, exponent and the top _MANTISSA_BITS of the
# mantissa pick a bucket of relative width 2**-9, narrower than the gap between any two
# consecutive midpoints of either map, so a bucket holds at most one midpoint. Magnitudes
# below 2**-32 (far under the smallest midpoint, 1.6e-7) share bucket 0.
_MANTISSA_BITS = 9
_LOW_EXPONENT = 127 - 32
_PER_SIGN = (127 - _LOW_EXPONENT + 1) << _MANTISSA_BITS


@functools.cache
def _buckets(signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(first, midpoints)``: per bucket, the number of midpoints below it (uint8); the
    255 midpoints between consecutive map values, then +inf."""
    table = _map(signed).astype(np.float64)
    midpoints = np.append((table[:-1] + table[1:]) / 2, np.inf)
    step = 2.0**-_MANTISSA_BITS
    exponents = np.repeat(np.arange(_LOW_EXPONENT, 128) - 127.0, 1 << _MANTISSA_BITS)
    fractions = np.tile(np.arange(1 << _MANTISSA_BITS) * step, 128 - _LOW_EXPONENT)
    low = np.concatenate([[-(2.0**-32)], 2.0**exponents * (1 + fractions)])
    high = np.concatenate([[2.0**-32], 2.0**exponents * (1 + fractions + step)])
    # Bucket 0, then positive buckets, then negative ones (whose low end is -high).
    low, high = np.concatenate([low, -high[1:]]), np.concatenate([high, -low[1:]])
    first = np.searchsorted(midpoints, low, side="left")
    assert np.all(np.searchsorted(midpoints, high, side="right") - first <= 1)
    return first.astype(np.uint8), midpoints.astype(np.float32)


def _nearest_codes(normalized: jax.Array, signed: jax.Array) -> jax.Array:
    """Index of the map value nearest each float32 entry of ``normalized`` (in [-1, 1])."""
    first, midpoints = (
        jnp.where(signed, jnp.asarray(a), jnp.asarray(b))
        for a, b in zip(_buckets(True), _buckets(False), strict=True)
    )
    bits = jax.lax.bitcast_convert_type(normalized, jnp.uint32)
    magnitude = (bits & 0x7FFFFFFF).astype(jnp.int32)
    exponent = magnitude >> 23
    fraction = (magnitude >> (23 - _MANTISSA_BITS)) & ((1 << _MANTISSA_BITS) - 1)
    bucket = 1 + ((exponent - _LOW_EXPONENT) << _MANTISSA_BITS) + fraction
    bucket = bucket + (bits >> 31).astype(jnp.int32) * _PER_SIGN
    bucket = jnp.where(exponent < _LOW_EXPONENT, 0, jnp.minimum(bucket, first.size - 1))
    below = first[bucket].astype(jnp.int32)
    return below + (normalized > midpoints[below]).astype(jnp.int32)


def _num_blocks(size: int, block_size: int) -> int:
    return max(1, -(-size // block_size))


def _blocks(flat: jax.Array, block_size: int) -> jax.Array:
    """``flat`` zero-padded to whole blocks, one block per row."""
    rows = _num_blocks(flat.size, block_size)
    return jnp.pad(flat, (0, rows * block_size - flat.size)).reshape(rows, block_size)


def quantize_blockwise(x: jax.Array, block_size: int = 2048) -> QuantizedArray:
    """Quantize ``x`` to one uint8 code per entry and one absmax per block.

    The map is the unsigned one when no entry of ``x`` is negative (second moments) and
    the signed one otherwise (first moments). Per block, with s = absmax > 0:

        code = argmin_k |x / s - map[k]|      (nearest map value)
        dequantize: x_hat = map[code] * s,    |x - x_hat| <= map_resolution(signed) * s

    An all-zero block keeps absmax 0 and the code of 0. NaN or inf entries make their
    block non-finite, as they would make an unquantized moment.

    Args:
        x: A floating array of any shape.
        block_size: Entries per block of the flattened array, an int >= 1.

    Returns:
        A ``QuantizedArray``; ``dequantize_blockwise`` with the same ``block_size``
        inverts it up to the map's resolution.

    References:
        Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR 2022,
        arXiv:2110.02861, section 2.
        Checked against map_resolution and a brute-force nearest search in
        tests/precision/test_blockwise.py.
    """
    _checks.integer_at_least("quantize_blockwise", "block_size", block_size, 1)
    return _quantize(x, block_size)


@functools.partial(jax.jit, static_argnums=1)
def _quantize(x: jax.Array, block_size: int) -> QuantizedArray:
    dt = compute_dtype(x)
    flat = jnp.ravel(x).astype(dt)
    blocks = _blocks(flat, block_size)
    absmax = jnp.max(jnp.abs(blocks), axis=1)
    signed = jnp.any(flat < 0)
    normalized = blocks / jnp.where(absmax > 0, absmax, jnp.ones([], dt))[:, None]
    codes = _nearest_codes(normalized.astype(jnp.float32), signed).astype(jnp.uint8)
    codes = codes.reshape(-1)[: flat.size].reshape(jnp.shape(x))
    return QuantizedArray(codes=codes, absmax=absmax, signed=signed)


def dequantize_blockwise(q: QuantizedArray, block_size: int = 2048) -> jax.Array:
    """The array ``q`` stands for, in ``q.absmax``'s dtype: ``map[code] * absmax``.

    Raises:
        ValueError: if ``q`` was quantized with another block size.
    """
    size = int(np.prod(q.codes.shape))
    if q.absmax.shape != (_num_blocks(size, block_size),):
        raise ValueError(
            f"dequantize_blockwise: {q.absmax.shape[0]} block scales for {size} entries do not "
            f"match block_size={block_size}; dequantize with the block size used to quantize."
        )
    return _dequantize(q, block_size)


@functools.partial(jax.jit, static_argnums=1)
def _dequantize(q: QuantizedArray, block_size: int) -> jax.Array:
    size = q.codes.size
    dt = q.absmax.dtype
    table = jnp.where(q.signed, *(jnp.asarray(_map(s), dt) for s in (True, False)))
    values = _blocks(table[jnp.ravel(q.codes)], block_size) * q.absmax[:, None]
    return values.reshape(-1)[:size].reshape(q.codes.shape)
