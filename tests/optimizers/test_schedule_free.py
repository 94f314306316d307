"""Schedule-Free against the official schedulefree package and optax.contrib.

The official optimizers keep y in the params in train mode and x in eval mode; each
step's x is read by switching to eval mode and back on a copy-restored param, so that
the switch's rounding does not enter the trajectory. The Closure forms keep x in the
params and see y only inside the closure.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import schedulefree
import torch

import optix
from optix.optimizers.schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_eval_params,
    schedule_free_train_params,
)
from optix.optimizers.schedule_free_aliases import schedule_free_adamw, schedule_free_sgd
from tests.optax_layout import assert_same_layout
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SHAPES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    learning_rates,
    lr_schedule,
    optax_reference,
)
from tests.registry.schedule_free import F32_RTOL

F32 = max(F32_RTOL.values())
TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def run_optix(tx, dtype):
    """(y after each step, x after each step, y before each step) of ``tx``."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        params = optix.apply_updates(params, updates)
        return params, state, schedule_free_eval_params(state, params)

    ys, xs, before = [], [], []
    for g in gradient_sequence():
        before.append(jax.tree.map(np.asarray, params))
        params, state, x = step(params, state, jax.tree.map(lambda v: jnp.asarray(v, dtype), g))
        ys.append(jax.tree.map(np.asarray, params))
        xs.append(jax.tree.map(np.asarray, x))
    return ys, xs, before


def run_official(make, dtype, lrs=None, closure=False):
    """(y after each step, x after each step), or for a Closure form (y at each
    gradient, x after each step), of the official optimizer ``make(params)``."""
    torch_dtype = TORCH[np.dtype(dtype).type]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)  # the closure forms keep scalars in it
    try:
        names = list(SHAPES)
        tensors = {k: torch.tensor(v, dtype=torch_dtype) for k, v in initial_params().items()}
        opt = make([tensors[k] for k in names])
        snapshot = lambda: {k: tensors[k].numpy().copy() for k in names}
        ys, xs = [], []
        if not closure:
            opt.train()
        for t, g in enumerate(gradient_sequence()):
            if lrs is not None:
                for group in opt.param_groups:
                    group["lr"] = lrs[t]

            def set_grads(g=g):
                for k in names:
                    tensors[k].grad = torch.tensor(g[k], dtype=torch_dtype)
                if closure:
                    ys.append(snapshot())
                return 0.0

            if closure:
                opt.step(set_grads)
                xs.append(snapshot())
                continue
            set_grads()
            opt.step()
            ys.append(snapshot())
            opt.eval()
            xs.append(snapshot())
            opt.train()
            with torch.no_grad():
                for k in names:
                    tensors[k].copy_(torch.tensor(ys[-1][k]))
        return ys, xs
    finally:
        torch.set_default_dtype(previous)


def check_against_official(make_optix, make_official, dtype, rtol, lrs=None, closure=False):
    """y and x of optix (``dtype``) follow the official float64 run (and, in float32,
    its float32 run) to ``rtol``."""
    with jax.enable_x64(dtype == np.float64):
        ys, xs, before = run_optix(make_optix(), dtype)
    for reference_dtype in {np.float64, dtype}:
        official_y, official_x = run_official(make_official, reference_dtype, lrs, closure)
        assert_trajectories_close(before if closure else ys, official_y, rtol)
        assert_trajectories_close(xs, official_x, rtol)


def tolerance(dtype, make):
    return 1e-10 if dtype == np.float64 else F32_RTOL[make.__name__]


# (optix kwargs, official kwargs): defaults; warmup with weight decay; r, powers and betas.
ADAMW_CASES = {
    "default": ({}, {}),
    "warmup_wd": (
        {"warmup_steps": 5, "weight_decay": 0.1, "warmup_convention": "official"},
        {"warmup_steps": 5, "weight_decay": 0.1},
    ),
    "r_power_betas": (
        {"r": 1.0, "weight_lr_power": 1.0, "b1": 0.8, "b2": 0.9, "eps": 1e-6},
        {"r": 1.0, "weight_lr_power": 1.0, "betas": (0.8, 0.9), "eps": 1e-6},
    ),
}
SGD_CASES = {
    "default": ({}, {}),
    "warmup_wd": (
        {"warmup_steps": 5, "weight_decay": 0.1, "warmup_convention": "official"},
        {"warmup_steps": 5, "weight_decay": 0.1},
    ),
    "r_power_b1": (
        {"r": 0.5, "weight_lr_power": 0.0, "b1": 0.7},
        {"r": 0.5, "weight_lr_power": 0.0, "momentum": 0.7},
    ),
}
OFFICIAL = [
    pytest.param(schedule_free_adamw, schedulefree.AdamWScheduleFree, *case, id=f"adamw-{name}")
    for name, case in ADAMW_CASES.items()
] + [
    pytest.param(schedule_free_sgd, schedulefree.SGDScheduleFree, *case, id=f"sgd-{name}")
    for name, case in SGD_CASES.items()
]


@DTYPES
@pytest.mark.parametrize(("make", "official", "kwargs", "official_kwargs"), OFFICIAL)
def test_trajectory_matches_official(make, official, kwargs, official_kwargs, dtype):
    check_against_official(
        lambda: make(CONSTANT_LR, **kwargs),
        lambda ps: official(ps, lr=CONSTANT_LR, foreach=False, **official_kwargs),
        dtype,
        tolerance(dtype, make),
    )


@pytest.mark.parametrize(
    ("make", "official"),
    [
        (schedule_free_adamw, schedulefree.AdamWScheduleFree),
        (schedule_free_sgd, schedulefree.SGDScheduleFree),
    ],
    ids=["adamw", "sgd"],
)
def test_learning_rate_every_step_matches_official_foreach(make, official):
    """A schedule under warmup_convention="official" is the official group["lr"] set
    before each step (its foreach path)."""
    check_against_official(
        lambda: make(lr_schedule, weight_decay=0.1, warmup_convention="official"),
        lambda ps: official(ps, lr=0.0, weight_decay=0.1, foreach=True),
        np.float64,
        1e-10,
        lrs=learning_rates(),
    )


@DTYPES
@pytest.mark.parametrize(
    ("make", "official", "kwargs", "closure"),
    [
        (schedule_free_adamw, schedulefree.AdamWScheduleFreeReference, {}, False),
        (schedule_free_adamw, schedulefree.AdamWScheduleFreeReference, {"decay_at_z": True}, False),
        (schedule_free_sgd, schedulefree.SGDScheduleFreeReference, {}, False),
        (schedule_free_adamw, schedulefree.AdamWScheduleFreeClosure, {}, True),
        (schedule_free_sgd, schedulefree.SGDScheduleFreeClosure, {}, True),
    ],
    ids=[
        "adamw_reference",
        "adamw_reference_decay_at_z",
        "sgd_reference",
        "adamw_closure",
        "sgd_closure",
    ],
)
def test_trajectory_matches_official_reference_and_closure_forms(
    make, official, kwargs, closure, dtype
):
    official_kwargs = {"decay_at_z": True} if kwargs else {}
    check_against_official(
        lambda: make(CONSTANT_LR, 3, weight_decay=0.2, warmup_convention="official", **kwargs),
        lambda ps: official(
            ps, lr=CONSTANT_LR, warmup_steps=3, weight_decay=0.2, **official_kwargs
        ),
        dtype,
        tolerance(dtype, make),
        closure=closure,
    )


@DTYPES
def test_wrapper_with_base_params_z_matches_official_wrapper(dtype):
    """The official wrapper steps its base optimizer on z, whose weight decay acts at z.
    (Its fast form, ScheduleFreeWrapper, cannot hold 0-d tensors: its reference form.)"""
    base = lambda: optix.chain(optix.add_decayed_weights(0.1), optix.sgd(CONSTANT_LR))
    check_against_official(
        lambda: schedule_free(base(), CONSTANT_LR, b1=0.8, base_params="z", r=1.0),
        lambda ps: schedulefree.ScheduleFreeWrapperReference(
            torch.optim.SGD(ps, lr=CONSTANT_LR, weight_decay=0.1), momentum=0.8, r=1.0
        ),
        dtype,
        tolerance(dtype, schedule_free_sgd),
    )


# Optax rounds its warmup schedule to float32 even under x64 (lr * count / W): 5e-7.
OPTAX_WARMUP_RTOL = 2e-6
OPTAX_CASES = [
    pytest.param(name, kwargs, f64_rtol, id=f"{name}-{case}")
    for name in ("schedule_free_adamw", "schedule_free_sgd")
    for case, kwargs, f64_rtol in [
        ("b1_power_wd", {"b1": 0.8, "weight_lr_power": 1.0, "weight_decay": 0.1}, 1e-10),
        ("warmup", {"warmup_steps": 5, "weight_decay": 0.1}, OPTAX_WARMUP_RTOL),
    ]
]
ALIASES = {"schedule_free_adamw": schedule_free_adamw, "schedule_free_sgd": schedule_free_sgd}


@DTYPES
@pytest.mark.parametrize(("name", "kwargs", "f64_rtol"), OPTAX_CASES)
def test_trajectory_matches_optax(name, kwargs, f64_rtol, dtype):
    compare(
        lambda lr: ALIASES[name](lr, **kwargs),
        optax_reference(lambda lr: getattr(optax.contrib, name)(lr, **kwargs)),
        dtype,
        False,
        F32_RTOL[name],
        f64_rtol=f64_rtol,
        same_dtype_reference=False,
    )


def test_warmup_matches_optax_wrapper_exactly():
    """Optax's warmup timing at 1e-10: its wrapper around a float64 warmup schedule."""
    warmup = lambda count: CONSTANT_LR * jnp.minimum(jnp.asarray(count, jnp.float64) / 5, 1.0)

    def optax_sgd(lr):
        del lr
        base = optax.chain(optax.add_decayed_weights(0.1), optax.sgd(warmup))
        return optax.contrib.schedule_free(base, warmup, b1=0.8)

    compare(
        lambda lr: schedule_free_sgd(lr, 5, b1=0.8, weight_decay=0.1),
        optax_reference(optax_sgd),
        np.float64,
        False,
        F32,
        same_dtype_reference=False,
    )


def test_wrapper_with_a_schedule_matches_optax():
    def make(m, lr):
        return (
            m.contrib.schedule_free(m.adam(lr, b1=0.0), lr, b1=0.95)
            if m is optax
            else (schedule_free(m.adam(lr, b1=0.0), lr, b1=0.95))
        )

    for dtype in (np.float64, np.float32):
        compare(
            lambda lr: make(optix, lr),
            optax_reference(lambda lr: make(optax, lr)),
            dtype,
            True,
            F32,
            same_dtype_reference=False,
        )


def test_warmup_conventions_differ_in_the_first_step():
    params, grads = jnp.asarray([1.0, -2.0]), jnp.asarray([0.5, 0.5])
    moved = {}
    for convention in ("optax", "official"):
        tx = schedule_free_sgd(0.1, 5, warmup_convention=convention)
        moved[convention] = tx.update(grads, tx.init(params), params)[0]
    # Optax's: the base optimizer's count is 0, its warmup rate 0, so z and y stay.
    np.testing.assert_array_equal(moved["optax"], [0.0, 0.0])
    np.testing.assert_allclose(moved["official"], [-0.01, -0.01], rtol=1e-6)  # -lr / 5 * g
    # No warmup with 0 steps (Optax's schedule would hold the rate at 0 forever).
    tx = schedule_free_sgd(0.1, 0)
    np.testing.assert_allclose(
        tx.update(grads, tx.init(params), params)[0], [-0.05, -0.05], rtol=1e-6
    )


def test_state_has_optax_s_layout_and_optax_reads_it():
    params = jax.tree.map(jnp.asarray, initial_params())
    for name, kwargs in [
        ("schedule_free_adamw", {"warmup_steps": 3, "weight_decay": 0.1}),
        ("schedule_free_sgd", {"weight_decay": 0.1, "state_dtype": jnp.bfloat16}),
        ("schedule_free_sgd", {}),
    ]:
        ours, theirs = ALIASES[name](**kwargs), getattr(optax.contrib, name)(**kwargs)
        state = ours.init(params)
        assert_same_layout(state, theirs.init(params))
        new_params, step = params, jax.jit(ours.update)
        for scale in (1.0, -3.0):  # after one step x = y = z
            grads = jax.tree.map(lambda p, scale=scale: scale + p, params)
            updates, state = step(grads, state, new_params)
            new_params = optix.apply_updates(new_params, updates)
        with jax.numpy_dtype_promotion("standard"):
            expected = optax.contrib.schedule_free_eval_params(state, new_params)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
            schedule_free_eval_params(state, new_params),
            expected,
        )


def test_x_is_the_running_average_of_z():
    """Constant lr and r = 0: ck = 1 / k, so x_k = mean(z_1 .. z_k)."""
    tx = schedule_free_adamw(0.1, b1=0.7)
    params = {"w": jnp.asarray([1.0, -2.0, 3.0], jnp.float32)}
    state, zs = tx.init(params), []
    for g in ([1.0, 2.0, -1.0], [0.5, -3.0, 2.0], [-1.0, 0.0, 4.0]):
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = optix.apply_updates(params, updates)
        zs.append(np.asarray(state.z["w"]))
        x = schedule_free_eval_params(state, params)["w"]
        np.testing.assert_allclose(x, np.mean(zs, axis=0), rtol=1e-5)
    assert int(state.step_count) == 4


def test_learning_rate_zero_keeps_the_eval_params():
    tx = schedule_free(optix.sgd(0.0), 0.0)
    params = jnp.asarray([1.0, 2.0])
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(2 * params, state, params)
        params = optix.apply_updates(params, updates)
    np.testing.assert_array_equal(schedule_free_eval_params(state, params), [1.0, 2.0])


def test_eval_and_train_params_are_inverse_and_keep_dtypes():
    tx = schedule_free_sgd(0.1, state_dtype=jnp.float32)
    params = {"a": jnp.ones((), jnp.bfloat16), "b": jnp.arange(3.0)}
    state = tx.init(params)
    for _ in range(2):  # after one step x = y = z
        grads = {"a": jnp.ones((), jnp.bfloat16), "b": jnp.arange(3.0) ** 2}
        updates, state = tx.update(grads, state, params)
        params = optix.apply_updates(params, updates)
    x = schedule_free_eval_params(state, params)
    assert jax.tree.map(lambda v: (v.shape, v.dtype), x) == jax.tree.map(
        lambda v: (v.shape, v.dtype), params
    )
    assert not np.allclose(x["b"], params["b"])
    np.testing.assert_allclose(schedule_free_train_params(state, x)["b"], params["b"], rtol=1e-6)


def test_eval_params_find_the_state_inside_chains_and_train_states():
    from flax.training import train_state

    tx = optix.chain(optix.clip_by_global_norm(1.0), schedule_free_adamw(0.1))
    ts = train_state.TrainState.create(apply_fn=None, params={"w": jnp.ones(2)}, tx=tx)
    ts = ts.apply_gradients(grads={"w": jnp.asarray([1.0, -1.0])})
    inner = ts.opt_state[1]
    assert isinstance(inner, ScheduleFreeState)
    np.testing.assert_array_equal(
        schedule_free_eval_params(ts.opt_state, ts.params)["w"],
        schedule_free_eval_params(inner, ts.params)["w"],
    )
    with pytest.raises(ValueError, match="holding none"):
        schedule_free_eval_params(optix.adam(0.1).init(ts.params), ts.params)
    with pytest.raises(ValueError, match="holds 2 ScheduleFreeStates"):
        schedule_free_eval_params((inner, inner), ts.params)


@pytest.mark.parametrize(
    ("params_dtype", "state_dtype"),
    [
        (jnp.float32, None),
        (jnp.float32, jnp.bfloat16),
        (jnp.bfloat16, jnp.float32),
        (jnp.complex64, None),
        (jnp.float32, jnp.complex64),
    ],
)
def test_state_dtype_sets_z_and_updates_run(params_dtype, state_dtype):
    tx = schedule_free(optix.sgd(1.0), 1.0, state_dtype=state_dtype)
    params = jnp.asarray([1.0, -1.0], params_dtype)
    state = tx.init(params)
    assert state.z.dtype == (params_dtype if state_dtype is None else state_dtype)
    assert state.b1.dtype == state.weight_sum.dtype == state.max_lr.dtype == params_dtype
    updates, new_state = jax.jit(tx.update)(jnp.ones(2, params_dtype), state, params)
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
    assert updates.dtype == params_dtype
    # First step, lr 1: ck = 1, so y moves to z = params - 1.
    np.testing.assert_allclose(np.real(params + updates), [0.0, -2.0], rtol=1e-2)


def test_params_and_state_can_be_donated():
    tx = schedule_free_sgd()
    params = jnp.asarray([-1.0, 10.0, 1.0])
    state = tx.init(params)
    assert state.z is not params
    step = jax.jit(lambda p, s: tx.update(p, s, p), donate_argnums=(0, 1))
    updates, _ = step(params, state)
    assert updates.shape == (3,)


def test_update_without_params_says_how_to_fix_it():
    tx = schedule_free_sgd()
    with pytest.raises(ValueError, match="schedule_free needs the current params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: schedule_free_adamw(b1=0.0),
            ValueError,
            "schedule_free_adamw: b1 must be in (0, 1], got b1=0.0",
        ),
        (
            lambda: schedule_free_adamw(b2=1.0),
            ValueError,
            "schedule_free_adamw: b2 must be in [0, 1)",
        ),
        (
            lambda: schedule_free_adamw(eps=-1.0),
            ValueError,
            "schedule_free_adamw: eps must be finite and >= 0",
        ),
        (
            lambda: schedule_free_sgd(weight_decay=-0.1),
            ValueError,
            "schedule_free_sgd: weight_decay must be",
        ),
        (
            lambda: schedule_free_sgd(warmup_steps=-1),
            ValueError,
            "schedule_free_sgd: warmup_steps must be >= 0",
        ),
        (
            lambda: schedule_free_sgd(warmup_steps=2.5),
            TypeError,
            "schedule_free_sgd: warmup_steps must be an int",
        ),
        (lambda: schedule_free_sgd("0.1"), TypeError, "schedule_free_sgd: learning_rate must be"),
        (
            lambda: schedule_free_sgd(warmup_convention="torch"),
            ValueError,
            "warmup_convention must be one of",
        ),
        (
            lambda: schedule_free_sgd(state_dtype=jnp.int32),
            TypeError,
            "state_dtype must be a floating",
        ),
        (
            lambda: schedule_free(optix.sgd(1.0), float("nan")),
            ValueError,
            "schedule_free: learning_rate must be finite",
        ),
        (
            lambda: schedule_free(optix.sgd(1.0), 1.0, r=float("inf")),
            ValueError,
            "schedule_free: r must be finite",
        ),
        (
            lambda: schedule_free(optix.sgd(1.0), 1.0, base_params="x"),
            ValueError,
            "base_params must be one of",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
