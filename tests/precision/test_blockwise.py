"""Block-wise dynamic quantization: the maps are bitsandbytes', the round trip stays
within the map's resolution of each block's absmax, codes are the nearest map values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optix.precision.blockwise import (
    QuantizedArray,
    dequantize_blockwise,
    dynamic_quantization_map,
    map_resolution,
    quantize_blockwise,
)
from tests.precision.reference_map import create_dynamic_map


@pytest.mark.parametrize("signed", [True, False])
def test_maps_are_bitsandbytes_create_dynamic_map(signed):
    ours = dynamic_quantization_map(signed)
    reference = np.asarray(create_dynamic_map(signed), np.float32)
    assert ours.dtype == np.float32 and ours.shape == (256,)
    np.testing.assert_allclose(ours, reference, rtol=1e-7, atol=0)
    assert len(set(ours.tolist())) == 256 and np.all(np.diff(ours) > 0)
    assert ours[-1] == 1.0 and 0.0 in ours
    assert (ours[0] < 0) == signed


def test_resolution_is_half_the_widest_gap():
    # The top decade splits [0.1, 1] into 64 (signed) or 128 (unsigned) steps.
    assert map_resolution(True) == pytest.approx(0.9 / 64 / 2, rel=1e-5)
    assert map_resolution(False) == pytest.approx(0.9 / 128 / 2, rel=1e-5)


def check_round_trip(x, block_size):
    """Codes are the nearest map values, scales are exact block maxima, errors bounded."""
    q = quantize_blockwise(jnp.asarray(x), block_size)
    x_hat = np.asarray(dequantize_blockwise(q, block_size))
    signed = bool(np.any(x < 0))
    table = dynamic_quantization_map(signed).astype(np.float64)
    assert q.codes.dtype == jnp.uint8 and q.codes.shape == x.shape
    assert bool(q.signed) == signed and x_hat.shape == x.shape
    flat = x.reshape(-1).astype(np.float64)
    absmax = np.asarray(q.absmax, np.float64)
    n_blocks = -(-flat.size // block_size)
    expected = [
        np.max(np.abs(flat[b * block_size : (b + 1) * block_size])) for b in range(n_blocks)
    ]
    np.testing.assert_array_equal(absmax, expected)
    scale = np.repeat(absmax, block_size)[: flat.size]
    normalized = np.divide(flat, scale, out=np.zeros_like(flat), where=scale > 0)
    distances = np.abs(normalized[:, None] - table[None, :])
    chosen = distances[np.arange(flat.size), np.asarray(q.codes).reshape(-1)]
    np.testing.assert_allclose(chosen, distances.min(axis=1), rtol=0, atol=1e-7)
    # The bound, plus one float32 rounding of map[code] * absmax.
    error = np.abs(x_hat.reshape(-1) - flat)
    assert np.all(error <= (map_resolution(signed) + 2.0**-23) * scale)
    return np.max(error / np.where(scale > 0, scale, 1))


@pytest.mark.parametrize("block_size", [1, 7, 64, 2048])
@pytest.mark.parametrize("kind", ["normal", "positive", "wide"])
def test_round_trip_error_is_within_the_map_resolution(kind, block_size):
    rng = np.random.default_rng(block_size)
    x = rng.standard_normal((37, 129)).astype(np.float32)
    if kind == "positive":
        x = x**2
    if kind == "wide":  # entries spread over 12 decades
        x = x * 10.0 ** rng.uniform(-8, 4, x.shape).astype(np.float32)
    worst = check_round_trip(x, block_size)
    signed = kind != "positive"
    assert worst <= map_resolution(signed) + 2.0**-23
    if block_size == 2048:  # large blocks of Gaussian data come close to the bound
        assert worst > 0.5 * map_resolution(signed)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=24, max_size=24),
    st.sampled_from([1, 3, 16, 2048]),
)
def test_round_trip_bound_holds_for_any_values(values, block_size):
    # XLA flushes float32 subnormals to zero, quantized or not: keep clear of them.
    x = np.asarray(values, np.float32)
    check_round_trip(np.where(np.abs(x) < 1e-30, np.float32(0), x), block_size)


def test_small_entries_keep_relative_precision():
    # One large entry per block; the others, 1e-3 of it, still come back within 5%.
    x = np.full((4, 2048), 1e-3, np.float32)
    x[:, 0] = 1.0
    x_hat = np.asarray(dequantize_blockwise(quantize_blockwise(jnp.asarray(x)), 2048))
    np.testing.assert_allclose(x_hat[:, 1:], x[:, 1:], rtol=0.05)


def test_zero_blocks_and_non_finite_blocks():
    x = np.zeros(10, np.float32)
    x[5:] = [1.0, 2.0, np.nan, 3.0, 4.0]
    q = quantize_blockwise(jnp.asarray(x), 5)
    x_hat = np.asarray(dequantize_blockwise(q, 5))
    assert np.asarray(q.absmax)[0] == 0 and np.all(x_hat[:5] == 0)
    assert np.all(np.isnan(x_hat[5:]))  # a NaN poisons its own block only


@pytest.mark.parametrize(
    ("dtype", "scale_dtype"),
    [(jnp.bfloat16, jnp.float32), (jnp.float16, jnp.float32), (jnp.float32, jnp.float32)],
)
def test_scales_are_at_least_float32(dtype, scale_dtype):
    x = jnp.linspace(-3, 3, 100, dtype=dtype).reshape(10, 10)
    q = quantize_blockwise(x, 16)
    assert q.absmax.dtype == scale_dtype and q.absmax.shape == (7,)
    assert dequantize_blockwise(q, 16).dtype == scale_dtype


def test_float64_arrays_keep_float64_scales(x64):
    q = quantize_blockwise(jnp.linspace(0.0, 1.0, 10, dtype=jnp.float64), 4)
    assert q.absmax.dtype == jnp.float64
    assert dequantize_blockwise(q, 4).dtype == jnp.float64


def test_jit_gives_the_same_codes():
    x = jax.random.normal(jax.random.key(0), (3000,))
    eager, jitted = (
        quantize_blockwise(x, 256),
        jax.jit(quantize_blockwise, static_argnums=1)(x, 256),
    )
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(a, b)


def test_wrong_block_size_is_reported():
    q = quantize_blockwise(jnp.ones(5000), 2048)
    with pytest.raises(ValueError, match="3 block scales for 5000 entries do not match"):
        dequantize_blockwise(q, 1024)
    with pytest.raises(ValueError, match="quantize_blockwise: block_size must be >= 1, got"):
        quantize_blockwise(jnp.ones(3), 0)
    assert isinstance(q, QuantizedArray)
