"""Layer-wise DoG (scale_by_distance_over_gradients) against
optax.scale_by_distance_over_gradients and a NumPy transliteration of the paper's rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.distance_over_gradients import (
    ScaleByDistanceOverGradientsState,
    scale_by_distance_over_gradients,
)
from tests.reference import (
    DTYPES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    optax_reference,
    run_jax,
)

# The learning rate of ``compare`` is unused: DoG has none. A large reps_rel moves the
# parameters enough in 20 steps for the comparison to mean something.
CASES = [
    {"reps_rel": 1e-2, "global_scale": -1.0},
    {"reps_rel": 1e-3, "eps": 1e-4, "global_scale": -0.5, "param_dtype": None},
]
F32_RTOL = 3e-6  # measured: 1.1e-6 from the float64 trajectory


@DTYPES
@pytest.mark.parametrize("kwargs", CASES, ids=["default", "options"])
def test_matches_optax(kwargs, dtype):
    reference = optax_reference(lambda lr: optax.scale_by_distance_over_gradients(**kwargs))

    def run_optax(dtype, schedule):
        # Optax multiplies (1,)-shaped step sizes into the updates: rank promotion.
        with jax.numpy_rank_promotion("allow"):
            return reference(dtype, schedule)

    compare(
        lambda lr: scale_by_distance_over_gradients(**kwargs), run_optax, dtype, False, F32_RTOL
    )


def _numpy_dog(reps_rel, eps, global_scale, steps=20):
    """Per leaf: d = max(d, |x - x0|), s += |g|**2, x += global_scale * d / sqrt(s + eps) * g."""
    x0 = initial_params()
    x = dict(x0)
    d = {k: reps_rel * (1 + np.linalg.norm(v.ravel())) for k, v in x0.items()}
    s = dict.fromkeys(x0, 0.0)
    trajectory = []
    for g in gradient_sequence(steps):
        for k in x:
            d[k] = max(d[k], np.linalg.norm((x[k] - x0[k]).ravel()))
            s[k] += np.sum(g[k] ** 2)
        x = {k: x[k] + global_scale * d[k] / np.sqrt(s[k] + eps) * g[k] for k in x}
        trajectory.append(x)
    return trajectory


def test_matches_the_update_rule(x64):
    kwargs = {"reps_rel": 1e-2, "eps": 1e-6, "global_scale": -1.0}
    actual = run_jax(scale_by_distance_over_gradients(**kwargs, param_dtype=None), np.float64)
    assert_trajectories_close(actual, _numpy_dog(**kwargs), 1e-10)


def test_state_matches_optax():
    params = {"w": jnp.ones((2, 3)), "s": jnp.asarray(2.0), "h": jnp.ones(4, jnp.bfloat16)}
    ours = scale_by_distance_over_gradients().init(params)
    theirs = optax.scale_by_distance_over_gradients().init(params)
    assert type(ours) is ScaleByDistanceOverGradientsState
    assert ours._fields == type(theirs)._fields
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_a_scalar_leaf_keeps_its_shape_and_dtypes_are_kept():
    tx = scale_by_distance_over_gradients()
    params = {"s": jnp.asarray(1.5), "h": jnp.ones(3, jnp.bfloat16)}
    grads = {"s": jnp.asarray(0.5), "h": jnp.full(3, 0.25, jnp.bfloat16)}
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["s"].shape == () and updates["h"].dtype == jnp.bfloat16
    # First step: max_dist / |g| * g, max_dist = reps_rel * (1 + |p0|).
    np.testing.assert_allclose(updates["s"], 1e-6 * 2.5 / np.sqrt(0.25 + 1e-8) * 0.5, rtol=1e-6)
    assert state.grad_sum_of_squares["s"].shape == (1,)


def test_needs_params_and_checks_hyperparameters():
    tx = scale_by_distance_over_gradients()
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="scale_by_distance_over_gradients"):
        tx.update(params, tx.init(params))
    with pytest.raises(ValueError, match="reps_rel must be"):
        scale_by_distance_over_gradients(reps_rel=0.0)
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        scale_by_distance_over_gradients(eps=-1.0)
