"""flatten: Optax's numbers and state layout, equal to the unflattened elementwise
optimizer, None leaves, mixed dtypes, extra arguments."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms.flatten import flatten
from tests.transforms.wrapper_helpers import (
    assert_signature_matches_optax,
    assert_trees_equal,
    grads,
    run,
    same_layout,
)


def test_signature_matches_optax():
    assert_signature_matches_optax(flatten, optax.flatten)


def test_same_numbers_and_state_layout_as_optax():
    grad_list = [grads(t) for t in range(5)]
    ours = run(flatten(optax.adam(0.1)), grad_list, standard=True)
    theirs = run(optax.flatten(optax.adam(0.1)), grad_list, standard=True)
    for (u, s), (u_ref, s_ref) in zip(ours, theirs, strict=True):
        assert same_layout(s, s_ref)
        assert_trees_equal(u, u_ref)
        assert_trees_equal(s, s_ref)
    assert ours[0][1][0].mu.shape == (6,)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
leaves = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), elements=finite
)


@settings(max_examples=15, deadline=None)
@given(st.dictionaries(st.sampled_from("abcd"), leaves, min_size=1))
def test_flattened_elementwise_optimizer_equals_the_plain_one(tree):
    params = jax.tree.map(jnp.asarray, tree)
    grad_list = [jax.tree.map(lambda p, t=t: jnp.cos(p + t), params) for t in range(3)]
    for (u, s), (u_ref, s_ref) in zip(
        run(flatten(optix.adam(0.1)), grad_list, params),
        run(optix.adam(0.1), grad_list, params),
        strict=True,
    ):
        assert_trees_equal(u, u_ref, rtol=1e-6)
        np.testing.assert_allclose(
            s[0].nu, jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(s_ref[0].nu)]), 1e-6
        )


def test_none_leaves_mixed_dtypes_extra_args_and_jit_once():
    seen, traces = [], []

    def update(updates, state, params=None, **extra_args):
        seen.append((updates.shape, updates.dtype, sorted(extra_args)))
        return updates, state

    tx = flatten(optix.chain(optix.GradientTransformation(optix.init_empty_state, update)))
    params = {"w": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(3), "frozen": None}

    @jax.jit
    def step(g):
        traces.append(1)
        return tx.update(g, tx.init(params), params, value=jnp.asarray(1.0))

    for t in range(2):
        g = {"w": jnp.full((2, 2), t, jnp.bfloat16), "b": jnp.arange(3.0) + t, "frozen": None}
        u, _ = step(g)
        assert u["frozen"] is None and u["w"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
        assert_trees_equal(u, g)
    assert len(traces) == 1 and seen == [((7,), jnp.float32, ["value"])]


def test_empty_tree():
    tx = flatten(optix.adam(0.1))
    state = tx.init({})
    updates, _ = tx.update({}, state, {})
    assert updates == {} and state[0].mu.shape == (0,)
