"""Optax's own conditionality cases (optax/transforms/_conditionality_test.py), run on optix:
apply_if_finite's analytic path with plain, stateful and extra-args SGD and under a
collective, and conditionally_transform / conditionally_mask around stateless and stateful
inner transformations."""

import jax
import jax.numpy as jnp
import pytest

import optix


def sgd_with_extra_args():
    def update(grads, state, params=None, *, foo=None, **extra_args):
        return grads, state

    extra = optix.GradientTransformationExtraArgs(lambda p: {"foo": 1}, update)
    return optix.chain(optix.sgd(1.0), extra)


BUILDERS = {
    "sgd": lambda: optix.sgd(1.0),
    "stateful_sgd": lambda: optix.sgd(1.0, momentum=0.0),
    "sgd_extra_args": sgd_with_extra_args,
}

# (input x of the gradient of p * x, expected p after the step, last_finite,
#  notfinite_count): two rejected NaN steps, a good step, two more rejected, then a NaN
#  step is let through since the limit of 2 consecutive rejections is reached.
PATH = [
    (1.0, -1.0, True, 0),
    (jnp.nan, -1.0, False, 1),
    (jnp.nan, -1.0, False, 2),
    (1.0, -2.0, True, 0),
    (jnp.nan, -2.0, False, 1),
    (jnp.nan, -2.0, False, 2),
]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_apply_if_finite_rejects_two_non_finite_steps_then_gives_in(name):
    tx = optix.apply_if_finite(BUILDERS[name](), 2)
    grad = jax.grad(jax.jit(lambda p, x: p * x))
    params = jnp.array(0.0)
    state = tx.init(params)
    for x, expected, last_finite, count in PATH:
        updates, state = tx.update(grad(params, jnp.asarray(x)), state, params)
        params = optix.apply_updates(params, updates)
        assert float(params) == expected
        assert bool(state.last_finite) == last_finite and int(state.notfinite_count) == count
    updates, state = tx.update(grad(params, jnp.asarray(jnp.nan)), state, params)
    assert bool(jnp.isnan(optix.apply_updates(params, updates)))
    assert int(state.total_notfinite) == 5


def test_apply_if_finite_with_nans_made_inside_a_mapped_step():
    # arctanh(2) is NaN: the NaN comes from inside the step, summed across a named axis.
    tx = optix.apply_if_finite(optix.sgd(1.0), 2)

    def step(params, state, x):
        grads = jax.lax.psum(jax.grad(lambda p, x: jnp.arctanh(x) * p)(params, x), "i")
        updates, state = tx.update(grads, state, params)
        return optix.apply_updates(params, updates), state

    step = jax.jit(jax.vmap(step, axis_name="i"))
    params = jnp.zeros([1])
    state = jax.tree.map(lambda x: x[None], tx.init(jnp.array(0.0)))
    half, two = jnp.full([1], 0.5), jnp.full([1], 2.0)
    for x, last_finite, count in [(half, True, 0), (two, False, 1), (two, False, 2)] * 2:
        params, state = step(params, state, x)
        assert bool(state.last_finite[0]) == last_finite
        assert int(state.notfinite_count[0]) == count
    params, state = step(params, state, two)
    assert int(state.total_notfinite[0]) == 5 and bool(jnp.isnan(params[0]))


WRAPPERS = {
    "transform": (optix.conditionally_transform, 1.0),
    "mask": (optix.conditionally_mask, 0.0),
}


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_the_inner_transformation_stops_after_three_steps(kind):
    wrapper, passed = WRAPPERS[kind]
    tx = wrapper(optix.scale(2.0), lambda step: step < 3)
    update = jax.jit(tx.update)
    state = tx.init(jnp.zeros([]))
    outputs = []
    for _ in range(8):
        updates, state = update(jnp.ones([]), state)
        outputs.append(float(updates))
    assert outputs == [2.0] * 3 + [passed] * 5


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_a_stateful_inner_state_freezes_when_the_condition_turns_false(kind):
    wrapper, _ = WRAPPERS[kind]
    tx = wrapper(optix.zero_nans(), lambda step: step < 3)
    update = jax.jit(tx.update)
    state = tx.init(jnp.zeros([]))
    nan, one = jnp.array(jnp.nan), jnp.ones([])
    for g, expected, found_nan in [(nan, 0.0, True), (nan, 0.0, True), (one, 1.0, False)]:
        updates, state = update(g, state)
        assert float(updates) == expected and bool(state.inner_state.found_nan) == found_nan
    for _ in range(5):
        updates, state = update(nan, state)
        # Not run any more: the NaN passes (transform) or is masked to 0 (mask).
        assert bool(jnp.isnan(updates)) if kind == "transform" else float(updates) == 0.0
        assert not bool(state.inner_state.found_nan)


def test_conditionally_mask_forwards_extra_args_to_the_condition():
    tx = optix.conditionally_mask(
        optix.scale(2.0), lambda step, loss, **extra_args: loss > 0.1, forward_extra_args=True
    )
    update = jax.jit(tx.update)
    state = tx.init(jnp.zeros([]))
    for loss, expected in [(0.2, 2.0)] * 3 + [(0.0, 0.0)] * 5:
        updates, state = update(jnp.ones([]), state, loss=loss)
        assert float(updates) == expected
