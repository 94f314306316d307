"""normalize_by_update_norm: Optax's numbers, and the norm it produces."""

import hypothesis.extra.numpy as hnp
import jax
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optix.transforms.normalize import normalize_by_update_norm
from tests.transforms.basics import check_basics


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale_factor, eps", [(1.0, 1e-6), (-0.5, 0.0), (3.0, 0.1)])
def test_matches_optax(dtype, scale_factor, eps):
    rng = np.random.default_rng(0)
    updates = {"w": rng.normal(size=(3, 4)).astype(dtype), "s": np.asarray(2.0, dtype)}
    with jax.enable_x64(dtype == np.float64):
        tx, reference = (
            normalize_by_update_norm(scale_factor, eps),
            optax.normalize_by_update_norm(scale_factor, eps),
        )
        ours, state = tx.update(updates, tx.init(updates))
        with jax.numpy_dtype_promotion("standard"):
            theirs, their_state = reference.update(updates, reference.init(updates))
    assert type(state).__name__ == type(their_state).__name__ == "EmptyState"
    for k in updates:
        assert ours[k].dtype == dtype
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-6 if dtype == np.float32 else 1e-15)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
        elements=st.floats(-1e3, 1e3, allow_subnormal=False, width=32),
    ),
    st.floats(-10, 10).filter(lambda s: abs(s) > 1e-3),
)
def test_output_norm_is_the_scale_factor(x, scale_factor):
    """||u|| = |scale_factor| * n / (n + eps), pointing along g times sign(scale_factor)."""
    out, _ = normalize_by_update_norm(scale_factor).update({"x": x}, ())
    out = np.asarray(out["x"], np.float64)
    n = np.linalg.norm(x.astype(np.float64))
    np.testing.assert_allclose(np.linalg.norm(out), abs(scale_factor) * n / (n + 1e-6), rtol=1e-5)
    np.testing.assert_allclose(out, x * (scale_factor / (n + 1e-6)), rtol=1e-5, atol=1e-30)


def test_zero_update_stays_zero_and_eps_is_checked():
    out, _ = normalize_by_update_norm().update({"x": np.zeros(3, np.float32)}, ())
    np.testing.assert_array_equal(out["x"], np.zeros(3))
    with pytest.raises(
        ValueError, match="normalize_by_update_norm: eps must be finite and >= 0, got eps=-1"
    ):
        normalize_by_update_norm(eps=-1)


def test_building_block_basics():
    check_basics(normalize_by_update_norm(2.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_matches_optax_contrib_normalize(dtype):
    from optix.transforms.normalize import NormalizeState, normalize

    rng = np.random.default_rng(1)
    updates = {"w": rng.normal(size=(3, 4)).astype(dtype), "s": np.asarray(-2.0, dtype)}
    with jax.enable_x64(dtype == np.float64):
        tx, reference = normalize(), optax.contrib.normalize()
        ours, state = tx.update(updates, tx.init(updates))
        with jax.numpy_dtype_promotion("standard"):
            theirs, _ = reference.update(updates, reference.init(updates))
    assert isinstance(state, NormalizeState) and type(state).__name__ == "EmptyState"
    n = np.sqrt(sum(np.sum(np.square(u.astype(np.float64))) for u in updates.values()))
    for k in updates:
        assert ours[k].dtype == dtype
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-6 if dtype == np.float32 else 1e-15)
        np.testing.assert_allclose(ours[k], updates[k] / n, rtol=1e-6)


def test_normalize_of_zero_is_nan_and_bf16_stays_bf16():
    from optix.transforms.normalize import normalize

    out, _ = normalize().update({"w": jax.numpy.zeros(3)}, ())
    assert np.all(np.isnan(out["w"]))
    out, _ = normalize().update({"w": jax.numpy.full(4, 3.0, jax.numpy.bfloat16)}, ())
    assert out["w"].dtype == jax.numpy.bfloat16
    np.testing.assert_allclose(np.asarray(out["w"], np.float32), 0.5)
