"""clip_by_block_rms and scale_by_param_block_rms against Optax, and their laws."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from optix.transforms import block_rms
from optix.transforms.block_rms import clip_by_block_rms, scale_by_param_block_rms

PARAMS = {
    "w": jnp.asarray([[1.0, -2.0, 0.5], [0.5, 3.0, -0.1]]),
    "b": jnp.asarray([1e-5, -2e-5]),
    "s": jnp.asarray(0.0),
}
UPDATES = {
    "w": jnp.asarray([[4.0, -1.0, 2.0], [0.0, 3.0, 1.0]]),
    "b": jnp.asarray([0.1, -0.2]),
    "s": jnp.asarray(-7.0),
}


@pytest.mark.parametrize(
    "build",
    [
        lambda m: m.clip_by_block_rms(1.0),
        lambda m: m.clip_by_block_rms(10.0),
        lambda m: m.scale_by_param_block_rms(),
        lambda m: m.scale_by_param_block_rms(0.5),
    ],
    ids=["clip_1", "clip_10", "param_rms", "param_rms_floor_0.5"],
)
def test_matches_optax(build, x64):
    params = jax.tree.map(lambda x: x.astype(jnp.float64), PARAMS)
    updates = jax.tree.map(lambda x: x.astype(jnp.float64), UPDATES)
    tx, reference = build(block_rms), build(optax)
    actual, _ = tx.update(updates, tx.init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = reference.update(updates, reference.init(params), params)
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-14), actual, expected)


def test_clipping_scales_each_leaf_to_the_threshold():
    clipped, _ = clip_by_block_rms(1.0).update(UPDATES, None)
    w_rms = np.sqrt(np.mean(np.square(UPDATES["w"])))
    np.testing.assert_allclose(clipped["w"], UPDATES["w"] / w_rms, rtol=1e-6)
    np.testing.assert_array_equal(clipped["b"], UPDATES["b"])  # rms 0.16 < 1: unchanged
    np.testing.assert_allclose(clipped["s"], -1.0, rtol=1e-6)


def test_param_scale_is_floored_for_small_and_zero_params():
    scaled, _ = scale_by_param_block_rms().update(UPDATES, None, PARAMS)
    w_rms = np.sqrt(np.mean(np.square(PARAMS["w"])))
    np.testing.assert_allclose(scaled["w"], UPDATES["w"] * w_rms, rtol=1e-6)
    np.testing.assert_allclose(scaled["b"], UPDATES["b"] * 1e-3, rtol=1e-6)
    np.testing.assert_allclose(scaled["s"], -7e-3, rtol=1e-6)


def test_param_scale_has_finite_gradients_at_zero_params():
    """Differentiating through the floor must not meet sqrt's infinite slope at 0."""
    tx = scale_by_param_block_rms()
    loss = lambda p: jnp.sum(tx.update({"x": jnp.ones(3)}, None, p)[0]["x"])
    grads = jax.grad(loss)({"x": jnp.zeros(3)})
    assert bool(jnp.all(jnp.isfinite(grads["x"])))
    grads = jax.grad(loss)({"x": jnp.asarray([3.0, 4.0, 0.0])})
    rms = np.sqrt(25.0 / 3)
    np.testing.assert_allclose(grads["x"], 3 * np.asarray([3.0, 4.0, 0.0]) / (3 * rms), rtol=1e-6)


def test_low_precision_updates_keep_their_dtype():
    updates = jax.tree.map(lambda x: x.astype(jnp.bfloat16), UPDATES)
    clipped, _ = clip_by_block_rms(1.0).update(updates, None)
    scaled, _ = scale_by_param_block_rms().update(updates, None, PARAMS)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((clipped, scaled)))


def test_none_leaves_pass_through():
    updates = {"w": jnp.ones(2), "frozen": None}
    params = {"w": jnp.ones(2), "frozen": None}
    assert scale_by_param_block_rms().update(updates, None, params)[0]["frozen"] is None
    assert clip_by_block_rms(1.0).update(updates, None)[0]["frozen"] is None


def test_param_scale_needs_params_and_checks_their_structure():
    with pytest.raises(ValueError, match="scale_by_param_block_rms needs the current params"):
        scale_by_param_block_rms().update(UPDATES, None)
    with pytest.raises(ValueError, match="must have the same tree structure"):
        scale_by_param_block_rms().update(UPDATES, None, {"w": PARAMS["w"]})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: clip_by_block_rms(-0.5),
            "clip_by_block_rms: threshold must be >= 0, got threshold=-0.5",
        ),
        (
            lambda: scale_by_param_block_rms(-1.0),
            "scale_by_param_block_rms: min_scale must be finite and >= 0, got min_scale=-1.0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


@settings(max_examples=50, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
        elements=st.floats(-1e3, 1e3, width=32),
    ),
    threshold=st.floats(0.01, 100.0),
)
def test_clipped_rms_is_at_most_the_threshold_and_direction_is_kept(x, threshold):
    clipped, _ = clip_by_block_rms(threshold).update({"x": jnp.asarray(x)}, None)
    out = np.asarray(clipped["x"], np.float64)
    rms_in, rms_out = np.sqrt(np.mean(np.square(x, dtype=np.float64))), np.sqrt(np.mean(out**2))
    assert rms_out <= threshold * (1 + 1e-5)
    assert np.isclose(rms_out, min(rms_in, threshold), rtol=1e-5, atol=1e-30)
    assert np.all(out * x >= 0)
