"""scale_by_trust_ratio against optax.scale_by_trust_ratio, and its edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.transforms.trust_ratio import ScaleByTrustRatioState, scale_by_trust_ratio

PARAMS = {
    "w": jnp.asarray([[3.0, 0.0], [0.0, 4.0]]),
    "zero": jnp.zeros(3),
    "tiny": jnp.full((2,), 1e-4),
    "s": jnp.asarray(-2.0),
}
UPDATES = {
    "w": jnp.asarray([[0.5, -0.5], [1.0, 0.0]]),
    "zero": jnp.asarray([1.0, 2.0, 2.0]),
    "tiny": jnp.zeros(2),
    "s": jnp.asarray(0.25),
}


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"min_norm": 1e-3}, {"trust_coefficient": 0.01, "eps": 0.1}, {"min_norm": 2.0}],
    ids=["default", "min_norm", "coefficient_eps", "large_min_norm"],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["f32", "f64"])
def test_matches_optax(kwargs, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        params = jax.tree.map(lambda x: x.astype(dtype), PARAMS)
        updates = jax.tree.map(lambda x: x.astype(dtype), UPDATES)
        ours, _ = scale_by_trust_ratio(**kwargs).update(updates, None, params)
        with jax.numpy_dtype_promotion("standard"):
            theirs, _ = optax.scale_by_trust_ratio(**kwargs).update(updates, None, params)
    rtol = 1e-6 if dtype == jnp.float32 else 1e-14
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=0), ours, theirs)


def test_ratio_values_and_fallbacks():
    ours, _ = scale_by_trust_ratio().update(UPDATES, None, PARAMS)
    # ||w|| = 5, ||g_w|| = sqrt(1.5): the update is rescaled to norm 5.
    np.testing.assert_allclose(np.linalg.norm(ours["w"]), 5.0, rtol=1e-6)
    # A zero parameter or a zero update leaves the update unchanged (ratio 1).
    np.testing.assert_array_equal(ours["zero"], UPDATES["zero"])
    np.testing.assert_array_equal(ours["tiny"], UPDATES["tiny"])
    np.testing.assert_allclose(ours["s"], 2.0, rtol=1e-6)


def test_max_param_norm_clips_the_parameter_norm():
    ours, _ = scale_by_trust_ratio(max_param_norm=2.0).update(UPDATES, None, PARAMS)
    np.testing.assert_allclose(np.linalg.norm(ours["w"]), 2.0, rtol=1e-6)  # 5 clipped to 2
    np.testing.assert_allclose(ours["s"], 2.0, rtol=1e-6)  # |p| = 2 is not above the clip


def test_low_precision_updates_keep_their_dtype():
    params = {"w": jnp.full((4,), 3.0, jnp.bfloat16)}
    updates = {"w": jnp.full((4,), 0.5, jnp.bfloat16)}
    ours, _ = scale_by_trust_ratio().update(updates, None, params)
    assert ours["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(ours["w"], np.float32), 3.0, rtol=1e-2)


def test_gradient_through_the_ratio_is_finite_at_zero():
    def first_update(p):
        return scale_by_trust_ratio().update({"w": p}, None, {"w": p})[0]["w"].sum()

    grad = jax.grad(first_update)(jnp.zeros(3))
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_state_is_empty_and_params_are_required():
    tx = scale_by_trust_ratio()
    assert tx.init(PARAMS) == ScaleByTrustRatioState() == optax.ScaleByTrustRatioState()
    with pytest.raises(ValueError, match=r"scale_by_trust_ratio needs the current params"):
        tx.update(UPDATES, tx.init(PARAMS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_norm": -1.0}, "scale_by_trust_ratio: min_norm must be finite and >= 0"),
        ({"trust_coefficient": -1.0}, "scale_by_trust_ratio: trust_coefficient must be finite"),
        ({"eps": float("inf")}, "scale_by_trust_ratio: eps must be finite and >= 0, got eps=inf"),
        ({"max_param_norm": 0.0}, "scale_by_trust_ratio: max_param_norm must be > 0"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError) as info:
        scale_by_trust_ratio(**kwargs)
    assert message in str(info.value)
