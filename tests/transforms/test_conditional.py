"""conditionally_transform and conditionally_mask: Optax's numbers and state layout,
extra arguments forwarded, rejected steps keep the inner state and skip the inner work."""

import jax
import jax.numpy as jnp
import optax
import pytest

import optix
from optix.transforms.conditional import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    conditionally_mask,
    conditionally_transform,
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

WRAPPERS = {
    "transform": (conditionally_transform, optax.conditionally_transform),
    "mask": (conditionally_mask, optax.conditionally_mask),
}


def every_third(step, **extra_args):
    return step % 3 == 0


def test_signatures_and_state_fields_match_optax():
    for ours, theirs in WRAPPERS.values():
        assert_signature_matches_optax(ours, theirs)
    assert ConditionallyTransformState._fields == optax.ConditionallyTransformState._fields
    assert ConditionallyMaskState._fields == optax.ConditionallyMaskState._fields


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_same_numbers_and_state_layout_as_optax(kind):
    ours_fn, theirs_fn = WRAPPERS[kind]
    grad_list = [grads(t) for t in range(8)]
    inner = optax.adam(0.1)
    ours = run(ours_fn(inner, every_third), grad_list, standard=True)
    theirs = run(theirs_fn(inner, every_third), grad_list, standard=True)
    for (u, s), (u_ref, s_ref) in zip(ours, theirs, strict=True):
        assert same_layout(s, s_ref)
        assert_trees_equal(u, u_ref)
        assert_trees_equal(s, s_ref)


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_rejected_steps_keep_the_inner_state_and_pass_or_zero_the_updates(kind):
    tx = WRAPPERS[kind][0](optix.adam(0.1), every_third)
    state = tx.init(PARAMS)
    _, state = tx.update(grads(0), state, PARAMS)  # step 0 runs adam
    updates, rejected = tx.update(grads(1), state, PARAMS)
    expected = grads(1) if kind == "transform" else jax.tree.map(jnp.zeros_like, PARAMS)
    assert_trees_equal(updates, expected)
    assert_trees_equal(rejected.inner_state, state.inner_state)
    assert int(rejected.step) == 2 and int(state.inner_state[0].count) == 1


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_extra_args_reach_the_condition_only_when_forwarded_and_the_inner_always(kind):
    seen = []

    def update(updates, state, params=None, **extra_args):
        seen.append(sorted(extra_args))
        return updates, state

    inner = optix.GradientTransformation(optix.init_empty_state, update)
    below = lambda step, loss=jnp.inf: loss < 1.0
    forwarded = WRAPPERS[kind][0](inner, below, forward_extra_args=True)
    out = run(forwarded, [grads(t) for t in range(2)], loss=jnp.asarray(0.5))
    assert_trees_equal(out[0][0], grads(0))
    with pytest.raises(TypeError):
        no_kwargs = WRAPPERS[kind][0](inner, lambda step: step < 1, forward_extra_args=True)
        run(no_kwargs, [grads(0)], loss=jnp.asarray(0.5))
    # Not forwarded, the condition sees its default loss=inf and rejects the step, but
    # the inner update still gets the extra arguments.
    not_forwarded = run(WRAPPERS[kind][0](inner, below), [grads(0)], loss=jnp.asarray(0.5))
    expected = grads(0) if kind == "transform" else jax.tree.map(jnp.zeros_like, PARAMS)
    assert_trees_equal(not_forwarded[0][0], expected)
    assert seen == [["loss"]] * 2


def test_inner_update_runs_only_on_the_chosen_steps():
    calls = []
    tx = conditionally_mask(counting(optix.adam(0.1), calls), every_third)
    out = run(tx, [grads(t) for t in range(7)])
    jax.effects_barrier()
    assert len(calls) == 3  # steps 0, 3 and 6
    assert [bool(jnp.any(u["w"] != 0)) for u, _ in out] == [1, 0, 0, 1, 0, 0, 1]


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_jit_once_none_leaves_bf16_and_stable_state(kind):
    tx = WRAPPERS[kind][0](optix.adam(0.1), every_third)
    params = {"w": jnp.ones(3, jnp.bfloat16), "frozen": None}
    traces = []

    @jax.jit
    def step(g, state):
        traces.append(1)
        return tx.update(g, state, params, unknown=1)

    state = tx.init(params)
    for t in range(4):
        g = {"w": jnp.full(3, 0.5 + t, jnp.bfloat16), "frozen": None}
        u, new_state = step(g, state)
        assert u["w"].dtype == jnp.bfloat16 and u["frozen"] is None
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        assert [x.dtype for x in jax.tree.leaves(new_state)] == [
            x.dtype for x in jax.tree.leaves(state)
        ]
        state = new_state
    assert len(traces) == 1
    assert bool(jnp.all(u["w"] < 0))  # step 3 ran Adam on a positive gradient


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_a_condition_that_is_not_callable_raises(kind):
    name = WRAPPERS[kind][0].__name__
    with pytest.raises(
        TypeError, match=f"{name}: should_transform_fn must be a callable step -> bool, got"
    ):
        WRAPPERS[kind][0](optix.sgd(0.1), True)
