"""Gradient centralization against optax.centralize and pytorch_optimizer's GC, and its laws."""

import inspect

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_optimizer.optimizer.gradient_centralization import centralize_gradient

import optix
from optix.transforms.centralize import centralize

SHAPES = {"scalar": (), "bias": (5,), "dense": (3, 4), "seq": (2, 3, 4), "conv": (4, 3, 2, 2)}


def random_tree(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=s) + 2.0, dtype) for k, s in SHAPES.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_optax_centralize(dtype):
    with jax.enable_x64(dtype == np.float64):
        grads = random_tree(dtype)
        tx = centralize()
        ours, state = tx.update(grads, tx.init(grads))
        with jax.numpy_dtype_promotion("standard"):
            theirs, their_state = optax.centralize().update(grads, optax.centralize().init(grads))
    assert type(state).__name__ == type(their_state).__name__ == "EmptyState"
    for k in SHAPES:
        assert ours[k].dtype == theirs[k].dtype == dtype
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-12 if dtype == np.float64 else 1e-5)
    np.testing.assert_array_equal(ours["bias"], grads["bias"])
    np.testing.assert_array_equal(ours["scalar"], grads["scalar"])


@pytest.mark.parametrize("conv_only", [False, True])
def test_matches_pytorch_optimizer_centralize_gradient(conv_only, x64):
    grads = random_tree(np.float64)
    ours, _ = centralize(min_ndim=4 if conv_only else 2).update(grads, optix.EmptyState())
    for k, g in grads.items():
        expected = torch.tensor(np.asarray(g))
        centralize_gradient(expected, gc_conv_only=conv_only)
        np.testing.assert_allclose(ours[k], expected.numpy(), rtol=1e-13, atol=1e-15)


def test_min_ndim_four_centralizes_convolutions_only():
    grads = random_tree(np.float32)
    ours, _ = centralize(min_ndim=4).update(grads, optix.EmptyState())
    for k in ("scalar", "bias", "dense", "seq"):
        np.testing.assert_array_equal(ours[k], grads[k])
    assert not np.allclose(ours["conv"], grads["conv"])


def test_channel_axis_last_is_the_paper_on_flax_layouts():
    kernel = random_tree(np.float32)["dense"]  # Flax Dense: (in, out)
    ours, _ = centralize(channel_axis=-1).update({"k": kernel}, optix.EmptyState())
    torch_layout, _ = optax.centralize().update({"k": kernel.T}, optax.EmptyState())
    np.testing.assert_allclose(ours["k"], torch_layout["k"].T, rtol=1e-6, atol=1e-6)
    # Every output unit (column) has zero-mean incoming weights.
    np.testing.assert_allclose(ours["k"].mean(axis=0), 0.0, atol=1e-6)


@settings(deadline=None, max_examples=40)
@given(
    g=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
        elements=st.floats(-1e3, 1e3),
    ),
    channel_axis=st.integers(-1, 0),
)
def test_centralized_leaves_have_zero_mean_and_centralizing_twice_changes_nothing(g, channel_axis):
    with jax.enable_x64(True):
        tx = centralize(channel_axis=channel_axis)
        once, _ = tx.update({"g": jnp.asarray(g)}, optix.EmptyState())
        twice, _ = tx.update(once, optix.EmptyState())
    once, twice = np.asarray(once["g"]), np.asarray(twice["g"])
    scale = 1e-12 * max(1.0, float(np.max(np.abs(g), initial=0.0)))
    if g.ndim < 2:
        np.testing.assert_array_equal(once, g)
        return
    keep = channel_axis % g.ndim
    axes = tuple(i for i in range(g.ndim) if i != keep)
    np.testing.assert_allclose(once.mean(axis=axes), 0.0, atol=scale)
    np.testing.assert_allclose(twice, once, atol=scale)
    np.testing.assert_allclose(
        g - once, np.broadcast_to(g.mean(axis=axes, keepdims=True), g.shape), atol=scale
    )


def test_low_precision_none_leaves_jit_and_extra_args():
    grads = {"w": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3), "frozen": None}
    tx = centralize()
    updates, state = jax.jit(lambda g: tx.update(g, tx.init(g), None, value=1.0))(grads)
    assert updates["frozen"] is None and updates["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(updates["w"], [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    assert state == optix.EmptyState()


def test_signature_extends_optax():
    assert not inspect.signature(optax.centralize).parameters
    parameters = inspect.signature(centralize).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: centralize(min_ndim=1),
            ValueError,
            "centralize: min_ndim must be >= 2, got min_ndim=1",
        ),
        (
            lambda: centralize(channel_axis=1.5),
            TypeError,
            "centralize: channel_axis must be an int, got channel_axis=1.5",
        ),
        (
            lambda: centralize(channel_axis=2).update({"w": jnp.ones((2, 3))}, optix.EmptyState()),
            ValueError,
            "centralize: channel_axis must be an axis of every leaf with >= 2 axes, got "
            "channel_axis=2 for a leaf of shape (2, 3)",
        ),
    ],
)
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
