"""masked: Optax's numbers and state layout, the identity law, nnx.State, None leaves,
bf16, extra args, jit, and errors that say where a mask's structure goes wrong."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.core import freeze as frozen_dict
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.core import GradientTransformation
from optix.transforms.labels import ndim_at_least
from optix.transforms.masking import MaskedNode, MaskedState, masked
from tests.reference import initial_params, run_jax
from tests.transforms.basics import check_basics
from tests.transforms.group_helpers import (
    NnxMLP,
    assert_same_trajectory,
    layout,
    linen_params,
    run_optax,
)

MASKS = {
    "tree": {"w": True, "b": False, "s": True},
    "function": lambda p: jax.tree.map(lambda x: np.ndim(x) >= 1, p),
    "prefix_true": True,
    "prefix_false": False,
}
INNER = {
    "scale_by_adam": lambda m: m.scale_by_adam(b1=0.8),
    "trace_nesterov": lambda m: m.trace(0.9, nesterov=True),
    "ema": lambda m: m.ema(0.7),
    "adamw_chain": lambda m: m.chain(m.scale_by_adam(), m.add_decayed_weights(0.1), m.scale(-0.05)),
}
SAME_LAYOUT = ["scale_by_adam", "trace_nesterov", "ema"]  # adamw_chain: optix keeps a count


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("inner", INNER)
def test_matches_optax_numbers(x64, inner, mask):
    ours = run_jax(masked(INNER[inner](optix), MASKS[mask]), np.float64)
    theirs = run_optax(optax.masked(INNER[inner](optax), MASKS[mask]))
    assert_same_trajectory(ours, theirs, rtol=1e-10)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("inner", SAME_LAYOUT)
def test_matches_optax_state_layout(inner, mask):
    params = initial_params()
    ours = masked(INNER[inner](optix), MASKS[mask]).init(params)
    theirs = optax.masked(INNER[inner](optax), MASKS[mask]).init(params)
    assert layout(ours) == layout(theirs)
    assert isinstance(ours, MaskedState)
    if mask == "tree":
        flat = jax.tree_util.tree_flatten_with_path(
            ours.inner_state, is_leaf=lambda x: isinstance(x, MaskedNode)
        )[0]
        by_key = {}
        for path, leaf in flat:
            if path and isinstance(path[-1], jax.tree_util.DictKey):
                by_key.setdefault(path[-1].key, []).append(leaf)
        assert by_key["b"] and all(leaf == MaskedNode() for leaf in by_key["b"])
        assert all(leaf.shape == (3, 4) for leaf in by_key["w"])


def test_nested_masks_match_optax(x64):
    def build(m):
        return m.masked(m.masked(m.trace(0.5), {"w": True, "b": True, "s": False}), MASKS["tree"])

    assert_same_trajectory(run_jax(build(optix), np.float64), run_optax(build(optax)), 1e-10)
    assert layout(build(optix).init(initial_params())) == layout(
        build(optax).init(initial_params())
    )


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
trees = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), elements=finite),
    min_size=1,
)


@settings(deadline=None, max_examples=40)
@given(trees, st.sampled_from(["scale", "scale_by_adam", "trace"]))
def test_an_all_false_mask_is_the_identity(tree, name):
    inner = {
        "scale": optix.scale(7.0),
        "scale_by_adam": optix.scale_by_adam(),
        "trace": optix.trace(0.9),
    }
    tx = masked(inner[name], lambda p: jax.tree.map(lambda _: False, p))
    tree = jax.tree.map(jnp.asarray, tree)
    state = tx.init(tree)
    for _ in range(3):
        out, state = tx.update(tree, state, tree)
        jax.tree.map(np.testing.assert_array_equal, out, tree)
    # The inner state holds nothing for the hidden leaves: only step counts remain.
    assert all(leaf.shape == () for leaf in jax.tree.leaves(state))


def test_an_all_true_mask_equals_the_inner_transformation_exactly():
    ours = run_jax(masked(optix.adam(0.1), True), np.float32)
    plain = run_jax(optix.adam(0.1), np.float32)
    assert_same_trajectory(ours, plain, rtol=0)


def test_masked_updates_pass_through_unchanged_and_selected_ones_are_transformed():
    g = {"w": jnp.ones((3, 4)), "b": jnp.full(4, 2.0), "s": jnp.asarray(3.0)}
    tx = masked(optix.scale(-0.5), MASKS["tree"])
    out, _ = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(out["b"], g["b"])
    np.testing.assert_array_equal(out["w"], -0.5 * g["w"])
    np.testing.assert_array_equal(out["s"], -1.5)


def tagging(kind=GradientTransformation):
    """Multiplies each update by the matching leaf of the extra argument ``tags``."""

    def update(updates, state, params=None, *, tags, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda u, t: u * t, updates, tags), state

    return kind(lambda params: optix.EmptyState(), update)


def test_mask_compatible_extra_args_hides_them_like_optax():
    g = {"w": jnp.ones((3, 4)), "b": jnp.ones(4), "s": jnp.asarray(1.0)}
    tags = {"w": jnp.full((3, 4), 2.0), "b": jnp.full(4, 3.0), "s": jnp.asarray(4.0)}
    tx = masked(tagging(), MASKS["tree"], mask_compatible_extra_args=True)
    theirs = optax.masked(
        tagging(optax.GradientTransformationExtraArgs),
        MASKS["tree"],
        mask_compatible_extra_args=True,
    )
    out, _ = tx.update(g, tx.init(g), tags=tags)
    expected, _ = theirs.update(g, theirs.init(g), tags=tags)
    jax.tree.map(np.testing.assert_array_equal, out, expected)
    np.testing.assert_array_equal(out["b"], 1.0)  # hidden: tags never reached it
    np.testing.assert_array_equal(out["w"], 2.0)
    # Without the flag the full-size tags reach the inner update, which cannot pair them.
    plain = masked(tagging(), MASKS["tree"])
    with pytest.raises(ValueError):
        plain.update(g, plain.init(g), tags=tags)


def test_extra_args_reach_the_inner_transformation():
    seen = {}

    def update(updates, state, params=None, **extra_args):
        seen.update(extra_args)
        return updates, state

    tx = masked(GradientTransformation(lambda p: optix.EmptyState(), update), True)
    g = {"w": jnp.ones(2)}
    tx.update(g, tx.init(g), value=jnp.asarray(1.5), unknown="x")
    assert set(seen) == {"value", "unknown"}


def test_none_leaves_stay_none_and_bf16_stays_bf16():
    params = {"w": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(2, jnp.bfloat16), "frozen": None}
    grads = {
        "w": jnp.full((2, 2), 0.5, jnp.bfloat16),
        "b": jnp.ones(2, jnp.bfloat16),
        "frozen": None,
    }
    tx = masked(optix.adam(0.1), ndim_at_least(2))
    state = tx.init(params)
    out, new_state = tx.update(grads, state, params)
    assert out["frozen"] is None
    assert out["w"].dtype == out["b"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(out["b"], grads["b"])
    np.testing.assert_allclose(np.asarray(out["w"], np.float32), -0.1, rtol=1e-2)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


@pytest.mark.parametrize("mask", ["function", "prefix_true", "prefix_false"])
def test_basics(mask):
    # jit compiles once, stable state, bf16/f16/f64 kept, extra args, None leaves.
    check_basics(masked(optix.adam(0.1), MASKS[mask]))


def test_works_on_flax_linen_frozen_dict_params_like_optax(x64):
    params = jax.tree.map(lambda p: p.astype(jnp.float64), frozen_dict(linen_params()))
    grads = jax.tree.map(lambda p: jnp.sin(p + 1.0), params)
    ours, theirs = (
        masked(optix.adam(0.1), ndim_at_least(2)),
        optax.masked(optax.adam(0.1), ndim_at_least(2)),
    )
    out, _ = ours.update(grads, ours.init(params), params)
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = theirs.update(grads, theirs.init(params), params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), out, expected)
    assert type(out).__name__ == "FrozenDict"


def train_nnx(tx, steps=3):
    model = NnxMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jnp.linspace(-1.0, 1.0, 15, dtype=jnp.float32).reshape(5, 3)
    for _ in range(steps):
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        with jax.numpy_dtype_promotion("standard"):
            optimizer.update(model, grads)
    return nnx.state(model, nnx.Param)


def test_works_in_nnx_optimizer_like_optax():
    # nnx.Optimizer calls init on an nnx.State of Param variables and update on bare
    # arrays: the mask function is evaluated on each.
    def build(m):
        vectors = lambda p: jax.tree.map(lambda x: np.ndim(x) < 2, p)
        return m.chain(m.masked(m.adam(0.1), ndim_at_least(2)), m.masked(m.set_to_zero(), vectors))

    ours, theirs = train_nnx(build(optix)), train_nnx(build(optax))
    untouched = nnx.state(NnxMLP(nnx.Rngs(0)), nnx.Param)
    # float32: Optax's bias correction is off by up to ~7e-6 relative in float32.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), ours, theirs)
    np.testing.assert_array_equal(ours["first"]["bias"][...], untouched["first"]["bias"][...])
    assert not np.allclose(ours["first"]["kernel"][...], untouched["first"]["kernel"][...])


def test_map_params_sees_through_masked_like_optax():
    # map_params runs init on a placeholder; masked passes it to the inner init, as Optax.
    params = initial_params()
    results = []
    for m, map_params in (
        (optix, optix.tree.map_params),
        (optax, optax.tree_utils.tree_map_params),
    ):
        tx = m.masked(m.trace(0.5), MASKS["tree"])
        results.append(map_params(tx, lambda x: x + 1.0, tx.init(params)))
    ours, theirs = results
    assert layout(ours) == layout(theirs)
    np.testing.assert_array_equal(ours.inner_state.trace["w"], 1.0)
    assert ours.inner_state.trace["b"] == MaskedNode()


@pytest.mark.parametrize(
    ("mask", "params", "message"),
    [
        (
            {"w": True, "b": {"kernal": True}},
            {"w": jnp.ones(2), "b": {"kernel": jnp.ones(2)}},
            "at ['b'], the mask has ['kernal'], which the params lack; the params have "
            "['kernel'], which the mask lacks",
        ),
        (
            {"w": True, "b": True},
            frozen_dict({"w": jnp.ones(2), "b": jnp.ones(2)}),
            "at the root, the mask has a dict with keys ['b'], ['w'], the params have a "
            "FrozenDict with keys ['b'], ['w']",
        ),
        (
            {"w": True, "b": (True, False)},
            {"w": jnp.ones(2), "b": [jnp.ones(2), jnp.ones(2)]},
            "at ['b'], the mask has a tuple with keys [0], [1], the params have a list",
        ),
        (
            {"w": True},
            {"w": jnp.ones(2), "b": jnp.ones(2)},
            "the params have ['b'], which the mask lacks",
        ),
    ],
)
def test_a_mask_that_is_not_a_prefix_says_where_and_how(mask, params, message):
    with pytest.raises(ValueError) as info:
        masked(optix.trace(0.5), mask).init(params)
    text = str(info.value)
    assert text.startswith("masked: the mask must have the structure of the params, or be a prefix")
    assert message in text
    assert "pass a function of the params" in text


def test_a_mask_computed_from_traced_values_is_refused_with_the_reason():
    tx = masked(optix.scale(2.0), lambda p: jax.tree.map(lambda x: x > 0, p))
    g = {"w": jnp.ones(())}
    with pytest.raises(TypeError, match=r"masked: the mask must hold Python bools.*\['w'\]"):
        jax.jit(tx.update)(g, tx.init(g))


def test_a_mask_with_one_bool_per_element_is_refused_with_the_fix():
    tx = masked(optix.scale(2.0), {"w": np.array([True, False])})
    with pytest.raises(
        TypeError, match=r"one bool for a whole params leaf.*shape \(2,\) at \['w'\]"
    ):
        tx.init({"w": jnp.ones(2)})
