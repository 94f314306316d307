"""Lookahead against Optax, the authors' PyTorch wrapper (in NumPy) and pytorch_optimizer.

Optax's form (``lookahead``, the caller holds ``LookaheadParams``) is compared on both
the fast and the slow trajectory; the pullback-momentum options, which Optax lacks, on
the form that keeps the slow weights in the state (``lookahead_in_state``), whose
params are the fast weights as in the PyTorch wrappers.
"""

import inspect

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from pytorch_optimizer import Lookahead

import optix
import optix.torch
from optix.transforms.lookahead import (
    LookaheadParams,
    LookaheadPullbackState,
    LookaheadState,
    SlowParamsState,
    lookahead,
    lookahead_in_state,
)
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    lr_schedule,
    run_jax,
    torch_reference,
)
from tests.references.lookahead import run_authors_lookahead

# Largest float32 difference measured over every case below (1.32e-5), rounded up. It comes
# from entries near the 1e-3 floor right after a sync: the additive sync update
# u - (1 - a) * (f + u - s) cancels, as in Optax.
F32_RTOL = 1.5e-5


def run_lookahead(tx, dtype, params_cls=LookaheadParams, apply_updates=optix.apply_updates):
    """Fast and slow trajectories of ``tx`` over the harness gradients."""
    start = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    params = params_cls.init_synced(start)
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    fast, slow = [], []
    for g in gradient_sequence():
        params, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        fast.append(jax.tree.map(np.asarray, params.fast))
        slow.append(jax.tree.map(np.asarray, params.slow))
    return fast, slow


OPTAX_CASES = {
    "sgd_k5": (lambda opt, lr: opt.sgd(lr, momentum=0.9), 5, 0.5, False),
    "sgd_k1": (lambda opt, lr: opt.sgd(lr, momentum=0.9), 1, 0.8, False),
    "adam_k3": (lambda opt, lr: opt.adam(lr), 3, 0.8, False),
    "adam_k3_reset": (lambda opt, lr: opt.adam(lr), 3, 0.3, True),
    "sgd_k4_reset": (lambda opt, lr: opt.sgd(lr, momentum=0.9, nesterov=True), 4, 0.5, True),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    ("inner", "sync_period", "slow_step_size", "reset_state"),
    OPTAX_CASES.values(),
    ids=OPTAX_CASES.keys(),
)
def test_matches_optax_lookahead(inner, sync_period, slow_step_size, reset_state, dtype, schedule):
    lr = lr_schedule if schedule else CONSTANT_LR
    with jax.numpy_dtype_promotion("standard"), jax.enable_x64(True):
        tx = optax.lookahead(inner(optax, lr), sync_period, slow_step_size, reset_state)
        expected = run_lookahead(tx, np.float64, optax.LookaheadParams, optax.apply_updates)
    tx = lookahead(inner(optix, lr), sync_period, slow_step_size, reset_state)
    with jax.enable_x64(dtype == np.float64):
        actual = run_lookahead(tx, dtype)
    rtol = 1e-10 if dtype == np.float64 else F32_RTOL
    for a, e in zip(actual, expected, strict=True):
        assert_trajectories_close(a, e, rtol)


def test_state_layout_and_signature_match_optax():
    params = LookaheadParams.init_synced({"w": jnp.ones(3)})
    ours = lookahead(optix.sgd(0.1, momentum=0.9), 3, 0.5).init(params)
    theirs = optax.lookahead(optax.sgd(0.1, momentum=0.9), 3, 0.5).init(params)
    assert type(ours).__name__ == type(theirs).__name__
    assert LookaheadState._fields == optax.LookaheadState._fields
    assert LookaheadParams._fields == optax.LookaheadParams._fields
    assert ours.steps_since_sync.dtype == theirs.steps_since_sync.dtype
    ours_p = list(inspect.signature(lookahead).parameters.values())
    theirs_p = list(inspect.signature(optax.lookahead).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours_p[: len(theirs_p)]] == [
        (p.name, p.kind, p.default) for p in theirs_p
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in ours_p[len(theirs_p) :])


AUTHORS_CASES = {
    "none_defaults": ({}, {}),
    "none_k3": ({"la_steps": 3, "la_alpha": 0.6}, {}),
    "reset": ({"la_steps": 3, "la_alpha": 0.6, "pullback_momentum": "reset"}, {}),
    "reset_dampening": (
        {"la_steps": 4, "la_alpha": 0.5, "pullback_momentum": "reset", "dampening": 0.3},
        {"dampening": 0.3},
    ),
    "pullback": ({"la_steps": 3, "la_alpha": 0.6, "pullback_momentum": "pullback"}, {}),
    "pullback_nesterov_k2": (
        {"la_steps": 2, "la_alpha": 0.5, "pullback_momentum": "pullback", "nesterov": True},
        {"nesterov": True},
    ),
}


def authors_lookahead(lr, la_steps=5, la_alpha=0.8, pullback_momentum="none", **sgd_kwargs):
    inner = optix.torch.sgd(lr, momentum=0.9, **sgd_kwargs)
    return lookahead_in_state(inner, la_steps, la_alpha, pullback_momentum=pullback_momentum)


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "sgd_kwargs"), AUTHORS_CASES.values(), ids=AUTHORS_CASES)
def test_matches_the_authors_lookahead(kwargs, sgd_kwargs, dtype, schedule):
    la_kwargs = {k: v for k, v in kwargs.items() if k.startswith(("la_", "pullback"))}
    compare(
        lambda lr: authors_lookahead(lr, **la_kwargs, **sgd_kwargs),
        lambda dt, sched: run_authors_lookahead(dt, sched, **kwargs),
        dtype,
        schedule,
        F32_RTOL,
    )


@DTYPES
@pytest.mark.parametrize("mode", ["none", "reset", "pullback"])
def test_optax_form_with_pullback_matches_the_authors_fast_and_slow_weights(mode, dtype):
    tx = lookahead(optix.torch.sgd(CONSTANT_LR, momentum=0.9), 3, 0.6, pullback_momentum=mode)
    with jax.enable_x64(dtype == np.float64):
        fast, slow = run_lookahead(tx, dtype)
    options = {"la_steps": 3, "la_alpha": 0.6, "pullback_momentum": mode}
    rtol = 1e-10 if dtype == np.float64 else F32_RTOL
    assert_trajectories_close(fast, run_authors_lookahead(np.float64, False, **options), rtol)
    expected_slow = run_authors_lookahead(np.float64, False, slow=True, **options)
    assert_trajectories_close(slow, expected_slow, rtol)


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("mode", ["none", "reset", "pullback"])
def test_matches_pytorch_optimizer_lookahead(mode, dtype, schedule):
    compare(
        lambda lr: authors_lookahead(lr, 3, 0.6, mode, dampening=0.2),
        torch_reference(
            lambda params, lr: Lookahead(
                torch.optim.SGD(params, lr=lr, momentum=0.9, dampening=0.2),
                k=3,
                alpha=0.6,
                pullback_momentum=mode,
            )
        ),
        dtype,
        schedule,
        F32_RTOL,
    )


def test_pullback_modes_are_different_algorithms(x64):
    finals = [
        run_jax(authors_lookahead(CONSTANT_LR, 3, 0.6, mode), np.float64)[-1]["w"]
        for mode in ("none", "reset", "pullback")
    ]
    assert np.max(np.abs(finals[0] - finals[1])) > 1e-3
    assert np.max(np.abs(finals[0] - finals[2])) > 1e-3
    assert np.max(np.abs(finals[1] - finals[2])) > 1e-3


def test_slow_step_size_one_is_the_fast_optimizer(x64):
    # Equal up to XLA fusing the two graphs differently.
    inner = optix.adam(CONSTANT_LR)
    plain = run_jax(inner, np.float64)
    wrapped = run_jax(lookahead_in_state(inner, 3, 1.0), np.float64)
    assert_trajectories_close(wrapped, plain, 1e-14)


def test_slow_weights_move_only_at_syncs_where_fast_lands_on_them(x64):
    tx = lookahead(optix.adam(CONSTANT_LR), 4, 0.5)
    fast, slow = run_lookahead(tx, np.float64)
    previous = initial_params()
    for t, (f, s) in enumerate(zip(fast, slow, strict=True)):
        for k in s:
            if (t + 1) % 4:
                np.testing.assert_array_equal(s[k], previous[k])
            else:
                np.testing.assert_allclose(f[k], s[k], rtol=1e-14, atol=1e-14)
                assert np.max(np.abs(s[k] - previous[k])) > 1e-3
        previous = s


def test_steps_since_sync_counts_modulo_the_period():
    tx = lookahead(optix.sgd(0.1), 3, 0.5)
    params = LookaheadParams.init_synced({"w": jnp.ones(2)})
    state = tx.init(params)
    seen = []
    for _ in range(7):
        updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        params = optix.apply_updates(params, updates)
        seen.append(int(state.steps_since_sync))
    assert seen == [1, 2, 0, 1, 2, 0, 1]


def sync_steps(tx, params, steps=3):
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    for t in range(steps):
        grads = jax.tree.map(lambda x, t=t: jnp.full_like(x, 0.1 * (t + 1)), params)
        updates, state = step(params, state, grads)
        params = optix.apply_updates(params, updates)
    return params, state


def test_pullback_keeps_the_synced_momentum_in_the_state():
    tx = lookahead_in_state(optix.sgd(0.1, momentum=0.9), 3, 0.6, pullback_momentum="pullback")
    _, state = sync_steps(tx, {"w": jnp.ones(3)})
    inner = state.inner_state
    assert isinstance(state, SlowParamsState) and isinstance(inner, LookaheadPullbackState)
    trace = inner.fast_state[0].trace["w"]
    # trace before the sync: 0.1 * (3 + 2 * 0.9 + 0.81), pulled toward zero by 0.6.
    np.testing.assert_allclose(trace, 0.6 * 0.1 * (3 + 1.8 + 0.81), rtol=1e-6)
    np.testing.assert_array_equal(inner.slow_momentum[0].trace["w"], trace)
    assert inner.slow_momentum[1] == optix.EmptyState()  # sgd's constant learning rate


def test_pullback_reaches_the_fields_it_is_told_to():
    params = {"w": jnp.ones(3)}
    mus = {}
    for mode, fields in (("none", ("mu",)), ("pullback", "mu")):
        tx = lookahead_in_state(
            optix.adam(0.1), 3, 0.5, pullback_momentum=mode, momentum_fields=fields
        )
        _, state = sync_steps(tx, params)
        mus[mode] = state.inner_state.fast_state[0].mu["w"]
    np.testing.assert_allclose(mus["pullback"], 0.5 * mus["none"], rtol=1e-6)


@pytest.mark.parametrize("mode", ["none", "reset", "pullback"])
def test_checkpoint_round_trip_and_stable_structure(mode):
    tx = lookahead_in_state(optix.sgd(0.1, momentum=0.9), 2, 0.5, pullback_momentum=mode)
    params = {"w": jnp.ones((2, 3)), "frozen": None, "b": jnp.zeros(3)}
    grads = {"w": jnp.full((2, 3), 0.3), "frozen": None, "b": jnp.ones(3)}
    state0 = tx.init(params)
    new_params, state = sync_steps(tx, params)
    assert jax.tree.structure(state) == jax.tree.structure(state0)
    assert new_params["frozen"] is None
    restored = flax.serialization.from_bytes(state0, flax.serialization.to_bytes(state))
    expected, _ = tx.update(grads, state, new_params)
    actual, _ = tx.update(grads, restored, new_params)
    jax.tree.map(np.testing.assert_array_equal, actual, expected)


@pytest.mark.parametrize("form", ["optax", "in_state"])
def test_jit_compiles_once_and_bf16_params_keep_their_dtype(form):
    params = {"w": jnp.linspace(-1.0, 1.0, 6, dtype=jnp.bfloat16).reshape(2, 3)}
    if form == "optax":
        tx = lookahead(optix.adam(0.1), 2, 0.5)
        params = LookaheadParams.init_synced(params)
    else:
        tx = lookahead_in_state(
            optix.adam(0.1), 2, 0.5, pullback_momentum="pullback", momentum_fields=("mu",)
        )
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return optix.apply_updates(params, updates), state

    state0 = tx.init(params)
    state, new = state0, params
    grads = {"w": jnp.full((2, 3), 0.5, jnp.bfloat16)}
    for _ in range(5):
        new, state = step(new, state, grads)
    assert len(traces) == 1
    assert [x.dtype for x in jax.tree.leaves(new)] == [x.dtype for x in jax.tree.leaves(params)]
    assert [x.dtype for x in jax.tree.leaves(state)] == [x.dtype for x in jax.tree.leaves(state0)]
    assert not np.array_equal(jax.tree.leaves(new)[0], jax.tree.leaves(params)[0])


def test_extra_args_reach_the_fast_optimizer():
    def scale_by_extra():
        def update(updates, state, params=None, *, factor=1.0, **extra_args):
            return jax.tree.map(lambda u: factor * u, updates), state

        return optix.GradientTransformation(lambda params: optix.EmptyState(), update)

    tx = lookahead(scale_by_extra(), 2, 0.5)
    params = LookaheadParams.init_synced({"w": jnp.ones(2)})
    updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params, factor=3.0, other=1)
    np.testing.assert_array_equal(updates.fast["w"], 3.0)


def test_optax_lookahead_params_are_accepted():
    tx = lookahead(optix.sgd(0.1), 1, 0.5)
    params = optax.LookaheadParams.init_synced({"w": jnp.ones(2)})
    updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
    assert isinstance(updates, optax.LookaheadParams)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new.slow["w"], 0.95)
    np.testing.assert_allclose(new.fast["w"], 0.95)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: lookahead(optix.sgd(0.1), 0, 0.5),
            ValueError,
            "lookahead: sync_period must be >= 1, got sync_period=0",
        ),
        (
            lambda: lookahead(optix.sgd(0.1), 2.5, 0.5),
            TypeError,
            "lookahead: sync_period must be an int, got sync_period=2.5",
        ),
        (
            lambda: lookahead_in_state(optix.sgd(0.1), 2, 1.5),
            ValueError,
            "lookahead_in_state: slow_step_size must be in [0, 1], got slow_step_size=1.5",
        ),
        (
            lambda: lookahead(optix.sgd(0.1), 2, 0.5, pullback_momentum="pull"),
            ValueError,
            "lookahead: pullback_momentum must be one of ('none', 'reset', 'pullback'), "
            "got pullback_momentum='pull'",
        ),
        (
            lambda: lookahead(optix.sgd(0.1), 2, 0.5, True, pullback_momentum="reset"),
            ValueError,
            "lookahead: pullback_momentum must be 'none' when reset_state=True",
        ),
        (
            lambda: lookahead(optix.adam(0.1), 2, 0.5, pullback_momentum="reset").init(
                {"w": jnp.ones(2)}
            ),
            ValueError,
            "momentum_fields=('mu',) for Adam",
        ),
        (
            lambda: lookahead(optix.sgd(0.1), 2, 0.5).update(
                {"w": jnp.ones(2)}, LookaheadState(optix.sgd(0.1).init({}), 0), {"w": 1.0}
            ),
            ValueError,
            "lookahead needs params=LookaheadParams(fast, slow)",
        ),
        (
            lambda: lookahead_in_state(optix.sgd(0.1), 2, 0.5).update({"w": jnp.ones(2)}, None),
            ValueError,
            "lookahead_in_state needs the current params",
        ),
    ],
)
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
