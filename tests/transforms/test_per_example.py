"""Per-example clipping for DP-SGD: Optax's numbers and outputs, and the norm law."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optix.transforms.per_example import (
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
)

BATCH = 6


def per_example_grads(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"w": (BATCH, 3, 4), "b": (BATCH, 4), "s": (BATCH,)}
    grads = {k: rng.normal(size=shape).astype(dtype) for k, shape in shapes.items()}
    grads["w"][2] = 0.0  # one example has a zero gradient in one leaf
    grads["w"][3] *= 100.0  # and one a large gradient
    return grads


def assert_same_tree(ours, theirs, rtol):
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bound", [0.0, 0.5, 3.0, 1e6, np.inf])
def test_global_norm_clip_matches_optax(dtype, bound):
    grads = per_example_grads(dtype)
    with jax.enable_x64(dtype == np.float64):
        ours = per_example_global_norm_clip(grads, bound)
        with jax.numpy_dtype_promotion("standard"):
            theirs = optax.per_example_global_norm_clip(grads, bound)
    assert_same_tree(ours, theirs, 2e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("bound", [0.0, 0.5, 3.0, np.inf])
def test_layer_norm_clip_matches_optax(dtype, uniform, bound):
    grads = per_example_grads(dtype, seed=1)
    with jax.enable_x64(dtype == np.float64):
        ours = per_example_layer_norm_clip(grads, bound, uniform)
        with jax.numpy_dtype_promotion("standard"):
            theirs = optax.per_example_layer_norm_clip(grads, bound, uniform)
    assert_same_tree(ours, theirs, 2e-6 if dtype == np.float32 else 1e-14)


def test_the_documented_example_and_counts():
    grads = [jnp.asarray([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]])]
    clipped, count = per_example_global_norm_clip(grads, 1.25)
    np.testing.assert_allclose(clipped[0], [1.75, 1.75, 1.75], rtol=1e-6)
    assert clipped[0].dtype == jnp.float32 and int(count) == 3
    clipped, count = per_example_global_norm_clip(grads, jnp.inf)
    np.testing.assert_array_equal(clipped[0], [7.0, 7.0, 7.0])
    assert int(count) == 0
    sums, counts = per_example_layer_norm_clip({"a": grads[0], "b": grads[0]}, 2.5 * 2**0.5)
    np.testing.assert_allclose(sums["b"], [3.5, 3.5, 3.5], rtol=1e-6)
    assert int(counts["a"]) == 3 and int(counts["b"]) == 3


def test_low_precision_gradients_keep_their_dtype_and_sum_in_float32():
    grads = {"w": jnp.full((256, 2), 0.01, jnp.bfloat16)}
    clipped, count = per_example_global_norm_clip(grads, 1.0)
    assert clipped["w"].dtype == jnp.bfloat16 and int(count) == 0
    # 256 * bf16(0.01) summed in float32, rounded once to bf16.
    expected = jnp.asarray(256 * float(jnp.asarray(0.01, jnp.bfloat16)), jnp.bfloat16)
    np.testing.assert_array_equal(clipped["w"], jnp.full((2,), expected))


def test_bad_arguments_raise_with_the_argument_named():
    with pytest.raises(
        ValueError, match="per_example_global_norm_clip: l2_norm_clip must be >= 0, got "
    ):
        per_example_global_norm_clip([jnp.ones((2, 3))], -1.0)
    with pytest.raises(ValueError, match=r"global_l2_norm_clip must be >= 0, got .*=nan"):
        per_example_layer_norm_clip([jnp.ones((2, 3))], float("nan"))
    with pytest.raises(ValueError, match=r"along axis 0 .* got shapes \[\(2, 3\), \(3,\)\]"):
        per_example_global_norm_clip([jnp.ones((2, 3)), jnp.ones(3)], 1.0)
    with pytest.raises(ValueError, match=r"per_example_layer_norm_clip: .* got shapes \[\(\)\]"):
        per_example_layer_norm_clip([jnp.ones(())], 1.0)


batches = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 5), st.integers(1, 4)),
    elements=st.floats(-1e3, 1e3, allow_subnormal=False, width=32),
)


@settings(max_examples=100, deadline=None)
@given(batches, batches, st.floats(1e-2, 1e3), st.booleans())
def test_each_clipped_example_stays_inside_the_bound(a, b, bound, uniform):
    """Clipping each example to the bound bounds the sum by batch * bound (both forms).

    Examples already inside pass unchanged: with a bound above every example's norm the
    sum is the plain sum.
    """
    if a.shape[0] != b.shape[0]:
        b = np.resize(b, (a.shape[0], b.shape[1]))
    grads = {"a": a, "b": b}
    batch = a.shape[0]
    norms = np.sqrt(np.sum(a.astype(np.float64) ** 2, 1) + np.sum(b.astype(np.float64) ** 2, 1))
    for clipped, count in (
        per_example_global_norm_clip(grads, bound),
        per_example_layer_norm_clip(grads, bound, uniform),
    ):
        total = np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in clipped.values()))
        assert total <= batch * bound * (1 + 1e-5)
        assert int(sum(np.asarray(c) for c in jax.tree.leaves(count))) <= 2 * batch
    clipped, count = per_example_global_norm_clip(grads, bound)
    if not np.any(np.isclose(norms, bound, rtol=1e-5)):
        assert int(count) == int(np.sum(norms > bound))
    if np.all(norms < bound * (1 - 1e-6)):
        np.testing.assert_allclose(clipped["a"], a.sum(0), rtol=1e-5, atol=1e-3)
