"""clip, clip_by_global_norm and adaptive_grad_clip: Optax's numbers and state, and their laws."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms import clipping
from optix.transforms.clipping import (
    AdaptiveGradClipState,
    ClipByGlobalNormState,
    ClipState,
    adaptive_grad_clip,
    clip,
    clip_by_global_norm,
    unitwise_clip,
    unitwise_norm,
)
from tests.transforms.basics import check_basics

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
arrays = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), elements=finite
)
trees = st.dictionaries(st.sampled_from(["a", "b", "c"]), arrays, min_size=1)
max_norms = st.floats(1e-3, 1e4, allow_nan=False)


def norm64(tree):
    return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in tree.values())))


def random_tree(dtype, seed=0):
    """Leaves of every rank adaptive_grad_clip guesses units for, 0 to 5."""
    rng = np.random.default_rng(seed)
    shapes = {"s": (), "b": (4,), "row": (1, 5), "w": (3, 4), "h": (2, 3, 4), "c": (2, 2, 3, 4)}
    shapes["c3"] = (2, 2, 2, 3, 2)
    return {k: rng.normal(size=shape).astype(dtype) for k, shape in shapes.items()}


def assert_matches_optax(build, dtype, updates, params=None, rtol=None):
    """Our transformation and Optax's give the same numbers and the same state layout."""
    rtol = rtol or (1e-6 if dtype == np.float32 else 1e-14)
    with jax.enable_x64(dtype == np.float64):
        tx = build(clipping)
        ours, state = tx.update(updates, tx.init(params), params)
        reference = build(optax)
        with jax.numpy_dtype_promotion("standard"):
            theirs, their_state = reference.update(updates, reference.init(params), params)
    assert type(state).__name__ == type(their_state).__name__
    assert state._fields == their_state._fields
    for k in updates:
        assert ours[k].dtype == dtype
        np.testing.assert_allclose(ours[k], theirs[k], rtol=rtol, atol=0)


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
    assert_matches_optax(lambda m: m.clip_by_global_norm(max_norm), dtype, tree)


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


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_max_norm_raises(bad):
    with pytest.raises(
        ValueError, match=f"clip_by_global_norm: max_norm must be >= 0, got max_norm={bad}"
    ):
        clip_by_global_norm(bad)


def test_zero_bounds_clip_to_zero():
    tree = {"w": jnp.asarray([3.0, -4.0]), "b": jnp.asarray(0.5)}
    for tx in (clip_by_global_norm(0.0), clip(0.0), adaptive_grad_clip(0.0)):
        updates, _ = tx.update(tree, tx.init(tree), tree)
        assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(updates))


# clip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_delta", [0.1, 1.0, 10.0])
def test_clip_matches_optax(dtype, max_delta):
    assert_matches_optax(lambda m: m.clip(max_delta), dtype, random_tree(dtype))


@settings(max_examples=200, deadline=None)
@given(trees, st.floats(0.0625, 1024.0, width=32))
def test_clip_bounds_every_entry_and_leaves_small_entries_unchanged(tree, max_delta):
    out, state = clip(max_delta).update(jax.tree.map(jnp.asarray, tree), ClipState())
    assert state == ClipState()
    for k, g in tree.items():
        bound = np.float32(max_delta)
        expected = np.where(np.abs(g) <= bound, g, np.sign(g) * bound)
        np.testing.assert_array_equal(out[k], expected)


def test_clip_keeps_nans_and_clamps_infinities():
    out, _ = clip(2.0).update({"x": jnp.asarray([jnp.nan, jnp.inf, -jnp.inf, 1.0])}, ClipState())
    np.testing.assert_array_equal(out["x"], [np.nan, 2.0, -2.0, 1.0])


# adaptive_grad_clip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clipping_, eps", [(0.01, 1e-3), (0.3, 1e-3), (1.0, 0.5), (100.0, 0.0)])
def test_adaptive_grad_clip_matches_optax(dtype, clipping_, eps):
    params = random_tree(dtype, seed=1)
    params["b"] = np.zeros(4, dtype)  # zero-initialised: the eps floor decides
    assert_matches_optax(
        lambda m: m.adaptive_grad_clip(clipping_, eps), dtype, random_tree(dtype), params
    )


@pytest.mark.parametrize("axis", [0, 1, (0, 2), -1])
def test_adaptive_grad_clip_with_explicit_axes_matches_optax(axis, x64):
    rng = np.random.default_rng(2)
    updates = {"x": rng.normal(size=(3, 4, 5)), "y": rng.normal(size=(2, 3, 2, 2, 2, 2))}
    params = {"x": 0.1 * rng.normal(size=(3, 4, 5)), "y": 0.1 * rng.normal(size=(2, 3, 2, 2, 2, 2))}
    assert_matches_optax(
        lambda m: m.adaptive_grad_clip(0.2, axis=axis), np.float64, updates, params
    )


@pytest.mark.parametrize("axis", [None, 0, (1, 2)])
def test_unitwise_norm_and_clip_match_optax(axis, x64):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 5)) + 1j * rng.normal(size=(3, 4, 5))
    ours = unitwise_norm(x, axis)
    np.testing.assert_allclose(ours, optax.transforms.unitwise_norm(x, axis), rtol=1e-14)
    assert ours.dtype == np.float64 and ours.shape == x.shape
    g, limit = rng.normal(size=(3, 4)), np.abs(rng.normal(size=(3, 4)))
    g_norm = np.asarray(unitwise_norm(g))
    with jax.numpy_dtype_promotion("standard"):
        expected = optax.transforms.unitwise_clip(g_norm, limit, g)
    np.testing.assert_allclose(unitwise_clip(g_norm, limit, g), expected, rtol=1e-14)


def test_unitwise_norm_units_of_each_rank():
    np.testing.assert_allclose(unitwise_norm(jnp.asarray([[3.0, 4.0]])), [[5.0, 5.0]])
    w = jnp.asarray([[3.0, 1.0], [4.0, 0.0]])
    np.testing.assert_allclose(unitwise_norm(w), [[5.0, 1.0], [5.0, 1.0]])
    with pytest.raises(ValueError, match=r"shape \(2, 1, 1, 1, 1, 2\); pass axis="):
        unitwise_norm(jnp.ones((2, 1, 1, 1, 1, 2)))
    with pytest.raises(ValueError, match="must have one shape"):
        unitwise_clip(jnp.ones(3), jnp.ones(2), jnp.ones(3))


kernels = hnp.arrays(
    np.float32,
    st.tuples(st.integers(2, 4), st.integers(2, 4)),
    elements=st.floats(-1e2, 1e2, allow_nan=False, allow_subnormal=False, width=32),
)


@settings(max_examples=200, deadline=None)
@given(kernels, st.data(), st.floats(1e-2, 10.0))
def test_adaptive_grad_clip_bounds_each_unit(g, data, clipping_):
    """Each column of a dense kernel ends with norm <= clipping * max(||p_col||, eps).

    Columns already inside their bound pass unchanged; the others land on it.
    """
    p = data.draw(hnp.arrays(np.float32, g.shape, elements=st.floats(-10, 10, width=32)))
    out, state = adaptive_grad_clip(clipping_).update({"w": g}, AdaptiveGradClipState(), {"w": p})
    assert state == AdaptiveGradClipState()
    out = np.asarray(out["w"], np.float64)
    bound = clipping_ * np.maximum(np.linalg.norm(p.astype(np.float64), axis=0), 1e-3)
    before, after = np.linalg.norm(g.astype(np.float64), axis=0), np.linalg.norm(out, axis=0)
    assert np.all(after <= bound * (1 + 1e-5))
    inside = before < bound * (1 - 1e-5)
    np.testing.assert_array_equal(out[:, inside], g[:, inside])
    outside = before > bound * (1 + 1e-5)
    np.testing.assert_allclose(after[outside], bound[outside], rtol=1e-5)


def test_adaptive_grad_clip_needs_params_and_valid_arguments():
    tx = adaptive_grad_clip(0.1)
    with pytest.raises(ValueError, match="adaptive_grad_clip needs the current params"):
        tx.update({"w": jnp.ones(3)}, tx.init(None))
    with pytest.raises(
        ValueError, match="adaptive_grad_clip: clipping must be >= 0, got clipping=-1"
    ):
        adaptive_grad_clip(-1)
    with pytest.raises(ValueError, match="adaptive_grad_clip: eps must be finite and >= 0"):
        adaptive_grad_clip(0.1, eps=-1.0)
    with pytest.raises(ValueError, match="clip: max_delta must be >= 0, got max_delta=-1"):
        clip(-1)


@pytest.mark.parametrize(
    "tx",
    [clip(0.5), clip_by_global_norm(1.0), adaptive_grad_clip(0.05)],
    ids=["clip", "clip_by_global_norm", "adaptive_grad_clip"],
)
def test_building_block_basics(tx):
    check_basics(tx)


def test_clip_in_a_chain_clips_before_the_learning_rate():
    tx = optix.chain(clip(0.5), optix.sgd(0.1))
    params = {"x": jnp.zeros(2)}
    updates, _ = tx.update({"x": jnp.asarray([3.0, -0.2])}, tx.init(params), params)
    np.testing.assert_allclose(updates["x"], [-0.05, 0.02], rtol=1e-6)
