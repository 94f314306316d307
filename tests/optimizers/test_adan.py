"""Adan against the official code (pytorch_optimizer.Adan and a NumPy transliteration)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import Adan

import optix
from optix.optimizers.adan import adan, restart_adan, scale_by_adan
from tests import reference
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    max_relative_difference,
    optax_reference,
    run_jax,
    torch_reference,
)
from tests.references.adan import official_reference, run_official_adan
from tests.registry import ENTRIES

F32_RTOL = ENTRIES["adan"].f32_rtol

# (optix.adan keywords, pytorch_optimizer.Adan keywords): weight_decouple is no_prox.
PYTORCH_OPTIMIZER_CASES = {
    "default": ({}, {}),
    "betas_eps": (
        {"b1": 0.9, "b2": 0.8, "b3": 0.95, "eps": 1e-3},
        {"betas": (0.9, 0.8, 0.95), "eps": 1e-3},
    ),
    "proximal": ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    "no_prox": (
        {"weight_decay": 0.1, "no_prox": True},
        {"weight_decay": 0.1, "weight_decouple": True},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("case", list(PYTORCH_OPTIMIZER_CASES))
def test_matches_pytorch_optimizer(case, dtype, schedule):
    ours, theirs = PYTORCH_OPTIMIZER_CASES[case]
    compare(
        lambda lr: adan(lr, eps_root=0.0, **ours),
        torch_reference(lambda params, lr: Adan(params, lr=lr, **theirs)),
        dtype,
        schedule,
        F32_RTOL,
    )


# pytorch_optimizer's clipping sums the squared norms in float32 (1e-7 off in float64
# runs) and fails on 0-d parameters, so clipping and restarts are checked against the
# transliteration of the official code.
OFFICIAL_CASES = {
    "clip_proximal": ({"max_grad_norm": 3.0, "weight_decay": 0.1}, {}),
    "clip_no_prox": ({"max_grad_norm": 3.0, "weight_decay": 0.1, "no_prox": True}, {}),
    "clip_inactive": ({"max_grad_norm": 1e9, "weight_decay": 0.1}, {}),
    "restart_every_5": ({"restart_cond": lambda s: s.t == 5}, {"restart_after": (5, 10, 15)}),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("case", list(OFFICIAL_CASES))
def test_matches_official_code(case, dtype, schedule):
    ours, extra = OFFICIAL_CASES[case]
    official = {k: v for k, v in ours.items() if k != "restart_cond"}
    compare(
        lambda lr: adan(lr, eps_root=0.0, **ours),
        official_reference(**official, **extra),
        dtype,
        schedule,
        F32_RTOL,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("no_prox", [False, True], ids=["proximal", "no_prox"])
def test_clipping_matches_pytorch_optimizer_on_tensors(no_prox, dtype, schedule, monkeypatch):
    """pytorch_optimizer clips like the official code, with its norm in float32.

    Its clipping fails on 0-d parameters, so the scalar leaf is left out here; its
    float32 norm puts its float64 runs 1.4e-7 (measured) from the exact official ones.
    """
    monkeypatch.delitem(reference.SHAPES, "s")
    compare(
        lambda lr: adan(lr, eps_root=0.0, weight_decay=0.1, max_grad_norm=3.0, no_prox=no_prox),
        torch_reference(
            lambda params, lr: Adan(
                params, lr=lr, weight_decay=0.1, max_grad_norm=3.0, weight_decouple=no_prox
            )
        ),
        dtype,
        schedule,
        F32_RTOL,
        f64_rtol=2e-7,
    )


def test_clipping_changes_the_trajectory(x64):
    clipped = run_jax(adan(CONSTANT_LR, eps_root=0.0, max_grad_norm=3.0), np.float64)
    plain = run_jax(adan(CONSTANT_LR, eps_root=0.0), np.float64)
    assert max_relative_difference(clipped, plain) > 1e-3


def run_with_restart(tx, dtype, restart_after):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    trajectory = []
    for t, g in enumerate(gradient_sequence()):
        updates, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        params = optix.apply_updates(params, updates)
        trajectory.append(jax.tree.map(np.asarray, params))
        if t + 1 in restart_after:
            state = restart_adan(state)
    return trajectory


@pytest.mark.parametrize("no_prox", [False, True])
def test_restart_adan_is_official_restart_opt(no_prox, x64):
    tx = adan(CONSTANT_LR, eps_root=0.0, weight_decay=0.1, no_prox=no_prox)
    actual = run_with_restart(tx, np.float64, restart_after=(2, 9))
    expected = run_official_adan(
        np.float64, False, weight_decay=0.1, no_prox=no_prox, restart_after=(2, 9)
    )
    assert_trajectories_close(actual, expected, 1e-10)
    without = run_official_adan(np.float64, False, weight_decay=0.1, no_prox=no_prox)
    assert max_relative_difference(actual, without) > 1e-3


def test_restart_adan_resets_moments_and_count():
    tx = adan(0.1)
    params = {"w": jnp.ones(3)}
    _, state = tx.update({"w": jnp.full(3, 0.5)}, tx.init(params), params)
    restarted = restart_adan(state)
    assert int(restarted[0].t) == 0 and int(state[0].t) == 1
    for field in ("m", "v", "n"):
        assert not np.any(np.asarray(getattr(restarted[0], field)["w"]))
    np.testing.assert_array_equal(restarted[0].g["w"], state[0].g["w"])
    with pytest.raises(ValueError, match="restart_adan: the state holds no ScaleByAdanState"):
        restart_adan(optix.adam(0.1).init(params))


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"weight_decay": 0.1, "mask": {"w": True, "b": False, "s": True}}],
    ids=["default", "weight_decay_mask"],
)
def test_matches_optax_where_b2_is_one_half(kwargs, dtype, schedule):
    """Optax's 1 - b2 equals the official b2 only at b2 = 0.5; there the numbers agree."""
    compare(
        lambda lr: adan(lr, b2=0.5, no_prox=True, **kwargs),
        optax_reference(lambda lr: optax.adan(lr, b2=0.5, **kwargs)),
        dtype,
        schedule,
        F32_RTOL,
        same_dtype_reference=False,
    )


def test_optax_coefficient_differs_from_the_second_step(x64):
    ours = run_jax(adan(CONSTANT_LR, no_prox=True), np.float64)
    theirs = optax_reference(lambda lr: optax.adan(lr))(np.float64, False)
    assert max_relative_difference(ours[:1], theirs[:1]) < 1e-12
    assert max_relative_difference(ours[1:3], theirs[1:3]) > 1e-4


def test_scale_by_adan_state_matches_optax_fields_and_first_step(x64):
    params = {"w": jnp.asarray([1.0, -2.0, 3.0])}
    grads = {"w": jnp.asarray([0.3, -0.1, 2.0])}
    ours, theirs = scale_by_adan(), optax.scale_by_adan()
    u, state = ours.update(grads, ours.init(params))
    with jax.numpy_dtype_promotion("standard"):
        v, optax_state = theirs.update(grads, theirs.init(params))
    assert state._fields == optax_state._fields == ("m", "v", "n", "g", "t")
    np.testing.assert_allclose(u["w"], v["w"], rtol=1e-14)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(optax_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_state_structure_does_not_depend_on_the_decay_kind():
    params = {"w": jnp.ones(3)}
    for mask in (None, {"w": True}):
        proximal = adan(0.1, weight_decay=0.1, mask=mask).init(params)
        decoupled = adan(0.1, weight_decay=0.1, mask=mask, no_prox=True).init(params)
        assert jax.tree.structure(proximal) == jax.tree.structure(decoupled)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adan(float("nan")), "adan: learning_rate must be finite"),
        (lambda: adan(0.1, b3=1.0), "adan: b3 must be in [0, 1), got b3=1.0"),
        (lambda: adan(0.1, eps_root=-1.0), "adan: eps_root must be finite and >= 0"),
        (lambda: adan(0.1, weight_decay=-0.1), "adan: weight_decay must be finite and >= 0"),
        (
            lambda: adan(0.1, max_grad_norm=-1.0),
            "adan: max_grad_norm must be finite and >= 0, got max_grad_norm=-1.0",
        ),
        (lambda: scale_by_adan(b1=1.5), "scale_by_adan: b1 must be in [0, 1), got b1=1.5"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_restart_cond_must_be_callable():
    with pytest.raises(TypeError, match="scale_by_adan: restart_cond must be a function"):
        scale_by_adan(restart_cond=5)
