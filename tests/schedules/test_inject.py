"""optix.schedules' injection names (Optax's optax.schedules._inject), and the cases of
Optax's _inject_test.py not already in tests/transforms/test_hyperparams.py."""

import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix import schedules
from optix.transforms import hyperparams

NAMES = [
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "StatefulSchedule",
    "WrappedSchedule",
]


@pytest.mark.parametrize("name", NAMES)
def test_names_are_optax_s_and_one_object_everywhere(name):
    ours = getattr(schedules, name)
    assert name in schedules.__all__ and name in dir(schedules)
    assert ours is getattr(hyperparams, name) is getattr(optix, name)
    theirs = getattr(optax.schedules, name)
    if inspect.isfunction(theirs):
        params = list(inspect.signature(theirs).parameters)
        assert list(inspect.signature(ours).parameters)[: len(params)] == params
    elif hasattr(theirs, "_fields"):
        assert ours._fields == theirs._fields


def test_unknown_names_still_raise_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'inject_everything'"):
        schedules.inject_everything  # noqa: B018


def test_wrap_stateless_schedule():
    """Optax's case: the wrapped schedule follows the step count, extra args ignored."""
    schedule = schedules.linear_schedule(1.0, 0.1, 10)
    wrapped = schedules.WrappedSchedule(schedule)
    state = wrapped.init()
    for count in range(8):
        assert int(state.count) == count
        np.testing.assert_array_equal(wrapped(state), schedule(count))
        state = wrapped.update(state, loss=jnp.ones([], jnp.float32))
    assert state.count.dtype == jnp.int32
    assert isinstance(wrapped, schedules.StatefulSchedule)


def test_wrapped_schedule_count_saturates():
    wrapped = schedules.WrappedSchedule(lambda count: count)
    last = wrapped.init()._replace(count=jnp.asarray(np.iinfo(np.int32).max, jnp.int32))
    assert int(wrapped.update(last).count) == np.iinfo(np.int32).max


class _Total(NamedTuple):
    total: jax.Array


class _Summing:
    """Optax's example: a stateful schedule summing an extra argument, in int32."""

    def init(self):
        return _Total(jnp.zeros([], jnp.int32))

    def update(self, state, **extra_args):
        return _Total(state.total + extra_args["addendum"])

    def __call__(self, state, **extra_args):
        return state.total


def test_inject_stateful_schedule_with_integer_state():
    tx = schedules.inject_hyperparams(optix.scale)(step_size=_Summing())
    params = (jnp.ones(3), jnp.ones(2))
    state = jax.jit(tx.init)(params)
    addendum = jnp.asarray(2, jnp.int32)
    for _ in range(2):
        _, state = jax.jit(tx.update)(params, state, params, addendum=addendum)
    assert int(state.hyperparams["step_size"]) == 2
    assert int(state.hyperparams_states["step_size"].total) == 4


def test_constant_hyperparams():
    """Optax's case: Adam with b1 = b2 = 0 passes the signs of the gradients (ones)."""
    tx = schedules.inject_hyperparams(optix.scale_by_adam)(b1=0.0, b2=0.0)
    params = [jnp.zeros([2, 3]) for _ in range(3)]
    state = jax.jit(tx.init)(params)
    grads = jax.tree.map(jnp.ones_like, params)
    update = jax.jit(tx.update)
    for _ in range(5):
        updates, state = update(grads, state, params)
        assert {k: float(v) for k, v in state.hyperparams.items()} == {
            "b1": 0.0,
            "b2": 0.0,
            "eps": np.float32(1e-8),
            "eps_root": 0.0,
        }
        jax.tree.map(lambda u: np.testing.assert_allclose(u, 1.0, rtol=1e-7), updates)


@pytest.mark.parametrize(
    ("hyperparam_dtype", "param_dtype", "grad_dtype"),
    [
        (jnp.bfloat16, jnp.float32, jnp.bfloat16),
        (jnp.bfloat16, jnp.float32, jnp.float32),
        (jnp.float32, jnp.bfloat16, jnp.bfloat16),
        (jnp.float32, jnp.float32, jnp.bfloat16),
        (jnp.float32, jnp.bfloat16, jnp.float32),
    ],
)
def test_hyperparam_dtype_override_with_mixed_grads(hyperparam_dtype, param_dtype, grad_dtype):
    """Optax's case: the override holds after init and after an update, whatever the
    dtypes of the params and of the gradients."""
    tx = schedules.inject_hyperparams(optix.scale_by_adam, hyperparam_dtype=hyperparam_dtype)(
        b1=0.9, b2=0.95
    )
    params = [jnp.ones((1, 2), param_dtype), jnp.ones(2, param_dtype)]
    grads = jax.tree.map(lambda x: x.astype(grad_dtype), params)
    state = jax.jit(tx.init)(params)
    with jax.numpy_dtype_promotion("standard"):
        updates, new_state = jax.jit(tx.update)(grads, state)
    for s in (state, new_state):
        assert s.hyperparams["b1"].dtype == s.hyperparams["b2"].dtype == hyperparam_dtype
    assert [u.dtype for u in updates] == [grad_dtype, grad_dtype]


@pytest.mark.parametrize("static_args", ["b1", ["b1", "b2"]], ids=["one", "two"])
def test_numeric_static_args_stay_out_of_the_state(static_args):
    tx = schedules.inject_hyperparams(optix.scale_by_adam, static_args=static_args)(b1=0.9, b2=0.95)
    params = [jnp.ones((1, 2)), jnp.ones(2), jnp.ones((1, 1, 1))]
    _, state = jax.jit(tx.update)(params, jax.jit(tx.init)(params))
    assert not set(state.hyperparams) & set(np.atleast_1d(static_args))
