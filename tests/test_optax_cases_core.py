"""Optax's own cases for the contract (optax/_src/{base,combine,update,numerics}_test.py and
optax/transforms/_combining_test.py), run on optix and, where a number is at stake, on Optax.

One deliberate difference: optix has a single transformation type, so a plain
``GradientTransformation`` is also a ``GradientTransformationExtraArgs`` (Optax keeps two
classes and only the second accepts extra arguments).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix

INIT = (jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
GRADS = (jnp.array([500.0, 5.0]), jnp.array([300.0, 3.0]))


def tuple_init(params):
    del params
    return ()


# base_test.py


def test_an_update_fn_takes_params_positionally_by_keyword_or_not_at_all():
    seen = []

    def update(updates, opt_state, params=None):
        seen.append(params)
        return updates, opt_state

    def call(f: optix.TransformUpdateFn):
        zero = np.zeros([])
        f(zero, zero)
        f(zero, zero, zero)
        f(zero, zero, params=zero)

    call(update)
    assert [p is None for p in seen] == [True, False, False]


def test_set_to_zero_gives_zeros_of_each_shape_under_jit_and_an_empty_state():
    grads = ({"a": np.ones((3, 4)), "b": 1.0}, np.ones((1, 2, 3)))
    tx = optix.set_to_zero()
    updates, _ = jax.jit(tx.update)(grads, optix.EmptyState())
    expected = ({"a": np.zeros((3, 4)), "b": 0.0}, np.zeros((1, 2, 3)))
    assert jax.tree.structure(updates) == jax.tree.structure(expected)
    jax.tree.map(np.testing.assert_array_equal, updates, expected)
    assert [u.shape for u in jax.tree.leaves(updates)] == [(3, 4), (), (1, 2, 3)]
    assert jax.jit(tx.init)(params=None) == optix.EmptyState() == optax.EmptyState()


def test_with_extra_args_support_lets_a_plain_update_ignore_extra_args():
    def update(updates, state, params=None):
        del params
        return updates, state

    plain = optix.GradientTransformation(lambda p: {}, update)
    # Deliberate difference: one type, so the plain pair already counts as both.
    assert isinstance(plain, optix.GradientTransformationExtraArgs)
    wrapped = optix.with_extra_args_support(plain)
    assert isinstance(wrapped, optix.GradientTransformation)
    assert wrapped.update({}, wrapped.init({}), ignored_arg="hi") == ({}, {})
    twice = optix.with_extra_args_support(wrapped)
    assert twice.update({}, twice.init({}), ignored_arg="hi") == ({}, {})
    with pytest.raises(TypeError):
        plain.update({}, {}, ignored_arg="hi")


def test_an_extra_arg_callback_runs_at_trace_time_under_jit():
    def update(updates, state, *, metrics_logger=None, **extra_args):
        if metrics_logger:
            metrics_logger("learning_rate", 0.3)
        return updates, state

    tx = optix.GradientTransformationExtraArgs(lambda p: {}, update)

    @jax.jit
    def f(params):
        metrics = {}
        tx.update(params, tx.init(params), metrics_logger=metrics.__setitem__)
        return metrics

    assert f({"a": 1}) == {"learning_rate": 0.3}


STATELESS_CASES = [
    (lambda g, p: jax.tree.map(lambda g_, p_: g_ + 0.1 * p_, g, p), "tree"),
    (lambda g, p: g + 0.1 * p, "leaf"),
]


@pytest.mark.parametrize(("fn", "kind"), STATELESS_CASES, ids=[k for _, k in STATELESS_CASES])
def test_stateless_with_and_without_params(fn, kind):
    build = optix.stateless if kind == "tree" else optix.stateless_with_tree_map
    params = {"a": jnp.zeros((1, 2)), "b": jnp.ones((1,))}
    updates = {"a": jnp.ones((1, 2)), "b": jnp.full((1,), 2.0)}
    tx = build(fn)
    assert tx.init(params) == optix.EmptyState() and tx.init(None) == optix.EmptyState()
    out, state = jax.jit(tx.update)(updates, tx.init(params), params)
    assert state == optix.EmptyState()
    np.testing.assert_allclose(out["a"], np.ones((1, 2)))
    np.testing.assert_allclose(out["b"], [2.1])
    double = build(lambda g, _: jax.tree.map(lambda x: x * 2.0, g))
    out, _ = jax.jit(double.update)({"linear": jnp.full((5, 3), 3.0)}, double.init(None))
    np.testing.assert_array_equal(out["linear"], np.full((5, 3), 6.0))


# combine_test.py and transforms/_combining_test.py


def test_chain_equals_its_members_applied_one_after_the_other():
    members = [optix.scale_by_adam(), optix.trace(decay=0, nesterov=False), optix.scale(-1e-2)]
    tx = optix.chain(*members)
    step = jax.jit(tx.update)
    chained, state = INIT, tx.init(INIT)
    assert isinstance(state, tuple)
    manual, states = INIT, [m.init(INIT) for m in members]
    for _ in range(50):
        updates, state = step(GRADS, state)
        assert isinstance(state, tuple)
        chained = optix.apply_updates(chained, updates)
        updates, new_states = GRADS, []
        for member, s in zip(members, states, strict=True):
            updates, s = member.update(updates, s)
            new_states.append(s)
        manual, states = optix.apply_updates(manual, updates), new_states
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), chained, manual)
    # Adam normalises each entry: 50 steps of -0.01 from each start.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b - 0.5, rtol=1e-5), chained, INIT)


def test_chain_passes_a_keyword_only_extra_arg_and_ignores_the_rest():
    def update(updates, state, params=None, *, loss, **extra_args):
        assert loss == 1
        return updates, state

    tx = optix.chain(optix.adam(1e-3), optix.GradientTransformationExtraArgs(tuple_init, update))
    assert isinstance(tx, optix.GradientTransformationExtraArgs)
    params = {"a": jnp.asarray(1.0), "b": jnp.asarray(2.0)}
    updates, _ = tx.update(params, tx.init(params), loss=1, ignored_kwarg="hi")
    # Adam's first step is -lr * sign(g).
    np.testing.assert_allclose(updates["a"], -1e-3, rtol=1e-4)
    with pytest.raises(TypeError):
        tx.update(params, tx.init(params))


def test_chain_of_plain_members_accepts_extra_args_and_positional_or_keyword_params():
    def update(updates, state, params=None):
        assert params is not None
        return updates, state

    def update_kwargs(updates, state, params=None, **extra_args):
        assert params is not None
        return updates, state

    plain = optix.GradientTransformation(tuple_init, update)
    tx = optix.chain(plain, optix.GradientTransformationExtraArgs(tuple_init, update_kwargs))
    params = {"a": 1, "b": 2}
    state = tx.init(params)
    assert tx.update(params, state, params, ignored_kwarg="hi") == (params, ((), ()))
    assert tx.update(params, state, params=params, ignored_kwarg="hi") == (params, ((), ()))
    doubled = optix.with_extra_args_support(optix.chain(plain, plain))
    assert doubled.update(params, doubled.init(params), params, x=1)[0] == params


def scale_by_loss(m):
    def update(updates, state, params, *, loss, **extra_args):
        return jax.tree.map(lambda u: u / loss, updates), state

    return m.GradientTransformationExtraArgs(m.init_empty_state, update)


def test_named_chain_forwards_the_loss_to_its_member():
    params = {"a": jnp.ones((4,))}
    for m in (optix, optax):
        tx = m.named_chain(("scale", m.scale(0.1)), ("scale_loss", scale_by_loss(m)))
        updates, state = tx.update(params, tx.init(params), params, loss=0.1)
        np.testing.assert_allclose(updates["a"], np.ones(4), rtol=1e-6)
        assert list(state) == ["scale", "scale_loss"]


# update_test.py


def test_apply_incremental_and_periodic_updates_under_jit():
    params = ({"a": jnp.ones((3, 2))}, jnp.ones((1,)))
    twice = jax.tree.map(lambda t: 2 * t, params)
    new = jax.jit(optix.apply_updates)(params, twice)
    jax.tree.map(lambda x: np.testing.assert_array_equal(x, 3.0), new)
    low = jax.tree.map(lambda t: t.astype(jnp.bfloat16), params)
    new = jax.jit(optix.apply_updates)(low, twice)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(new))
    half_way = jax.jit(optix.incremental_update)(twice, params, 0.5)
    jax.tree.map(lambda x: np.testing.assert_array_equal(x, 1.5), half_way)
    periodic = jax.jit(optix.periodic_update)
    for j in range(3):
        for i in range(1, 5):
            out = periodic(twice, params, j * 5 + i, 5)
            jax.tree.map(lambda x: np.testing.assert_array_equal(x, 1.0), out)
        out = periodic(twice, params, (j + 1) * 5, 5)
        jax.tree.map(lambda x: np.testing.assert_array_equal(x, 2.0), out)


def test_none_params_give_none():
    x = jnp.array([1.0, 2.0, 3.0])
    assert optix.apply_updates(None, x) is None is optax.apply_updates(None, x)
    assert optix.incremental_update(None, x, 1) is None


# numerics_test.py: safe_increment


def _max_of(dtype):
    return (jnp.iinfo if jnp.issubdtype(dtype, jnp.integer) else jnp.finfo)(dtype).max


INCREMENT_DTYPES = ["bfloat16", "float16", "float32", "int8", "int16", "int32"]
INCREMENT_DTYPES += ["uint8", "uint16", "uint32"]


def test_safe_increment_adds_one_and_saturates_for_every_dtype():
    increment = jax.jit(optix.safe_increment)
    for name in INCREMENT_DTYPES:
        dtype = jnp.dtype(name)
        np.testing.assert_array_equal(increment(jnp.asarray(3, dtype)), jnp.asarray(4, dtype))
        top = jnp.asarray(_max_of(dtype), dtype)
        out = increment(top)
        assert out.dtype == dtype, name
        np.testing.assert_array_equal(out, top, err_msg=name)


def test_safe_increment_saturates_for_64_bit_dtypes(x64):
    for name in ["float64", "int64", "uint64"]:
        dtype = jnp.dtype(name)
        np.testing.assert_array_equal(optix.safe_increment(jnp.asarray(3, dtype)), 4)
        top = jnp.asarray(_max_of(dtype), dtype)
        np.testing.assert_array_equal(jax.jit(optix.safe_increment)(top), top, err_msg=name)


@pytest.mark.parametrize("dtype", ["bool", "complex64"])
def test_safe_increment_refuses_dtypes_that_do_not_count(dtype):
    with pytest.raises(ValueError, match="safe_increment"):
        optix.safe_increment(jnp.asarray(1, dtype))
    with pytest.raises(ValueError):
        optax.safe_increment(jnp.asarray(1, dtype))
