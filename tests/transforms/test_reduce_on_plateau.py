"""reduce_on_plateau (Optax's contrib transform) and optix.torch.reduce_lr_on_plateau.

torch.optim.lr_scheduler.ReduceLROnPlateau is driven with a recorded loss sequence
(plateaus, improvements smaller than the threshold, zero, negative values) and its
decisions are compared step by step: the lr, best, num_bad_epochs and
cooldown_counter after every ``scheduler.step(value)``. optax.contrib.reduce_on_plateau
is compared state field by state field.
"""

from __future__ import annotations

import inspect
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.torch.lr_plateau import reduce_lr_on_plateau
from optix.transforms.reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau
from tests.reference import gradient_sequence, initial_params, max_relative_difference

RECORDED = [
    *(1.0, 0.995, 0.999, 0.992),  # improvements smaller than a 1% threshold: a plateau
    *(0.98, 0.98, 0.981, 0.98),  # a real improvement, then flat
    *(0.5, 0.49, 0.489, 0.4889),  # improvements shrinking below the threshold
    *(0.7, 0.7, 0.7, 0.7, 0.7),  # worse, flat
    *(0.1, 0.0, 0.0, 0.0),  # down to zero, flat at zero
    *(-0.2, -0.2, -0.2, -0.2, -0.2),  # a flat negative plateau
    *(-0.199, -0.1985, -0.3, -0.302, -0.301),  # slightly worse negatives, then better
    *(-0.5, -0.499, -0.4995, -0.5, -0.5, -0.5),
    *(-1.0, -0.9, -0.8, -0.7, -0.6, -0.5, -0.5, -0.5),
]
BASE_LR = 0.5

TORCH_CONFIGS = [
    dict(mode="min", threshold=1e-2, patience=2),
    dict(mode="min", threshold=1e-2, threshold_mode="abs", patience=1, cooldown=2),
    dict(mode="max", threshold=1e-2, patience=2, cooldown=1),
    dict(mode="max", threshold=0.05, threshold_mode="abs", patience=0, factor=0.5, min_lr=0.01),
    dict(mode="min", patience=1, factor=0.5, eps=0.1),
    dict(),
]


def torch_decisions(values, **kwargs):
    """(lr, best, num_bad_epochs, cooldown_counter) after each scheduler.step(value)."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=BASE_LR)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    decisions = []
    for value in values:
        opt.step()
        scheduler.step(value)
        decisions.append(
            (
                opt.param_groups[0]["lr"],
                scheduler.best,
                scheduler.num_bad_epochs,
                scheduler.cooldown_counter,
            )
        )
    return decisions


def run_transform(tx, values, dtype=jnp.float64):
    """States and the factor applied to a ones update at each call (jitted once, value traced)."""
    traces = []

    @jax.jit
    def step(state, value):
        traces.append(None)
        updates, state = tx.update(
            {"w": jnp.ones(2, dtype), "skip": None}, state, value=value, step_name="x"
        )
        return updates["w"][0], state

    params = {"w": jnp.zeros(2, dtype), "skip": None}
    state = tx.init(params)
    applied, states = [], []
    for value in values:
        factor, state = step(state, jnp.asarray(value, dtype))
        applied.append(float(factor))
        states.append(jax.tree.map(np.asarray, state))
    assert len(traces) == 1, "the update recompiled for a new value"
    return np.asarray(applied), states


def run64(tx, values):
    with jax.enable_x64(True):
        return run_transform(tx, values)


@pytest.mark.parametrize(
    "config", TORCH_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "defaults"
)
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_decisions_match_torch_step_by_step(config, dtype):
    values = RECORDED * (3 if not config else 1)
    expected = torch_decisions(values, **config)
    tx = reduce_lr_on_plateau(**config, lr=BASE_LR)
    applied, states = (
        run64(tx, values) if dtype == "f64" else run_transform(tx, values, jnp.float32)
    )
    rtol = 1e-12 if dtype == "f64" else 1e-6
    lrs = [lr for lr, *_ in expected]
    assert len(set(lrs)) >= 3, "the sequence must trigger reductions"
    for step, ((lr, best, bad, cooling), state) in enumerate(zip(expected, states, strict=True)):
        assert BASE_LR * state.scale == pytest.approx(lr, rel=rtol), step
        assert state.best_value == pytest.approx(best, rel=rtol), step
        assert (int(state.plateau_count), int(state.cooldown_count)) == (bad, cooling), step
    # torch's order: optimizer.step() with the current lr, then scheduler.step(value).
    np.testing.assert_allclose(BASE_LR * applied, [BASE_LR, *lrs[:-1]], rtol=rtol)


def test_a_trajectory_with_sgd_matches_torch():
    values = RECORDED[:20]
    torch.set_default_dtype(torch.float64)
    try:
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in initial_params().items()}
        opt = torch.optim.SGD(list(tensors.values()), lr=0.05, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, threshold=1e-2, patience=1)
        expected = []
        for g, value in zip(gradient_sequence(20), values, strict=True):
            for k, t in tensors.items():
                t.grad = torch.tensor(g[k])
            opt.step()
            scheduler.step(value)
            expected.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
    finally:
        torch.set_default_dtype(torch.float32)
    tx = optix.chain(
        optix.torch.sgd(0.05, momentum=0.9),
        reduce_lr_on_plateau(threshold=1e-2, patience=1, lr=0.05),
    )
    with jax.enable_x64(True):
        params = jax.tree.map(jnp.asarray, initial_params())
        state = tx.init(params)

        @jax.jit
        def step(params, state, grads, value):
            updates, state = tx.update(grads, state, params, value=value)
            return optix.apply_updates(params, updates), state

        actual = []
        for g, value in zip(gradient_sequence(20), values, strict=True):
            params, state = step(params, state, jax.tree.map(jnp.asarray, g), jnp.asarray(value))
            actual.append(jax.tree.map(np.asarray, params))
        assert float(state[1].scale) < 0.01  # reductions happened along the way
    assert max_relative_difference(actual, expected) < 1e-10


# --- negative values -------------------------------------------------------------------------


def reductions(tx, values):
    _, states = run64(tx, values)
    return int(np.sum(np.diff([1.0] + [float(s.scale) for s in states]) < 0))


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_flat_negative_plateau_never_reduces_in_torchs_relative_mode(mode):
    """torch's a < best * (1 - threshold) accepts a == best when best < 0
    (pytorch/pytorch#47513): reproduced by default, fixed by sign_aware_rtol."""
    flat = [-2.0] * 12
    config = dict(mode=mode, patience=2)
    assert {lr for lr, *_ in torch_decisions(flat, **config)} == {BASE_LR}
    assert reductions(reduce_lr_on_plateau(**config), flat) == 0
    assert reductions(reduce_lr_on_plateau(**config, sign_aware_rtol=True), flat) == 3
    # Positive plateaus reduce either way, and identically.
    assert reductions(reduce_lr_on_plateau(**config), [2.0] * 12) == 3
    assert reductions(reduce_lr_on_plateau(**config, sign_aware_rtol=True), [2.0] * 12) == 3


def test_sign_aware_margin_is_the_positive_one_mirrored():
    """With sign_aware_rtol, -v behaves in "max" mode exactly as v in "min" mode."""
    positive = [abs(v) + 0.1 for v in RECORDED]
    ours_min = run64(reduce_on_plateau(patience=2, rtol=1e-2, sign_aware_rtol=True), positive)[0]
    ours_max = run64(
        reduce_on_plateau(patience=2, rtol=1e-2, mode="max", sign_aware_rtol=True),
        [-v for v in positive],
    )[0]
    np.testing.assert_array_equal(ours_min, ours_max)


def test_optax_never_reduces_on_negative_values_and_sign_aware_rtol_does():
    flat = [-2.0] * 12
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        theirs = optax.contrib.reduce_on_plateau(patience=3)
        state = theirs.init({"w": jnp.zeros(2)})
        for value in flat:
            _, state = theirs.update({"w": jnp.ones(2)}, state, value=value)
    assert float(state.scale) == 1.0
    assert reductions(reduce_on_plateau(patience=3), flat) == 0
    assert reductions(reduce_on_plateau(patience=3, sign_aware_rtol=True), flat) == 3


# --- Optax parity ------------------------------------------------------------------------------

OPTAX_CONFIGS = [
    dict(),
    dict(patience=2),
    dict(patience=1, rtol=0.0, atol=0.01, cooldown=2),
    dict(patience=2, accumulation_size=3, min_scale=0.05, factor=0.5),
    dict(patience=3, rtol=0.1, atol=0.1, cooldown=1),
]


def run_optax(config, values, x64):
    with jax.enable_x64(x64), jax.numpy_dtype_promotion("standard"):
        dtype = jnp.float64 if x64 else jnp.float32
        tx = optax.contrib.reduce_on_plateau(**config)
        state = tx.init({"w": jnp.zeros(2, dtype)})
        step = jax.jit(lambda s, v: tx.update({"w": jnp.ones(2, dtype)}, s, value=v))
        applied, states = [], []
        for value in values:
            updates, state = step(state, jnp.asarray(value, dtype))
            applied.append(float(updates["w"][0]))
            states.append(jax.tree.map(np.asarray, state))
        return np.asarray(applied), states


@pytest.mark.parametrize(
    "config", OPTAX_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "defaults"
)
@pytest.mark.parametrize("x64", [True, False], ids=["f64", "f32"])
def test_states_and_updates_equal_optax(config, x64):
    values = RECORDED * 3
    theirs_applied, theirs = run_optax(config, values, x64)
    with jax.enable_x64(x64):
        ours_applied, ours = run_transform(
            reduce_on_plateau(**config), values, jnp.float64 if x64 else jnp.float32
        )
    assert min(float(s.scale) for s in theirs) < 1.0
    np.testing.assert_array_equal(ours_applied, theirs_applied)
    for a, b in zip(ours, theirs, strict=True):
        assert type(a).__name__ == type(b).__name__ and a._fields == b._fields
        for field in a._fields:
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
            assert getattr(a, field).dtype == getattr(b, field).dtype, field


def test_signature_starts_with_optaxs_and_adds_keyword_only_options():
    ours = list(inspect.signature(reduce_on_plateau).parameters.values())
    theirs = list(inspect.signature(optax.contrib.reduce_on_plateau).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[: len(theirs)]] == [
        (p.name, p.kind, p.default) for p in theirs
    ]
    assert [p.name for p in ours[len(theirs) :]] == ["mode", "eps", "lagged", "sign_aware_rtol"]
    assert all(p.kind is p.KEYWORD_ONLY for p in ours[len(theirs) :])
    assert ReduceLROnPlateauState._fields == optax.contrib.ReduceLROnPlateauState._fields


def test_torch_constructor_has_torchs_arguments_and_defaults():
    ours = list(inspect.signature(reduce_lr_on_plateau).parameters.values())
    theirs = [
        p
        for p in inspect.signature(torch.optim.lr_scheduler.ReduceLROnPlateau).parameters.values()
        if p.name != "optimizer"
    ]
    assert [(p.name, p.default) for p in ours[: len(theirs)]] == [
        (p.name, p.default) for p in theirs
    ]
    assert [p.name for p in ours[len(theirs) :]] == ["lr", "sign_aware_rtol"]


# --- the transformation itself ----------------------------------------------------------------


def test_updates_keep_their_dtype_and_none_leaves():
    tx = reduce_on_plateau(patience=0, factor=0.5)
    params = {"a": jnp.zeros(3, jnp.bfloat16), "b": None}
    state = tx.init(params)
    assert state.scale.dtype == jnp.float32  # at least float32, never bf16
    for value in [1.0, 2.0]:
        updates, state = tx.update({"a": jnp.ones(3, jnp.bfloat16), "b": None}, state, value=value)
    assert updates["a"].dtype == jnp.bfloat16 and updates["b"] is None
    assert float(updates["a"][0]) == 0.5 and float(state.scale) == 0.5


def test_update_without_value_says_how_to_pass_it():
    tx = reduce_on_plateau()
    state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"update needs the monitored value, as update\(updates"):
        tx.update({"w": jnp.ones(2)}, state)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: reduce_on_plateau(factor=1.0),
            "reduce_on_plateau: factor must be in [0, 1), got factor=1.0",
        ),
        (lambda: reduce_on_plateau(rtol=-1.0), "reduce_on_plateau: rtol must be finite and >= 0"),
        (lambda: reduce_on_plateau(accumulation_size=0), "accumulation_size must be > 0"),
        (lambda: reduce_on_plateau(mode="up"), "mode must be one of ('min', 'max'), got mode='up'"),
        (lambda: reduce_on_plateau(eps=-1.0), "eps must be finite and >= 0, got eps=-1.0"),
        (
            lambda: reduce_lr_on_plateau(factor=1.5),
            "optix.torch.reduce_lr_on_plateau: factor must be in [0, 1)",
        ),
        (
            lambda: reduce_lr_on_plateau(threshold_mode="pct"),
            "threshold_mode must be one of ('rel', 'abs')",
        ),
        (lambda: reduce_lr_on_plateau(patience=-1), "patience must be >= 0, got patience=-1"),
        (lambda: reduce_lr_on_plateau(min_lr=-1e-3), "min_lr must be finite and >= 0"),
        (lambda: reduce_lr_on_plateau(lr=0.0), "lr must be > 0, got lr=0.0"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=1, max_size=40),
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    min_scale=st.floats(0.0, 0.5),
)
def test_scale_only_falls_to_min_scale_and_best_is_the_running_minimum(
    values, patience, cooldown, min_scale
):
    tx = reduce_on_plateau(0.5, patience, 0.0, 0.0, cooldown, 1, min_scale)
    with jax.enable_x64(True):
        state = tx.init({"w": jnp.zeros(1)})
        scales = [1.0]
        for value in values:
            _, state = tx.update({"w": jnp.ones(1)}, state, value=value)
            scales.append(float(state.scale))
            assert patience == 0 or int(state.plateau_count) < patience
    assert all(b <= a for a, b in itertools.pairwise(scales))
    assert all(s >= min_scale for s in scales)
    assert float(state.best_value) == min(values)
