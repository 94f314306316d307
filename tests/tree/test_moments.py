"""Moment updates and bias correction, against NumPy and ``optax.tree_utils``."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix.tree as ot

otu = optax.tree_utils

rng = np.random.default_rng(0)
G = {
    "w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
    "b": jnp.asarray(rng.normal(size=4), jnp.float32),
}
M = {
    "w": jnp.asarray(rng.uniform(size=(3, 2)), jnp.float32),
    "b": jnp.asarray(rng.uniform(size=4), jnp.float32),
}


def _assert_trees_close(got: Any, want: Any, rtol: float = 1e-6) -> None:
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol)


@pytest.mark.parametrize("order", [1, 2, 3, 1.5])
@pytest.mark.parametrize("decay", [0.9, 0.999])
def test_update_moment(order: float, decay: float) -> None:
    got = ot.update_moment(G, M, decay, order)
    for key in G:
        g, m = np.asarray(G[key], np.float64), np.asarray(M[key], np.float64)
        with np.errstate(invalid="ignore"):
            want = (1 - decay) * g**order + decay * m
        np.testing.assert_allclose(got[key], want, rtol=1e-5, equal_nan=True)
    _assert_trees_close(got, otu.tree_update_moment(G, M, decay, order))
    _assert_trees_close(
        ot.update_moment_per_elem_norm(G, M, decay, order),
        otu.tree_update_moment_per_elem_norm(G, M, decay, order),
    )


@pytest.mark.parametrize("order", [1, 2, 3])
def test_update_moment_per_elem_norm_on_complex(order: int) -> None:
    g = {"z": jnp.array([1 + 2j, -3 + 0.5j, 0.25j], jnp.complex64)}
    m = {"z": jnp.array([0.5, 1.0, 2.0], jnp.float32)}
    got = ot.update_moment_per_elem_norm(g, m, 0.8, order)
    want = 0.2 * np.abs(np.asarray(g["z"], np.complex128)) ** order + 0.8 * np.asarray(m["z"])
    assert got["z"].dtype == jnp.float32
    np.testing.assert_allclose(got["z"], want, rtol=1e-6)
    _assert_trees_close(got, otu.tree_update_moment_per_elem_norm(g, m, 0.8, order))


@pytest.mark.parametrize("eps", [0.0, 1e-3, 5.0])
def test_update_infinity_moment(eps: float) -> None:
    got = ot.update_infinity_moment(G, M, 0.9, eps)
    for key in G:
        g, m = np.asarray(G[key], np.float64), np.asarray(M[key], np.float64)
        np.testing.assert_allclose(got[key], np.maximum(np.abs(g) + eps, 0.9 * m), rtol=1e-6)
    _assert_trees_close(got, otu.tree_update_infinity_moment(G, M, 0.9, eps))


@pytest.mark.parametrize(
    "update",
    [ot.update_moment, ot.update_moment_per_elem_norm, ot.update_infinity_moment],
)
def test_none_updates_give_none(update: Any) -> None:
    m = jnp.array([1.0, 2.0, 3.0])
    assert update(None, m, 0.9, 1) is None
    got = update({"a": None, "b": jnp.array([2.0])}, {"a": m, "b": jnp.array([1.0])}, 0.5, 1)
    assert got["a"] is None and got["b"].shape == (1,)


def test_bf16_moments_are_updated_in_float32() -> None:
    g = {"w": jnp.array([1.0, -3.0], jnp.bfloat16)}
    m = {"w": jnp.array([0.5, 0.25], jnp.bfloat16)}
    got = ot.update_moment(g, m, jnp.float32(0.9), 2)
    assert got["w"].dtype == jnp.bfloat16
    want = (0.1 * np.array([1.0, 9.0]) + 0.9 * np.array([0.5, 0.25])).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(got["w"], np.float32), want.astype(np.float32))
    # bf16 updates with a float32 moment (a mu_dtype) promote to float32, as in Optax;
    # Optax rounds (1 - decay) * g to bf16 first, so it agrees only to bf16 precision.
    m32 = {"w": jnp.array([0.5, 0.25], jnp.float32)}
    got = ot.update_moment(g, m32, 0.9, 1)
    assert got["w"].dtype == jnp.float32
    np.testing.assert_allclose(got["w"], [0.1 + 0.45, -0.3 + 0.225], rtol=1e-6)
    with jax.numpy_dtype_promotion("standard"):
        theirs = otu.tree_update_moment(g, m32, 0.9, 1)
    assert theirs["w"].dtype == jnp.float32
    np.testing.assert_allclose(got["w"], theirs["w"], atol=1e-3)
    got = ot.update_infinity_moment(g, m32, jnp.float32(0.5), 1e-3)
    assert got["w"].dtype == jnp.float32
    np.testing.assert_allclose(got["w"], [1.001, 3.001], rtol=1e-6)


def test_moment_updates_under_jit_with_traced_decay() -> None:
    for update in (ot.update_moment, ot.update_moment_per_elem_norm, ot.update_infinity_moment):
        got = jax.jit(update, static_argnums=3)(G, M, jnp.float32(0.95), 2)
        _assert_trees_close(got, update(G, M, 0.95, 2), rtol=1e-6)


def test_bias_correction_matches_float64() -> None:
    count = np.arange(1, 10_001)
    want = 1.0 / (1.0 - 0.999 ** count.astype(np.float64))
    ones = jnp.ones(count.shape, jnp.float32)
    got = ot.bias_correction(ones, 0.999, jnp.asarray(count, jnp.int32))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-6)
    # The direct 1 - decay**count in float32 is off by ~1e-5 at small counts.
    naive = 1.0 / (1.0 - np.float32(0.999) ** count.astype(np.float32))
    assert np.max(np.abs(naive / want - 1)) > 1e-6


@pytest.mark.usefixtures("x64")
def test_bias_correction_in_float64() -> None:
    moment = {"m": jnp.ones(3, jnp.float64)}
    got = ot.bias_correction(moment, 0.999, jnp.asarray(7, jnp.int32))
    assert got["m"].dtype == jnp.float64
    np.testing.assert_allclose(got["m"], 1 / (1 - 0.999**7), rtol=1e-14)


@pytest.mark.parametrize("decay", [0.9, 0.99, 0.999, 0.9995])
@pytest.mark.parametrize("count", [1, 10, 100, 1000])
def test_bias_correction_keeps_bf16_and_finite(decay: float, count: int) -> None:
    m = {"a": jnp.logspace(-10, 10, num=21, dtype=jnp.bfloat16), "none": None}
    got = ot.bias_correction(m, decay, count)
    assert got["none"] is None and got["a"].dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(got["a"])))
    want = np.asarray(m["a"], np.float64) / (1 - decay**count)
    np.testing.assert_allclose(np.asarray(got["a"], np.float64), want, rtol=2e-2)


def test_bias_correction_matches_optax_and_traced_decay() -> None:
    got = ot.bias_correction(M, 0.9, jnp.asarray(3))
    _assert_trees_close(got, otu.tree_bias_correction(M, 0.9, jnp.asarray(3)))
    jitted = jax.jit(ot.bias_correction)(M, jnp.float32(0.9), jnp.asarray(3))
    _assert_trees_close(jitted, got)
