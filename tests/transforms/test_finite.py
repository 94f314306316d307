"""apply_if_finite, skip_not_finite and skip_large_updates: Optax's numbers and state
layout, a skipped step leaves the inner state bit for bit, readable counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms.finite import (
    ApplyIfFiniteState,
    apply_if_finite,
    skip_large_updates,
    skip_not_finite,
)
from tests.transforms.wrapper_helpers import (
    PARAMS,
    assert_signature_matches_optax,
    assert_trees_equal,
    counting,
    grads,
    run,
    same_layout,
)


def test_signatures_and_state_fields_match_optax():
    assert_signature_matches_optax(apply_if_finite, optax.apply_if_finite)
    assert_signature_matches_optax(skip_not_finite, optax.skip_not_finite)
    assert_signature_matches_optax(skip_large_updates, optax.skip_large_updates)
    assert ApplyIfFiniteState._fields == optax.ApplyIfFiniteState._fields


def poisoned(t, bad_steps):
    """``grads(t)``, with a NaN or an inf in one entry on the steps of ``bad_steps``."""
    g = grads(t)
    if t not in bad_steps:
        return g
    value = jnp.nan if t % 2 else -jnp.inf
    return {**g, "w": g["w"].at[t % 2, 1].set(value)}


# one bad step, then two in a row (skipped with max 2), then three in a row (the third is
# accepted: the give-up), then finite again.
BAD = {2, 5, 6, 9, 10, 11}


@pytest.mark.parametrize("inner", ["optix", "optax"])
def test_same_numbers_and_state_layout_as_optax(inner):
    grad_list = [poisoned(t, BAD) for t in range(13)]
    tx = optix.sgd(0.1, momentum=0.9) if inner == "optix" else optax.sgd(0.1, momentum=0.9)
    ours = run(apply_if_finite(tx, 2), grad_list, standard=inner == "optax")
    theirs = run(optax.apply_if_finite(optax.sgd(0.1, momentum=0.9), 2), grad_list, standard=True)
    for (u, s), (u_ref, s_ref) in zip(ours, theirs, strict=True):
        assert_trees_equal(u, u_ref, rtol=1e-6)
        assert_trees_equal(s[:3], s_ref[:3])
        if inner == "optax":
            assert same_layout(s, s_ref)
            assert_trees_equal(s.inner_state, s_ref.inner_state, rtol=1e-6)
    counts = [(int(s.notfinite_count), int(s.total_notfinite)) for _, s in ours]
    assert counts[11] == (3, 6)
    assert not np.isfinite(np.asarray(ours[11][0]["w"])).all()  # the give-up step ran sgd


@functools.cache
def adamw_if_finite(max_errors):
    """One compiled update per configuration, shared by the hypothesis examples."""
    tx = apply_if_finite(optix.adamw(0.1, weight_decay=0.1), max_errors)
    return tx, jax.jit(tx.update)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 5),
    st.sampled_from([("w", (0, 1)), ("w", (1, 0)), ("b", (1,))]),
    st.sampled_from([np.nan, np.inf, -np.inf]),
    st.integers(1, 3),
)
def test_a_skipped_step_leaves_every_moment_bit_for_bit(warmup, where, bad, max_errors):
    tx, update = adamw_if_finite(max_errors)
    state = tx.init(PARAMS)
    for t in range(warmup):
        _, state = update(grads(t), state, PARAMS)
    name, index = where
    g = grads(warmup)
    g = {**g, name: g[name].at[index].set(bad)}
    updates, skipped = update(g, state, PARAMS)
    assert_trees_equal(updates, jax.tree.map(jnp.zeros_like, PARAMS))
    assert_trees_equal(skipped.inner_state, state.inner_state)
    assert int(skipped.notfinite_count) == 1 and not bool(skipped.last_finite)
    assert int(skipped.total_notfinite) == int(state.total_notfinite) + 1


def test_counts_are_readable_by_name_and_reset_after_a_finite_step():
    tx = apply_if_finite(optix.adam(0.1), 5)
    states = [s for _, s in run(tx, [poisoned(t, {1, 2, 4}) for t in range(6)])]
    assert [int(optix.tree.get(s, "notfinite_count")) for s in states] == [0, 1, 2, 0, 1, 0]
    assert [int(optix.tree.get(s, "total_notfinite")) for s in states] == [0, 1, 2, 2, 3, 3]
    assert [bool(optix.tree.get(s, "last_finite")) for s in states] == [1, 0, 0, 1, 0, 1]
    assert int(optix.tree.get(states[-1], "ScaleByAdamState").count) == 3  # finite steps only


def test_reset_count_on_give_up_skips_the_next_streak_again():
    bad_run = [poisoned(t, {1}) for t in range(1)] + [poisoned(1, {1})] * 4
    optax_like = run(apply_if_finite(optix.sgd(0.1), 1), bad_run)
    resetting = run(apply_if_finite(optix.sgd(0.1), 1, reset_count_on_give_up=True), bad_run)
    accepted = lambda out: [bool(jnp.isnan(u["w"]).any()) for u, _ in out]
    assert accepted(optax_like) == [False, False, True, True, True]
    assert accepted(resetting) == [False, False, True, False, True]
    assert [int(s.notfinite_count) for _, s in resetting] == [0, 1, 0, 1, 0]


def test_inner_update_does_not_run_on_skipped_steps():
    calls = []
    tx = apply_if_finite(counting(optix.adam(0.1), calls), 3)
    run(tx, [poisoned(t, {1, 2, 4}) for t in range(6)])
    jax.effects_barrier()
    assert len(calls) == 3


def test_jit_once_extra_args_none_leaves_and_bf16():
    seen = []

    def update(updates, state, params=None, **extra_args):
        seen.append(sorted(extra_args))
        return updates, state

    inner = optix.chain(
        optix.GradientTransformation(optix.init_empty_state, update), optix.adam(1.0)
    )
    tx = apply_if_finite(inner, 1)
    params = {"w": jnp.ones(3, jnp.bfloat16), "frozen": None}
    traces = []

    @jax.jit
    def step(g, state):
        traces.append(1)
        return tx.update(g, state, params, value=jnp.asarray(2.0))

    state = tx.init(params)
    for value in (1.0, jnp.nan, 1.0):
        u, new_state = step({"w": jnp.full(3, value, jnp.bfloat16), "frozen": None}, state)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        assert u["w"].dtype == jnp.bfloat16 and u["frozen"] is None
        state = new_state
    assert len(traces) == 1 and seen == [["value"]]
    np.testing.assert_array_equal(np.asarray(u["w"], np.float32), [-1.0] * 3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_skip_functions_match_optax(dtype):
    finite = {"w": jnp.ones((2, 3), dtype), "b": jnp.asarray([3.0, -4.0], dtype)}  # norm**2 31
    bad = {"w": jnp.full((2, 3), jnp.inf, dtype), "b": jnp.asarray([jnp.nan, 1.0], dtype)}
    step = jnp.asarray(3)
    for tree in (finite, bad):
        assert_trees_equal(
            skip_not_finite(tree, step, None), optax.skip_not_finite(tree, step, None)
        )
        for limit in (20.0, 31.0, 40.0):
            ours = skip_large_updates(tree, step, None, limit)
            with jax.numpy_dtype_promotion("standard"):
                theirs = optax.skip_large_updates(tree, step, None, limit)
            assert bool(ours[0]) == bool(theirs[0]) == (tree is bad or limit <= 31.0)
            assert ours[1]["norm_squared"].dtype == jnp.float32  # bf16 squares summed in f32
            np.testing.assert_array_equal(
                np.float64(ours[1]["norm_squared"]), np.float64(theirs[1]["norm_squared"])
            )
    assert int(skip_not_finite(bad, step, None)[1]["num_not_finite"]) == 7


def test_multi_steps_starts_with_optax_skip_state():
    from optix.transforms.accumulation import MultiSteps

    skip = functools.partial(skip_large_updates, max_squared_norm=2.0)
    ours = MultiSteps(optix.sgd(1.0), 2, should_skip_update_fn=skip).init(PARAMS)
    theirs = optax.MultiSteps(optax.sgd(1.0), 2, should_skip_update_fn=skip).init(PARAMS)
    assert_trees_equal(ours.skip_state, theirs.skip_state)


def test_bad_max_consecutive_errors_raises():
    with pytest.raises(
        ValueError,
        match=r"apply_if_finite: max_consecutive_errors must be >= 0, "
        r"got max_consecutive_errors=-1",
    ):
        apply_if_finite(optix.sgd(0.1), -1)
    with pytest.raises(TypeError, match="apply_if_finite: max_consecutive_errors must be an int"):
        apply_if_finite(optix.sgd(0.1), 1.5)
