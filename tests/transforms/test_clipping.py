"""clip_by_global_norm: the norm law (hypothesis) and Optax's numbers."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms.clipping import ClipByGlobalNormState, clip_by_global_norm

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
arrays = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), elements=finite
)
trees = st.dictionaries(st.sampled_from(["a", "b", "c"]), arrays, min_size=1)
max_norms = st.floats(1e-3, 1e4, allow_nan=False)


def norm64(tree):
    return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in tree.values())))


@settings(max_examples=200, deadline=None)
@given(trees, max_norms)
def test_output_norm_is_at_most_max_norm_and_small_updates_pass_unchanged(tree, max_norm):
    tx = clip_by_global_norm(max_norm)
    out, state = tx.update(jax.tree.map(jnp.asarray, tree), tx.init(tree))
    assert state == ClipByGlobalNormState()
    assert norm64(out) <= max_norm * (1 + 1e-6)
    before = norm64(tree)
    if before < max_norm * (1 - 1e-6):
        for k in tree:
            np.testing.assert_array_equal(out[k], tree[k])
    elif before > max_norm * (1 + 1e-6):
        assert norm64(out) == pytest.approx(max_norm, rel=1e-5)
        for k in tree:
            np.testing.assert_allclose(out[k], tree[k] * (max_norm / before), rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_matches_optax(dtype, max_norm):
    rng = np.random.default_rng(0)
    tree = {"w": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=4).astype(dtype)}
    with jax.enable_x64(dtype == np.float64):
        ours = clip_by_global_norm(max_norm).update(tree, optix.EmptyState())[0]
        with jax.numpy_dtype_promotion("standard"):
            theirs = optax.clip_by_global_norm(max_norm).update(tree, optax.EmptyState())[0]
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for k in tree:
        assert ours[k].dtype == dtype
        np.testing.assert_allclose(ours[k], theirs[k], rtol=rtol)


def test_low_precision_and_none_leaves():
    tree = {"w": jnp.full((64,), 3.0, jnp.bfloat16), "frozen": None}
    out, _ = clip_by_global_norm(1.0).update(tree, ClipByGlobalNormState())
    assert out["frozen"] is None and out["w"].dtype == jnp.bfloat16
    # 64 entries of 3: norm 24, each entry becomes 1/8 (exact in bf16).
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), np.full(64, 0.125))


def test_traced_max_norm():
    tree = {"w": jnp.asarray([3.0, 4.0])}
    clipped = jax.jit(lambda m: clip_by_global_norm(m).update(tree, ())[0]["w"])(1.0)
    np.testing.assert_allclose(clipped, [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bad_max_norm_raises(bad):
    with pytest.raises(
        ValueError, match=f"clip_by_global_norm: max_norm must be > 0, got max_norm={bad}"
    ):
        clip_by_global_norm(bad)
