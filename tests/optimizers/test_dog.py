"""Global DoG and DoWG against optax.contrib, the official dog-optimizer package (DoG,
LDoG) and a NumPy transliteration of DoWG's Algorithm 1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from dog import DoG, LDoG

from optix.core import chain
from optix.optimizers.distance_over_gradients import scale_by_distance_over_gradients
from optix.optimizers.dog import DoGState, DoWGState, dog, dowg, scale_by_dog, scale_by_dowg
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from tests.optax_layout import layout
from tests.reference import (
    DTYPES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    optax_reference,
    run_jax,
    torch_reference,
)

# measured: 1.1e-6 (DoG, official init_eta), 3.5e-7 (DoWG), 1.1e-6 (LDoG)
F32_RTOL = {"dog": 2e-6, "dowg": 5e-7, "ldog": 2e-6}

# (optix/optax kwargs, official DoG kwargs); the learning rate comes from ``compare``.
DOG_CASES = {
    "heuristic": ({"init_step": ("heuristic", 1e-2)}, {"reps_rel": 1e-2}),
    "decay": (
        {"init_step": ("heuristic", 1e-3), "eps": 1e-4, "weight_decay": 0.1},
        {"reps_rel": 1e-3, "eps": 1e-4, "weight_decay": 0.1},
    ),
}


# The learning rate changes at every step in one case of each comparison (``compare``).
OPTAX_DOG_CASES = {
    "heuristic": ({"init_step": ("heuristic", 1e-2)}, False),
    "distance_decay": ({"init_step": ("distance", 0.05), "weight_decay": 0.1}, True),
    "first_lr": ({"init_step": ("learning_rate", 0.5), "eps": 1e-4}, False),
}


@DTYPES
@pytest.mark.parametrize("case", OPTAX_DOG_CASES)
def test_dog_matches_optax(case, dtype):
    kwargs, schedule = OPTAX_DOG_CASES[case]
    compare(
        lambda lr: dog(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.dog(lr, **kwargs)),
        dtype,
        schedule,
        F32_RTOL["dog"],
        same_dtype_reference=False,
    )


@DTYPES
@pytest.mark.parametrize("case", DOG_CASES)
def test_dog_matches_the_official_dog(case, dtype):
    ours, official = DOG_CASES[case]
    compare(
        lambda lr: dog(lr, **ours),
        torch_reference(lambda params, lr: DoG(params, lr=lr, **official)),
        dtype,
        case == "decay",
        F32_RTOL["dog"],
    )


@DTYPES
def test_dog_first_step_size_matches_the_official_init_eta(dtype):
    # The official init_eta is not multiplied by lr; Optax's first step is: lr = 1 here.
    compare(
        lambda lr: dog(1.0, ("learning_rate", 0.05)),
        torch_reference(lambda params, lr: DoG(params, init_eta=0.05)),
        dtype,
        False,
        F32_RTOL["dog"],
    )


@DTYPES
def test_layerwise_dog_matches_the_official_ldog(dtype):
    compare(
        lambda lr: chain(
            add_decayed_weights(0.1),
            scale_by_distance_over_gradients(1e-2, 1e-6, param_dtype=None),
            scale_by_learning_rate(lr),
        ),
        torch_reference(
            lambda params, lr: LDoG(params, reps_rel=1e-2, lr=lr, eps=1e-6, weight_decay=0.1)
        ),
        dtype,
        True,
        F32_RTOL["ldog"],
    )


DOWG_CASES = [{}, {"init_estim_sq_dist": 0.01, "eps": 1e-6, "weight_decay": 0.1}]


@DTYPES
@pytest.mark.parametrize("kwargs", DOWG_CASES, ids=["default", "options"])
def test_dowg_matches_optax(kwargs, dtype):
    compare(
        lambda lr: dowg(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.dowg(lr, **kwargs)),
        dtype,
        bool(kwargs),
        F32_RTOL["dowg"],
        same_dtype_reference=False,
    )


def numpy_dowg(r_eps, eps=0.0, steps=20):
    """DoWG, Algorithm 1 of arXiv:2305.16284, over the whole tree (eps = 0 is the paper):

    rbar = max(rbar, |x - x0|);  v += rbar**2 |g|**2;  x -= rbar**2 / (sqrt(v) + eps) g.
    """
    x0 = initial_params()
    x, rbar, v = dict(x0), r_eps, 0.0
    trajectory = []
    for g in gradient_sequence(steps):
        dist = np.sqrt(sum(np.sum((x[k] - x0[k]) ** 2) for k in x))
        rbar = max(rbar, dist)
        v += rbar**2 * sum(np.sum(g[k] ** 2) for k in g)
        eta = rbar**2 / (np.sqrt(v) + eps)
        x = {k: x[k] - eta * g[k] for k in x}
        trajectory.append(x)
    return trajectory


@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_dowg_matches_the_paper(x64, eps):
    actual = run_jax(dowg(1.0, init_estim_sq_dist=0.1**2, eps=eps), np.float64)
    assert_trajectories_close(actual, numpy_dowg(0.1, eps), 1e-10)


def test_states_match_optax_layouts():
    params = {"w": jnp.ones((2, 3)), "h": jnp.ones(4, jnp.bfloat16)}
    pairs = [
        (dog(), optax.contrib.dog(), DoGState),
        (
            dog(init_step=("learning_rate", 0.1)),
            optax.contrib.dog(init_step=("learning_rate", 0.1)),
            DoGState,
        ),
        (dowg(), optax.contrib.dowg(), DoWGState),
    ]
    for ours, theirs, cls in pairs:
        a = ours.init(params)
        with jax.numpy_dtype_promotion("standard"):
            b = theirs.init(params)
        assert layout(a) == layout(b)
        assert type(a[1]) is cls and a[1]._fields == type(b[1])._fields
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            assert (x.shape, x.dtype) == (y.shape, y.dtype)
            np.testing.assert_allclose(
                np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-6
            )


def test_dtypes_are_kept_and_the_first_step_is_r_eps_over_the_gradient_norm():
    params = {"w": jnp.full(3, 2.0), "h": jnp.ones(4, jnp.bfloat16)}
    grads = {"w": jnp.full(3, 0.5), "h": jnp.full(4, 0.25, jnp.bfloat16)}
    tx = scale_by_dog(("distance", 0.3))
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["h"].dtype == jnp.bfloat16 and state.max_dist.dtype == jnp.bfloat16
    r_eps = float(jnp.asarray(0.3, jnp.bfloat16))  # stored in the lowest params dtype
    np.testing.assert_allclose(updates["w"], r_eps / np.sqrt(0.75 + 0.25 + 1e-8) * 0.5, rtol=1e-6)
    assert not state.is_init_step
    tx = scale_by_dowg(0.25, eps=0.0)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    # estim_sq_dist / sqrt(estim_sq_dist * |g|**2) = sqrt(estim_sq_dist) / |g|
    np.testing.assert_allclose(updates["w"], 0.5 / 1.0 * 0.5, rtol=1e-6)


def test_checks_and_missing_params():
    with pytest.raises(ValueError, match=r"init_step\[0\] must be one of"):
        dog(init_step=("radius", 1.0))
    with pytest.raises(ValueError, match="init_step_value must be > 0"):
        dog(init_step=("distance", 0.0))
    with pytest.raises(TypeError, match="init_step must be a pair"):
        dog(init_step=1e-6)
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        dowg(eps=-1.0)
    with pytest.raises(ValueError, match="init_estim_sq_dist must be > 0"):
        dowg(init_estim_sq_dist=0.0)
    with pytest.raises(TypeError, match="dog: learning_rate must be"):
        dog("1.0")
    params = {"w": jnp.ones(2)}
    for tx in (dog(), dowg()):
        with pytest.raises(ValueError, match="params"):
            tx.update(params, tx.init(params))
