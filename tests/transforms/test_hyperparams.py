"""inject_hyperparams: Optax's state layout and behaviour, bit-equality with the unwrapped
optimizer for every alias, values changed between steps under one compilation, schedules."""

import functools
import inspect
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.hyperparams import (
    InjectHyperparamsState,
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
    WrappedScheduleState,
    inject_hyperparams,
    inject_stateful_hyperparams,
)
from optix.tree.state import assign
from tests.reference import gradient_sequence, initial_params, lr_schedule
from tests.registry import ENTRIES, public_optimizers
from tests.registry.sharpness_lowrank import hutchinson_of_value_fn

# Jordan's Muon and torch.optim.Muon refuse leaves that are not matrices, as their
# references do, and this suite's params hold a vector and a scalar; their registry
# entries (tests/registry/muon.py) route those leaves to AdamW.
MATRICES_ONLY = {"muon_jordan", "torch.muon"}
ALIASES = sorted(
    n
    for n in optix.optimizers.__all__
    if n[0].islower() and not n.startswith("scale_by") and n not in MATRICES_ONLY
)
# Arguments beyond the defaults: a learning rate, and what an alias needs to run at all.
# AdaBound's base_lr defaults to the learning rate at step 0 of its schedule; injected, the
# factory sees each step's value, so a scheduled run names base_lr (lr_schedule(0) = 0.01).
EXTRA_KWARGS = {"noisy_sgd": {"key": 0}}
# SAM wraps two optimizers; Sophia's estimators read the objective (value_fn here).
EXTRA_KWARGS["sam"] = {"optimizer": optix.adam(0.05), "adv_optimizer": optix.sgd(0.05)}
EXTRA_KWARGS["mechanize"] = {"base_optimizer": optix.adam(0.05)}
EXTRA_KWARGS["sophia"] = {"hessian_diagonal_fn": hutchinson_of_value_fn()}
EXTRA_KWARGS["sophia_g"] = {"hessian_diagonal_fn": hutchinson_of_value_fn()}
SCHEDULED_KWARGS = {"adabound": {"base_lr": 0.01}, "amsbound": {"base_lr": 0.01}}
# rprop's learning_rate is its initial step size, never a schedule; optimistic_adam (Optax's
# first version) refuses schedules.
NO_LR_SCHEDULE = {"rprop", "optimistic_adam"}
# Schedule-Free reads its learning rate schedule at its own step count (1 on the first
# update) for the averaging weight; inject_hyperparams evaluates it at its count (0 first)
# and hands the value on, so a wrapped schedule weights the average differently.
NO_LR_SCHEDULE |= {"schedule_free_adamw", "schedule_free_sgd"}
# Aliases that warn when built, as Optax's do.
DEPRECATED = {"optimistic_adam"}
# A schedule evaluated by the wrapper is a different XLA program from one evaluated inside
# the optimizer; for fromage XLA rounds its scalars differently (fromage alone also differs
# between eager and jitted runs). Measured largest relative difference over the run: 2.2e-7
# (Muon: 9e-8, one float32 ulp after the Newton-Schulz iteration).
SCHEDULED_RTOL = {"muon": 5e-7, "muon_with_adamw": 5e-7, "fromage": 5e-7}
STATIC_ARGS = {"adafactor": ("min_dim_size_to_factor",), "lbfgs": ("memory_size",)}
STATIC_ARGS["galore"] = STATIC_ARGS["galore_adamw"] = ("rank", "update_proj_gap")
STATIC_ARGS["mechanize"] = ("num_betas",)  # the number of betas sizes the state
STATIC_ARGS["sam"] = ("sync_period",)
STATIC_ARGS["sam_sgd"] = ("momentum",)
STATIC_ARGS["sophia"] = ("update_interval", "print_win_rate_every_n_steps")
STATIC_ARGS["sophia_g"] = ("update_interval",)
STATIC_ARGS["kron"] = ("max_size_triangular", "min_ndim_triangular", "key")  # layout, seed
STATIC_ARGS["adam_mini"] = ("dim", "n_heads", "n_kv_heads")  # the blocks' shapes
# Shampoo and SOAP test betas, sizes and step counts with Python `if`s (layout, branches).
STATIC_ARGS["shampoo"] = ("b1", "b2", "precondition_frequency", "max_preconditioner_dim")
STATIC_ARGS["shampoo"] += ("target_order",)
STATIC_ARGS["soap"] = ("precondition_frequency", "max_precond_dim", "weight_decay")
# optix.torch constructors test `momentum` / `momentum_decay` / `lr_decay` with Python `if`s;
# sizes and iteration budgets shape arrays and loops.
TORCH_STATIC_ARGS = {
    "adagrad": ("lr_decay",),
    "sgd": ("momentum",),
    "rmsprop": ("momentum",),
    "nadam": ("momentum_decay",),
    "lbfgs": ("max_iter", "max_eval", "history_size"),
}


def _kwargs(factory, lr_name, lr):
    if lr_name in inspect.signature(factory).parameters:
        return {lr_name: lr}
    return {}


def _run(tx, dtype, steps=20, change=None, entry=None):
    """Params after each step and the final state; ``change(t, state)`` edits the state.

    With a registry ``entry`` that needs an objective (line searches, Newton), the
    gradients name the minimizer of a quadratic (``Entry.updater``)."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)
    value = jnp.asarray(0.5, jnp.float32)
    if entry is None:
        step = jax.jit(lambda p, s, g: tx.update(g, s, p, value=value))
    else:
        update = entry.updater(tx, value=value)
        step = jax.jit(lambda p, s, g: update(g, s, p))
    trajectory = []
    for t, g in enumerate(gradient_sequence(steps)):
        if change is not None:
            state = change(t, state)
        updates, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        params = optix.apply_updates(params, updates)
        trajectory.append(params)
    return trajectory, state


def _assert_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _check_wrapping_changes_no_number(
    factory, kwargs, static_args, dtype, steps=20, rtol=0.0, entry=None
):
    plain, plain_state = _run(factory(**kwargs), dtype, steps, entry=entry)
    wrapped = inject_hyperparams(factory, static_args=static_args)(**kwargs)
    injected, state = _run(wrapped, dtype, steps, entry=entry)
    if rtol:
        for a, b in zip(jax.tree.leaves(injected), jax.tree.leaves(plain), strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol)
        return
    _assert_bitwise_equal(injected, plain)
    _assert_bitwise_equal(_lr_states_dropped(state.inner_state), _lr_states_dropped(plain_state))


def _lr_states_dropped(state):
    """``state`` with its learning-rate scaling states removed: injected, a scheduled
    learning rate reaches the factory as an array (``EmptyState``, as in Optax), while
    the plain optimizer counts steps for its schedule (``ScaleByScheduleState``)."""
    lr_states = (optix.EmptyState, optix.ScaleByScheduleState)
    return jax.tree.map(
        lambda x: None if isinstance(x, lr_states) else x,
        state,
        is_leaf=lambda x: isinstance(x, lr_states),
    )


@pytest.mark.parametrize(
    ("name", "schedule"),
    [(n, False) for n in ALIASES]
    # Only aliases that take a learning rate schedule get the scheduled case.
    + [
        (n, True)
        for n in ALIASES
        if n not in NO_LR_SCHEDULE
        and "learning_rate" in inspect.signature(getattr(optix.optimizers, n)).parameters
    ],
)
def test_wrapping_any_alias_changes_no_number(name, schedule):
    factory = getattr(optix.optimizers, name)
    kwargs = {**_kwargs(factory, "learning_rate", lr_schedule if schedule else 0.05)}
    kwargs.update(EXTRA_KWARGS.get(name, {}))
    rtol = 0.0
    if schedule:
        kwargs.update(SCHEDULED_KWARGS.get(name, {}))
        rtol = SCHEDULED_RTOL.get(name, 0.0)
    with warnings.catch_warnings():
        if name in DEPRECATED:
            warnings.simplefilter("ignore", DeprecationWarning)
        _check_wrapping_changes_no_number(
            factory, kwargs, STATIC_ARGS.get(name, ()), jnp.float32, rtol=rtol, entry=ENTRIES[name]
        )


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "lion", "rmsprop", "adafactor"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
def test_wrapping_changes_no_number_in_low_precision(name, dtype):
    factory = getattr(optix.optimizers, name)
    _check_wrapping_changes_no_number(
        factory, {"learning_rate": 0.05}, STATIC_ARGS.get(name, ()), dtype, steps=8
    )


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "radam"])
def test_wrapping_changes_no_number_in_float64(name, x64):
    factory = getattr(optix.optimizers, name)
    _check_wrapping_changes_no_number(factory, {"learning_rate": 0.05}, (), jnp.float64, steps=8)


@pytest.mark.parametrize(
    "kwargs",
    [{"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}],
    ids=["momentum", "nesterov"],
)
def test_wrapping_sgd_with_momentum_changes_no_number(kwargs):
    _check_wrapping_changes_no_number(optix.sgd, {"learning_rate": 0.05, **kwargs}, (), jnp.float32)


TORCH = sorted(
    n.removeprefix("torch.")
    for n in public_optimizers()
    if n.startswith("torch.")
    and n not in MATRICES_ONLY
    and "lr" in inspect.signature(getattr(optix.torch, n.removeprefix("torch."))).parameters
)


@pytest.mark.parametrize("name", TORCH)
def test_wrapping_torch_constructors_changes_no_number(name):
    factory = getattr(optix.torch, name)
    kwargs = {"lr": 0.05, **({"momentum": 0.9} if name in ("sgd", "rmsprop") else {})}
    _check_wrapping_changes_no_number(
        factory,
        kwargs,
        TORCH_STATIC_ARGS.get(name, ()),
        jnp.float32,
        entry=ENTRIES[f"torch.{name}"],
    )


def test_torch_betas_are_one_hyperparameter_of_two_arrays():
    state = inject_hyperparams(optix.torch.adam)(lr=0.1).init(initial_params())
    betas = state.hyperparams["betas"]
    assert isinstance(betas, tuple)
    assert [b.dtype for b in betas] == [jnp.float32, jnp.float32]
    np.testing.assert_array_equal(jnp.stack(betas), jnp.asarray([0.9, 0.999], jnp.float32))


# Values set between steps: they take effect, under one compilation, with the numbers of the
# optimizer built from the state's arrays.

CHANGES = {
    "adamw": (
        optix.adamw,
        {"learning_rate": 0.05, "weight_decay": 0.1},
        [(3, {"learning_rate": 0.02}), (5, {"weight_decay": 0.3}), (7, {"b1": 0.5, "b2": 0.9})],
    ),
    "sgd": (
        optix.sgd,
        {"learning_rate": 0.05, "momentum": 0.9},
        [(3, {"momentum": 0.5}), (6, {"learning_rate": 0.01})],
    ),
    "torch.adam": (
        optix.torch.adam,
        {"lr": 0.05, "weight_decay": 0.1},
        [(3, {"betas": (0.8, 0.99)}), (5, {"lr": 0.01, "weight_decay": 0.0})],
    ),
}


def _changes_at(changes, setter):
    def change(t, state):
        for when, values in changes:
            if t == when:
                state = setter(state, **values)
        return state

    return change


def _float32(value):
    return jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), value)


def _typed_set(state, **values):
    """optix.tree.set with arrays of the state's dtype (what a training loop would do)."""
    return optix.tree.set(state, **{k: _float32(v) for k, v in values.items()})


@pytest.mark.parametrize("setter", [_typed_set, assign], ids=["set", "assign"])
@pytest.mark.parametrize("name", sorted(CHANGES))
def test_one_compilation_serves_changed_values(name, setter):
    """Each value set is the value used, one trace serves every value, and from the first
    change on the steps are those of the optimizer built from the state's arrays (run on
    its own from the inner state it had then)."""
    factory, kwargs, changes = CHANGES[name]
    tx = inject_hyperparams(factory)(**kwargs)
    traces = []

    def counted_update(grads, state, params):
        traces.append(1)
        return tx.update(grads, state, params)

    step = jax.jit(counted_update)
    reference = jax.jit(lambda h, g, s, p: factory(**h).update(g, s, p))
    change, first = _changes_at(changes, setter), changes[0][0]
    params = jax.tree.map(jnp.asarray, initial_params())
    state = tx.init(params)
    for t, g in enumerate(gradient_sequence(10)):
        g = jax.tree.map(jnp.asarray, g)
        state = change(t, state)
        if t == first:
            expected, reference_state = params, state.inner_state
        if t >= first:
            u, reference_state = reference(state.hyperparams, g, reference_state, expected)
            expected = optix.apply_updates(expected, u)
        updates, state = step(g, state, params)
        params = optix.apply_updates(params, updates)
        for k, v in dict(changes).get(t, {}).items():
            _assert_bitwise_equal(state.hyperparams[k], _float32(v))
    assert len(traces) == 1
    _assert_bitwise_equal(params, expected)
    _assert_bitwise_equal(state.inner_state, reference_state)


def test_a_changed_learning_rate_takes_effect_in_the_next_update():
    tx = inject_hyperparams(optix.sgd)(learning_rate=0.1)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    grads = {"w": jnp.full(3, 2.0)}
    updates, state = tx.update(grads, state, params)
    np.testing.assert_array_equal(updates["w"], np.float32(-0.2))
    state = assign(state, learning_rate=0.25)
    updates, state = tx.update(grads, state, params)
    np.testing.assert_array_equal(updates["w"], np.float32(-0.5))
    assert optix.tree.get(state, "learning_rate").dtype == jnp.float32


def test_without_exact_constants_the_arrays_are_used_from_the_start():
    kwargs = {"learning_rate": 0.05}
    arrays = inject_hyperparams(optix.adam, exact_constants=False)(**kwargs)
    trajectory, _ = _run(arrays, jnp.float32, steps=6)
    hyper = arrays.init(initial_params()).hyperparams
    from_arrays, _ = _run(optix.adam(**hyper), jnp.float32, steps=6)
    exact, _ = _run(optix.adam(**kwargs), jnp.float32, steps=6)
    _assert_bitwise_equal(trajectory, from_arrays)
    # float32(0.999) is not 0.999: the rounded betas move Adam's numbers (optax#1532).
    assert not np.array_equal(np.asarray(trajectory[-1]["w"]), np.asarray(exact[-1]["w"]))


def test_vmap_over_learning_rates_gives_each_run():
    tx = inject_hyperparams(optix.adam)(learning_rate=0.1)
    params = {"w": jnp.linspace(-1.0, 1.0, 4)}
    grads = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.1])}
    lrs = jnp.asarray([0.1, 0.01, 0.3])
    states = jax.vmap(lambda lr: optix.tree.set(tx.init(params), learning_rate=lr))(lrs)
    updates, _ = jax.vmap(lambda s: tx.update(grads, s, params))(states)
    for i, lr in enumerate(lrs):
        expected, _ = optix.adam(lr).update(grads, optix.adam(lr).init(params), params)
        np.testing.assert_allclose(updates["w"][i], expected["w"], rtol=1e-6)


# Optax's layout and behaviour (optax/schedules/_inject_test.py, ported).


def _layout(tree):
    """Class names, field names, dict keys and leaf dtypes of a state."""

    def describe(node):
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return (type(node).__name__, {f: describe(getattr(node, f)) for f in node._fields})
        if isinstance(node, dict):
            return {k: describe(v) for k, v in node.items()}
        if isinstance(node, tuple | list):
            return tuple(describe(v) for v in node)
        if node is None:
            return "None"
        return str(node.dtype if hasattr(node, "dtype") else jnp.asarray(node).dtype)

    return describe(tree)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.inject_hyperparams(m.adam)(learning_rate=0.1),
        lambda m: m.inject_hyperparams(m.adamw)(
            learning_rate=lambda c: 0.1 / (1.0 + c.astype(jnp.float32))
        ),
        lambda m: m.inject_hyperparams(m.sgd)(learning_rate=0.1, momentum=0.9),
        lambda m: m.inject_hyperparams(m.scale_by_adam, static_args="b1")(b1=0.5),
    ],
    ids=["adam", "adamw_schedule", "sgd_momentum", "static_b1"],
)
def test_state_layout_matches_optax(make):
    """The wrapper's layout and the inner state's, after init and after an update."""
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    with jax.numpy_dtype_promotion("standard"):
        ours, theirs = make(optix_api).init(params), make(optax).init(params)
        assert _layout(ours) == _layout(theirs)
        _, theirs = make(optax).update(params, theirs, params)
        _, ours = make(optix_api).update(params, ours, params)
    assert _layout(ours) == _layout(theirs)


class optix_api:  # stands in for a module in `make(m)` above
    inject_hyperparams = staticmethod(inject_hyperparams)
    adam, adamw, sgd = optix.adam, optix.adamw, optix.sgd
    scale_by_adam = optix.scale_by_adam


@pytest.mark.parametrize(
    "cls", [InjectHyperparamsState, InjectStatefulHyperparamsState, WrappedScheduleState]
)
def test_state_classes_have_optax_fields(cls):
    from optax.schedules import _inject

    assert cls._fields == getattr(_inject, cls.__name__)._fields


def test_signatures_match_optax():
    from optax.schedules import _inject

    ours = inspect.signature(inject_hyperparams).parameters
    theirs = inspect.signature(_inject.inject_hyperparams).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    assert [ours[k].default for k in theirs] == [theirs[k].default for k in theirs]
    assert ours["exact_constants"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(inject_stateful_hyperparams).parameters) == list(theirs)


def _optax_trajectory(make_tx, params, steps=6):
    with jax.numpy_dtype_promotion("standard"):
        tx = make_tx()
        state, out = tx.init(params), []
        for t in range(steps):
            grads = jax.tree.map(lambda p, t=t: jnp.sin(p * (t + 1)) + 0.1 * t, params)
            updates, state = tx.update(grads, state, params)
            out.append((updates, state.hyperparams))
        return out


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.inject_hyperparams(m.adam)(learning_rate=0.1, b1=0.8),
        lambda m: m.inject_hyperparams(m.sgd)(
            learning_rate=lambda c: 0.1 * 0.9 ** c.astype(jnp.float64), momentum=0.9
        ),
        lambda m: m.inject_hyperparams(m.scale_by_adam)(
            b1=lambda c: 0.5 + 0.04 * c.astype(jnp.float64)
        ),
    ],
    ids=["adam", "sgd_schedule", "scheduled_b1"],
)
def test_numbers_match_optax(make, x64):
    """In float64, where Optax's arithmetic loses no digits (in float32 its ``1 - b**t``
    does), Optax's wrapper and optix's agree, built from arrays as Optax does or not."""
    params = {
        "w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]], jnp.float64),
        "b": jnp.asarray([0.1, -0.3], jnp.float64),
    }
    theirs = _optax_trajectory(lambda: make(optax), params)
    for inject in (
        inject_hyperparams,
        functools.partial(inject_hyperparams, exact_constants=False),
    ):
        ours = _optax_trajectory(lambda inject=inject: make(_api(inject)), params)
        for (u, h), (v, k) in zip(ours, theirs, strict=True):
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), u, v)
            jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), h, k)


def _api(inject):
    class api:
        inject_hyperparams = staticmethod(inject)
        adam, sgd, scale_by_adam = optix.adam, optix.sgd, optix.scale_by_adam

    return api


def _standard(schedule):
    """An Optax schedule traced under standard dtype promotion (it mixes Python floats)."""

    def wrapped(count):
        with jax.numpy_dtype_promotion("standard"):
            return schedule(count)

    return wrapped


def test_schedule_updates_follow_the_step_count():
    schedule = _standard(optax.piecewise_constant_schedule(3.0, {1: 5, 7: 2, 12: 1.5}))
    tx = inject_hyperparams(optix.scale)(step_size=schedule)
    params = [jnp.zeros([], jnp.float32)]
    state = jax.jit(tx.init)(params)
    state = optix.tree.map_params(tx, lambda v: v, state)
    update = jax.jit(tx.update)
    expected = [3.0] * 2 + [15.0] * 6 + [30.0] * 5 + [45.0] * 3
    for i in range(15):
        updates, state = update([jnp.ones([], jnp.float32)], state, params)
        # expected[i + 1] is the schedule at count i, as in Optax's test.
        np.testing.assert_array_equal(updates[0], np.float32(expected[i + 1]))
        np.testing.assert_array_equal(state.hyperparams["step_size"], np.float32(expected[i + 1]))
        assert state.hyperparams_states["step_size"] == WrappedScheduleState(jnp.int32(i + 1))


def test_scheduled_hyperparameter_of_a_stateful_transform():
    schedule = _standard(optax.piecewise_constant_schedule(0.8, {3: 0.5, 9: 1.25}))
    tx = inject_hyperparams(optix.trace)(decay=schedule, nesterov=True)
    params = [jnp.zeros([2, 3]) for _ in range(3)]
    state = jax.jit(tx.init)(params)
    expected = [0.8] * 4 + [0.4] * 6 + [0.5] * 2
    for i in range(12):
        np.testing.assert_allclose(state.hyperparams["decay"], expected[i], rtol=1e-7)
        _, state = jax.jit(tx.update)(jax.tree.map(jnp.ones_like, params), state)
    assert set(state.hyperparams) == {"decay"}


def test_first_update_uses_step_zero():
    tx = inject_hyperparams(optix.scale)(lambda count: count.astype(jnp.float32))
    updates, _ = jax.jit(tx.update)(jnp.asarray([-1.0, 0.0, 1.0]), tx.init(jnp.zeros(3)))
    np.testing.assert_array_equal(updates, np.zeros(3))


def test_overriding_a_hyperparameter_as_optax_documents():
    tx = inject_hyperparams(optix.clip_by_global_norm)(0.1)
    params = jnp.zeros((3, 5, 7))
    state = jax.jit(tx.init)(params)
    for i in range(1, 5):
        state.hyperparams["max_norm"] = jnp.asarray(float(i))
        updates, state = jax.jit(tx.update)(jnp.ones_like(params), state)
        np.testing.assert_allclose(jnp.linalg.norm(updates.ravel()), i, rtol=1e-6)


class _Total(NamedTuple):
    total: jax.Array


class _SumSchedule:
    """A stateful schedule: the running sum of an extra argument."""

    def init(self):
        return _Total(jnp.zeros([], jnp.float32))

    def update(self, state, **extra_args):
        return _Total(state.total + extra_args["addendum"])

    def __call__(self, state, **extra_args):
        return state.total


def test_stateful_schedule_sees_extra_args():
    assert isinstance(_SumSchedule(), StatefulSchedule)
    tx = inject_hyperparams(optix.scale)(step_size=_SumSchedule())
    params = (jnp.ones(3), jnp.ones(2))
    state = jax.jit(tx.init)(params)
    addendum = jnp.asarray(0.3, jnp.float32)
    for _ in range(2):
        updates, state = jax.jit(tx.update)(params, state, params, addendum=addendum)
    np.testing.assert_array_equal(state.hyperparams["step_size"], addendum)
    np.testing.assert_array_equal(updates[0], jnp.full(3, addendum))
    np.testing.assert_array_equal(state.hyperparams_states["step_size"].total, 2 * addendum)


def test_wrapped_schedule_counts_updates():
    wrapped = WrappedSchedule(lambda count: 2.0 * count.astype(jnp.float32))
    state = wrapped.init()
    assert state == WrappedScheduleState(jnp.int32(0))
    for t in range(4):
        assert wrapped(state, loss=1.0) == 2.0 * t
        state = wrapped.update(state, loss=1.0)
    assert state.count.dtype == jnp.int32
    assert int(state.count) == 4


@pytest.mark.parametrize("static_args", ["mask", ["mask"]], ids=["string", "list"])
def test_static_args_pass_callables_unchanged(static_args):
    @functools.partial(inject_hyperparams, static_args=static_args)
    def custom(learning_rate, mask):
        return optix.masked(optix.scale(-learning_rate), mask)

    tx = custom(0.1, lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    params = [jnp.ones((1, 2)), jnp.ones(2), jnp.ones((1, 1, 1))]
    state = jax.jit(tx.init)(params)
    updates, state = jax.jit(tx.update)(params, state)
    assert set(state.hyperparams) == {"learning_rate"}
    expected = [np.full((1, 2), -0.1, np.float32), np.ones(2), np.full((1, 1, 1), -0.1, np.float32)]
    for u, e in zip(updates, expected, strict=True):
        np.testing.assert_array_equal(u, e)


def test_numeric_static_args_are_not_hyperparameters():
    tx = inject_hyperparams(optix.scale_by_adam, static_args=("b1", "b2"))(b1=0.9, b2=0.95)
    state = tx.init([jnp.ones(2)])
    assert set(state.hyperparams) == {"eps", "eps_root"}


def test_static_args_must_name_parameters():
    with pytest.raises(ValueError, match=r"inject_hyperparams: static_args must name parameters"):
        inject_hyperparams(optix.scale, static_args="lr")


def test_a_size_argument_made_an_array_says_to_make_it_static():
    # The hint is part of the message: Python 3.10 has no exception notes.
    tx = inject_hyperparams(optix.adafactor, exact_constants=False)(learning_rate=0.1)
    with pytest.raises(TypeError, match="must be named in static_args"):
        tx.init({"w": jnp.ones((3, 4))})


def test_construction_validates_like_the_factory():
    with pytest.raises(ValueError, match=r"adam: b1 must be in .+, got b1=1.5"):
        inject_hyperparams(optix.adam)(learning_rate=0.1, b1=1.5)


def test_dtypes_are_never_schedules_and_ints_stay_ints():
    tx = inject_hyperparams(optix.adafactor, static_args="min_dim_size_to_factor")(
        learning_rate=0.1, decay_offset=-2, dtype_momentum=jnp.bfloat16
    )
    state = tx.init({"w": jnp.ones((3, 4))})
    assert "dtype_momentum" not in state.hyperparams
    assert "dtype_momentum" not in state.hyperparams_states
    assert state.hyperparams["decay_offset"].dtype == jnp.int32
    assert "multiply_by_parameter_scale" not in state.hyperparams  # a bool


@pytest.mark.parametrize(
    ("param_dtype", "hyperparam_dtype", "expected"),
    [
        (jnp.float32, None, jnp.float32),
        (jnp.bfloat16, None, jnp.float32),
        (jnp.float16, None, jnp.float32),
        (jnp.float32, jnp.bfloat16, jnp.bfloat16),
        (jnp.bfloat16, jnp.float32, jnp.float32),
    ],
)
def test_float_hyperparameter_dtypes(param_dtype, hyperparam_dtype, expected):
    tx = inject_hyperparams(optix.scale_by_adam, hyperparam_dtype=hyperparam_dtype)(b2=0.95)
    params = [jnp.ones((1, 2), param_dtype), jnp.ones(2, param_dtype)]
    state = jax.jit(tx.init)(params)
    # Hyperparameters narrower than the math (bf16 betas for float32 moments) mix dtypes.
    with jax.numpy_dtype_promotion("standard"):
        _, new_state = jax.jit(tx.update)(params, state, params)
    for s in (state, new_state):
        assert {k: v.dtype for k, v in s.hyperparams.items()} == dict.fromkeys(
            ["b1", "b2", "eps", "eps_root"], expected
        )


def test_float64_params_give_float64_hyperparameters(x64):
    state = inject_hyperparams(optix.adam)(learning_rate=0.1).init({"w": jnp.ones(2, jnp.float64)})
    assert state.hyperparams["learning_rate"].dtype == jnp.float64
    np.testing.assert_array_equal(state.hyperparams["b2"], np.float64(0.999))


def test_strongly_typed_arrays_keep_their_dtype():
    tx = inject_hyperparams(optix.scale_by_adam)(
        b1=jnp.asarray(0.9, jnp.float32), b2=jnp.asarray(0.95, jnp.bfloat16)
    )
    state = tx.init([jnp.ones(2, jnp.float16)])
    assert state.hyperparams["b1"].dtype == jnp.float32
    assert state.hyperparams["b2"].dtype == jnp.bfloat16


def test_a_prng_key_argument_is_kept():
    def noise(key, scale):
        def init(params):
            return (key, scale)

        def update(updates, state, params=None, **extra_args):
            k, s = state
            k, sub = jax.random.split(k)
            return jax.tree.map(lambda u: s * jax.random.normal(sub, u.shape), updates), (k, s)

        return optix.GradientTransformation(init, update)

    tx = inject_hyperparams(noise)(key=jax.random.key(17), scale=1e-3)
    params = [jnp.ones((1, 2)), jnp.ones(2)]
    state = jax.jit(tx.init)(params)
    _, new_state = jax.jit(tx.update)(params, state)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_structure_is_stable_and_none_leaves_pass():
    tx = inject_hyperparams(optix.adamw)(
        learning_rate=_standard(optax.linear_schedule(0.1, 0.0, 10))
    )
    params = {"w": jnp.ones((2, 2)), "frozen": None}
    state = tx.init(params)
    grads = {"w": jnp.full((2, 2), 0.3), "frozen": None}
    updates, new_state = jax.jit(tx.update)(grads, state, params)
    assert updates["frozen"] is None
    assert _layout(new_state) == _layout(state)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_extra_args_reach_the_inner_transformation():
    tx = inject_hyperparams(optix.polyak_sgd)(max_learning_rate=2.0)
    params = {"w": jnp.asarray([1.0, 2.0])}
    grads = {"w": jnp.asarray([0.5, 1.0])}
    updates, _ = tx.update(grads, tx.init(params), params, value=jnp.asarray(1.25))
    expected, _ = optix.polyak_sgd(2.0).update(
        grads, optix.polyak_sgd(2.0).init(params), params, value=jnp.asarray(1.25)
    )
    _assert_bitwise_equal(updates, expected)
    np.testing.assert_allclose(updates["w"], -jnp.asarray([0.5, 1.0]), rtol=1e-6)


def test_inject_stateful_hyperparams_is_the_deprecated_name():
    with pytest.warns(DeprecationWarning, match="inject_stateful_hyperparams is deprecated"):
        factory = inject_stateful_hyperparams(optix.sgd)
    state = factory(learning_rate=0.1).init({"w": jnp.ones(2)})
    assert type(state) is InjectStatefulHyperparamsState


def test_abstract_init_and_checkpoint_round_trip():
    import flax.serialization

    tx = inject_hyperparams(optix.torch.adamw)(lr=lr_schedule, betas=(0.9, 0.99))
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), initial_params())
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    state = tx.init(params)
    assert _layout(jax.eval_shape(tx.init, abstract)) == _layout(state)
    _, state = tx.update(params, state, params)
    state = assign(state, betas=(0.5, 0.9))
    restored = flax.serialization.from_bytes(tx.init(params), flax.serialization.to_bytes(state))
    _assert_bitwise_equal(restored, state)
    assert type(restored) is InjectStatefulHyperparamsState
