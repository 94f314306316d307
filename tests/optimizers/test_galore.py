"""GaLore against optax.contrib.galore and a NumPy transliteration of galore-torch
(tests/references/galore_reference.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.optimizers.galore import GaLoreDimensionNumbers, galore, scale_by_galore
from optix.optimizers.galore_adamw import galore_adamw
from tests.optax_layout import assert_same_layout
from tests.reference import lr_schedule, max_relative_difference
from tests.references.galore_reference import run_galore_adamw
from tests.registry.sharpness_lowrank import F32_RTOL

SHAPES = {"w": (6, 4), "v": (3, 5), "b": (4,)}
STEPS = 8


def start():
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=s) for k, s in SHAPES.items()}


def gradients(steps=STEPS):
    """Standard normal gradients: distinct singular values, well-conditioned SVDs."""
    rng = np.random.default_rng(1)
    return [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(steps)]


def run(tx, dtype, apply_updates=optix.apply_updates, params=None, grads=None):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), start() if params is None else params)
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return apply_updates(params, updates), state

    out = []
    for g in gradients() if grads is None else grads:
        params, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        out.append(jax.tree.map(np.asarray, params))
    return out


def close(actual, expected, rtol):
    difference = max_relative_difference(actual, expected)
    assert difference <= rtol, f"trajectories differ by {difference:.3g} > rtol={rtol:.3g}"
    moved = max(np.max(np.abs(actual[-1][k] - start()[k])) for k in SHAPES)
    assert moved > 1e-3


def jax_signed_svd(matrix):
    """NumPy's SVD with each singular pair's sign set to that of jnp.linalg.svd."""
    u, s, vh = np.linalg.svd(matrix, full_matrices=False)
    with jax.enable_x64(True):
        ju, _, _ = (np.asarray(x) for x in jnp.linalg.svd(jnp.asarray(matrix), full_matrices=False))
    signs = np.sign(np.sum(u * ju, axis=0))
    return u * signs, s, vh * signs[:, None]


TORCH_CASES = {
    "std": ({"rank": 2, "update_proj_gap": 200}, {}),
    "std_scale_wd": ({"rank": 2, "update_proj_gap": 200, "scale": 0.25, "weight_decay": 0.1}, {}),
    "reverse_std": ({"rank": 2, "update_proj_gap": 200, "proj_type": "reverse_std"}, {}),
    "left": ({"rank": 3, "update_proj_gap": 200, "proj_type": "left", "eps": 1e-3}, {}),
    "right_no_bias_correction": (
        {"rank": 2, "update_proj_gap": 200, "proj_type": "right", "correct_bias": False},
        {},
    ),
    "refresh_every_3": (
        {"rank": 2, "update_proj_gap": 3, "weight_decay": 0.01},
        {"svd": jax_signed_svd},
    ),
}


def _reference(kwargs, extra, dtype, lr=0.05):
    ref = {k: v for k, v in kwargs.items() if k not in ("b1", "b2")}
    return run_galore_adamw(
        {k: v.astype(dtype) for k, v in start().items()},
        [{k: v.astype(dtype) for k, v in g.items()} for g in gradients()],
        lr=lr,
        **ref,
        **extra,
    )


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_galore_adamw_matches_galore_torch_in_float64(case, x64):
    kwargs, extra = TORCH_CASES[case]
    close(
        run(galore_adamw(0.05, **kwargs), np.float64), _reference(kwargs, extra, np.float64), 1e-10
    )


def test_galore_adamw_float32_and_schedule():
    kwargs, extra = TORCH_CASES["refresh_every_3"]
    expected = _reference(kwargs, extra, np.float64)
    close(run(galore_adamw(0.05, **kwargs), np.float32), expected, F32_RTOL["galore_adamw"])
    with jax.enable_x64(True):
        lrs = [float(lr_schedule(t)) for t in range(STEPS)]
        expected = _reference(kwargs, extra, np.float64, lr=lrs)
        close(run(galore_adamw(lr_schedule, **kwargs), np.float64), expected, 1e-10)


OPTAX_CASES = {
    "default_rank2": {"rank": 2, "update_proj_gap": 200},
    "refresh_wd_scale": {"rank": 2, "update_proj_gap": 3, "weight_decay": 0.1, "scale": 0.5},
}


# Optax computes the SVD in float32 at every dtype, so its float64 runs carry float32's
# rounding of the singular vectors: measured 1.7e-6 from optix's float64 runs.
OPTAX_F64_RTOL = 5e-6


@pytest.mark.parametrize("case", list(OPTAX_CASES))
def test_galore_matches_optax_galore(case):
    """Against Optax's float64 run (its float32 runs drift up to 1.5e-4 from its float64
    ones: it forms Adam's 1 - b**t in float32)."""
    kwargs = OPTAX_CASES[case]
    ours32 = run(galore(0.05, **kwargs), np.float32)
    with jax.enable_x64(True):
        ours = run(galore(0.05, **kwargs), np.float64)
        with jax.numpy_dtype_promotion("standard"):
            theirs = run(optax.contrib.galore(0.05, **kwargs), np.float64, optax.apply_updates)
    close(ours, theirs, OPTAX_F64_RTOL)
    close(ours32, theirs, F32_RTOL["galore"])


def test_dimension_numbers_project_a_3d_leaf_as_optax_does():
    params = {"attn": np.random.default_rng(2).normal(size=(4, 2, 3)), "b": np.zeros(3)}
    rng = np.random.default_rng(3)
    grads = [{"attn": rng.normal(size=(4, 2, 3)), "b": rng.normal(size=3)} for _ in range(4)]
    spec = {"attn": GaLoreDimensionNumbers(reduction_axis=(1, 2), output_axis=0), "b": None}
    ours = run(
        galore(0.05, rank=2, weight_dimension_numbers=spec), np.float32, params=params, grads=grads
    )
    with jax.numpy_dtype_promotion("standard"):
        tx = optax.contrib.galore(
            0.05,
            rank=2,
            weight_dimension_numbers={
                "attn": optax.contrib.GaLoreDimensionNumbers((1, 2), 0),
                "b": None,
            },
        )
        theirs = run(tx, np.float32, optax.apply_updates, params=params, grads=grads)
    for a, b in zip(ours, theirs, strict=True):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=F32_RTOL["galore"], atol=1e-6)
    state = scale_by_galore(rank=2, weight_dimension_numbers=spec).init(
        jax.tree.map(jnp.asarray, params)
    )
    assert state.projector["attn"].shape == (6, 2)  # m = 2 * 3 >= n = 4: left, (m, r)
    assert state.projector["b"].shape == (0, 0)


@pytest.mark.parametrize("proj_type", ["reverse_std", "std"])
def test_state_layout(proj_type):
    params = {k: jnp.zeros(s) for k, s in SHAPES.items()}
    ours = galore(0.1, rank=2, proj_type=proj_type).init(params)
    left_w = proj_type == "reverse_std"  # w is (6, 4): m >= n
    assert ours[0].projector["w"].shape == ((6, 2) if left_w else (4, 2))
    assert ours[0].base_optimizer_state.mu["w"].shape == ((2, 4) if left_w else (6, 2))
    if proj_type == "reverse_std":
        with jax.numpy_dtype_promotion("standard"):
            theirs = optax.contrib.galore(0.1, rank=2).init(params)
        assert_same_layout(ours, theirs)


def test_projected_update_does_not_depend_on_singular_vector_signs(x64):
    """From fresh moments, flipping a column of P leaves the update unchanged (the
    same number of steps later the projector is reused, not recomputed)."""
    g = jnp.asarray(np.random.default_rng(4).normal(size=(6, 4)))
    tx = scale_by_galore(rank=2, update_proj_gap=100)
    fresh = tx.init(g)
    _, after = tx.update(g, fresh)
    p = after.projector
    u1, _ = tx.update(g, fresh._replace(count=jnp.asarray(1, jnp.int32), projector=p))
    flipped = p * jnp.asarray([[1.0, -1.0]])
    u2, _ = tx.update(g, fresh._replace(count=jnp.asarray(1, jnp.int32), projector=flipped))
    np.testing.assert_allclose(u1, u2, rtol=1e-12)
    assert float(jnp.max(jnp.abs(u1))) > 0.1
    assert not np.allclose(flipped, p)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: galore(0.1, rank=0), ValueError, "scale_by_galore: rank must be >= 1"),
        (lambda: galore(0.1, rank=2.5), TypeError, "scale_by_galore: rank must be an int"),
        (lambda: galore(0.1, update_proj_gap=0), ValueError, "update_proj_gap must be >= 1"),
        (lambda: galore(0.1, proj_type="full"), ValueError, "proj_type must be one of"),
        (lambda: galore("0.1"), TypeError, "galore: learning_rate must be"),
        (lambda: galore_adamw(0.1, eps=-1.0), ValueError, "galore_adamw: eps must be"),
        (lambda: galore_adamw(0.1, weight_decay=-1.0), ValueError, "weight_decay must be"),
        (
            lambda: scale_by_galore(weight_dimension_numbers=GaLoreDimensionNumbers(0, 0)).init(
                {"w": jnp.zeros((2, 3))}
            ),
            ValueError,
            "must split the 2 axes",
        ),
    ],
)
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error, match=message):
        call()
