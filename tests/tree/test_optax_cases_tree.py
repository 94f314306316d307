"""Optax's own tree cases (optax/tree_utils/{_casting,_random,_tree_math,_state_utils}_test.py),
run on optix's ``tree_utils`` names, against NumPy and against Optax on the same states."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jrd
import jax.tree_util as jtu
import numpy as np
import optax
import pytest

import optix
import optix.tree_utils as tu

# _casting_test.py


def two_leaves(b, c, dtype=None):
    return {"a": {"b": jnp.array(b, dtype)}, "c": jnp.array(c, dtype)}


@pytest.mark.parametrize(
    ("dtype", "b", "c", "new_b", "new_c"),
    [
        (jnp.float32, [1.3, 2.001, 3.6], [-3.3], [1.3, 2.001, 3.6], [-3.3]),
        (jnp.float32, [1.3, 2.001, 3.6], [-3], [1.3, 2.001, 3.6], [-3.0]),
        (jnp.int32, [1.3, 2.001, 3.6], [-3.3], [1, 2, 3], [-3]),
        (jnp.int32, [1.3, 2.001, 3.6], [-3], [1, 2, 3], [-3]),
        (None, [1.123, 2.33], [0.0], [1.123, 2.33], [0.0]),
        (None, [1, 2, 3], [0.0], [1, 2, 3], [0.0]),
    ],
)
def test_cast_truncates_to_integers_and_none_keeps_dtypes(dtype, b, c, new_b, new_c):
    got = tu.tree_cast(two_leaves(b, c), dtype)
    expected = two_leaves(new_b, new_c)
    jax.tree.map(np.testing.assert_array_equal, got, expected)
    if dtype is not None:
        assert all(x.dtype == dtype for x in jax.tree.leaves(got))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.int32])
def test_cast_like_takes_each_leafs_dtype(dtype):
    tree = two_leaves([1.3, 2.001, 3.6], [-3.3])
    target = jax.tree.map(lambda x: x.astype(dtype), tree)
    got = tu.tree_cast_like(tree, target)
    jax.tree.map(np.testing.assert_array_equal, got, target)
    assert all(x.dtype == dtype for x in jax.tree.leaves(got))


def test_dtype_of_mixed_and_empty_trees():
    assert tu.tree_dtype(two_leaves(1.0, 2.0, jnp.float32)) == jnp.float32
    mixed = {"a": {"b": jnp.array(1.0, jnp.bfloat16)}, "c": jnp.array(2.0, jnp.float32)}
    with pytest.raises(ValueError):
        tu.tree_dtype(mixed)
    assert tu.tree_dtype(mixed, "lowest") == jnp.bfloat16
    assert tu.tree_dtype(mixed, "highest") == jnp.float32
    halves = {"a": jnp.array(1.0, jnp.bfloat16), "c": jnp.array(2.0, jnp.float16)}
    assert tu.tree_dtype(halves, "promote") == jnp.float32
    for handler in ("lowest", "highest"):
        with pytest.raises(ValueError):
            tu.tree_dtype(halves, handler)
    for empty in ({}, [], (), None):
        assert tu.tree_dtype(empty) == jnp.asarray(1.0).dtype


# _random_test.py


def test_split_key_like_gives_one_split_key_per_leaf():
    key = jrd.key(0)
    tree = {"a": jnp.zeros(2), "b": {"c": [jnp.ones(3), jnp.zeros([4, 5])]}}
    keys = tu.tree_split_key_like(key, tree)
    assert jax.tree.structure(keys) == jax.tree.structure(tree)
    np.testing.assert_array_equal(
        jrd.key_data(jnp.stack(jax.tree.leaves(keys))), jrd.key_data(jrd.split(key, 3))
    )


RANDOM_TARGETS = {
    "real_array": jnp.asarray([1.0, 2.0]),
    "complex_array": jnp.asarray([1.0 + 2j, 3.0 + 20j]),
    "pytree": jax.tree.map(
        jnp.asarray, {"k1": 1.0, "k2": (2.0, 3.0), "k3": jnp.asarray([4.0, 5.0])}
    ),
}


@pytest.mark.parametrize(
    ("sampler", "dtype"),
    [
        (jrd.normal, None),
        (jrd.normal, "bfloat16"),
        (jrd.normal, "float32"),
        (jrd.rademacher, "int32"),
        (jrd.bits, "uint32"),
    ],
    ids=["normal", "normal_bf16", "normal_f32", "rademacher", "bits"],
)
def test_random_like_is_the_flat_sampler_with_split_keys(sampler, dtype):
    dtype = dtype and jnp.dtype(dtype)
    for name, target in RANDOM_TARGETS.items():
        got = tu.tree_random_like(jrd.key(0), target, sampler=sampler, dtype=dtype)
        leaves, treedef = jax.tree.flatten(target)
        assert jax.tree.structure(got) == treedef
        keys = jrd.split(jrd.key(0), treedef.num_leaves)
        for g, k, x in zip(jax.tree.leaves(got), keys, leaves, strict=True):
            np.testing.assert_array_equal(g, sampler(k, x.shape, dtype or x.dtype), err_msg=name)
            assert g.dtype == (dtype or x.dtype), name


# _tree_math_test.py

RNG = np.random.RandomState(0)
TREE_A = (RNG.randn(20, 10) + 1j * RNG.randn(20, 10), RNG.randn(20))
TREE_B = (RNG.randn(20, 10), RNG.randn(20))
ARRAY_A = RNG.randn(20) + 1j * RNG.randn(20)
ARRAY_B = RNG.randn(20)
DICT_A = (1.0, {"k1": 1.0, "k2": (1.0, 1.0)}, 1.0)
DICT_B = (1.0, {"k1": 2.0, "k2": (3.0, 4.0)}, 5.0)
DATA = {"tree_a": TREE_A, "tree_b": TREE_B, "dict_a": DICT_A, "dict_b": DICT_B}
DATA |= {"array_a": ARRAY_A, "array_b": ARRAY_B}


def flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def assert_tree_close(actual, expected, rtol=1e-6):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol), actual, expected)


def test_leafwise_arithmetic_on_complex_and_real_trees():
    cases = [
        (tu.tree_add, np.add),
        (tu.tree_sub, np.subtract),
        (tu.tree_mul, np.multiply),
        (tu.tree_div, np.divide),
    ]
    for ours, numpy_op in cases:
        assert_tree_close(ours(ARRAY_A, ARRAY_B), numpy_op(ARRAY_A, ARRAY_B))
        assert_tree_close(ours(TREE_A, TREE_B), jax.tree.map(numpy_op, TREE_A, TREE_B))
    assert_tree_close(tu.tree_scale(0.5, ARRAY_A), 0.5 * ARRAY_A)
    assert_tree_close(tu.tree_scale(0.5, TREE_A), jax.tree.map(lambda x: 0.5 * x, TREE_A))
    expected = jax.tree.map(lambda a, b: a + 0.5 * b, TREE_A, TREE_B)
    assert_tree_close(tu.tree_add_scale(TREE_A, 0.5, TREE_B), expected)
    np.testing.assert_allclose(tu.tree_add_scale(3, 0.1, 2), 3.2, rtol=1e-6)
    dict_a = jax.tree.map(jnp.array, DICT_A)
    assert_tree_close(tu.tree_add(dict_a, dict_a, dict_a), tu.tree_scale(3.0, dict_a))
    assert_tree_close(tu.tree_conj(TREE_A), jax.tree.map(np.conj, TREE_A))
    assert_tree_close(tu.tree_real(TREE_A), jax.tree.map(np.real, TREE_A))
    assert_tree_close(tu.tree_zeros_like(TREE_A), jax.tree.map(np.zeros_like, TREE_A))
    assert_tree_close(tu.tree_ones_like(TREE_A), jax.tree.map(np.ones_like, TREE_A))


def test_inner_products_and_sums_of_complex_and_real_trees():
    np.testing.assert_allclose(tu.tree_vdot(ARRAY_A, ARRAY_B), np.vdot(ARRAY_A, ARRAY_B), rtol=1e-5)
    assert float(tu.tree_vdot(DICT_A, DICT_B)) == 15.0
    expected = np.vdot(TREE_A[0], TREE_B[0]) + np.vdot(TREE_A[1], TREE_B[1])
    np.testing.assert_allclose(tu.tree_vdot(TREE_A, TREE_B), expected, rtol=1e-5)
    np.testing.assert_allclose(tu.tree_sum(ARRAY_A), np.sum(ARRAY_A), rtol=1e-5)
    total = np.sum(TREE_A[0]) + np.sum(TREE_A[1])
    np.testing.assert_allclose(tu.tree_sum(TREE_A), total, rtol=1e-5)
    np.testing.assert_allclose(tu.tree_sum(TREE_A, associative_reduction=True), total, rtol=1e-5)


@pytest.mark.parametrize("key", ["array_a", "tree_a", "dict_a", "tree_b", "dict_b", "array_b"])
def test_reductions_and_norms_of_each_tree(key):
    tree = DATA[key]
    values = flat(tree)
    if key.endswith("b"):
        assert float(tu.tree_max(tree)) == pytest.approx(np.max(values), rel=1e-6)
        assert float(tu.tree_min(tree)) == pytest.approx(np.min(values), rel=1e-6)
    assert int(tu.tree_size(tree)) == values.size
    np.testing.assert_allclose(tu.tree_norm(tree, ord=1), np.sum(np.abs(values)), rtol=1e-5)
    np.testing.assert_allclose(tu.tree_norm(tree, ord=jnp.inf), np.max(np.abs(values)), rtol=1e-6)
    np.testing.assert_allclose(tu.tree_norm(tree), np.sqrt(np.sum(np.abs(values) ** 2)), rtol=1e-5)


def test_max_and_min_skip_empty_leaves_whatever_their_dtype():
    assert float(tu.tree_min([jnp.ones([2, 3]), jnp.zeros([4, 0, 5])])) == 1.0
    for expected in (0, 10000, -10000, float("inf"), -float("inf")):
        for dtype in ("int8", "uint8", "float32"):
            for which in (tu.tree_min, tu.tree_max):
                assert which([expected, jnp.zeros(0, dtype)]) == expected


def test_allclose_clip_and_empty_trees():
    assert bool(tu.tree_allclose(1, 1)) and bool(tu.tree_allclose(1, 1 + 1e-7))
    assert not bool(tu.tree_allclose(1, 2))
    dict_a = jax.tree.map(jnp.array, DICT_A)
    assert_tree_close(tu.tree_clip(dict_a, 0, 0.5), tu.tree_scale(0.5, dict_a))
    assert_tree_close(tu.tree_clip(dict_a, None, 0.5), tu.tree_scale(0.5, dict_a))
    assert_tree_close(tu.tree_clip(dict_a, 2.0, None), tu.tree_scale(2.0, dict_a))
    for tree in [{}, (), [], None, {"key": [None, [None]]}]:
        assert tu.tree_sum(tree) == 0 and tu.tree_vdot(tree, tree) == 0


def test_infinity_moment_laws_and_none_updates():
    values = jnp.array([5.0, 7.0])
    zeros = jnp.zeros_like(values)
    update = tu.tree_update_infinity_moment
    np.testing.assert_allclose(update(values, values, decay=0.9, eps=0.0), values, rtol=1e-6)
    np.testing.assert_allclose(update(zeros, values, decay=0.9, eps=0.0), 0.9 * values, rtol=1e-6)
    np.testing.assert_allclose(update(-values, zeros, decay=0.9, eps=0.0), values, rtol=1e-6)
    np.testing.assert_allclose(update(zeros, zeros, decay=0.9, eps=1e-2), [1e-2, 1e-2], rtol=1e-6)
    m = jnp.array([1.0, 2.0, 3.0])
    assert tu.tree_add_scale(None, 1, m) is None
    assert tu.tree_update_moment(None, m, 1, 1) is None
    assert tu.tree_update_infinity_moment(None, m, 1, 1) is None
    assert tu.tree_update_moment_per_elem_norm(None, m, 1, 1) is None


def test_bias_correction_of_bf16_moments_is_finite():
    m = jnp.logspace(-10, 10, num=21, dtype=jnp.bfloat16)
    for decay in (0.9, 0.99, 0.999, 0.9995):
        for count in (1, 10, 100, 1000):
            corrected = tu.tree_bias_correction(m, decay, count)
            assert bool(jnp.all(jnp.isfinite(corrected))), (decay, count)


# _state_utils_test.py


@dataclasses.dataclass
class ShardSpec:
    axis: Any


FAKE_PARAMS = {
    "my/fake/module": {"w": jnp.zeros((1, 2)), "b": jnp.zeros((3, 4))},
    "my/other/fake/module": {"w": jnp.zeros((1, 2)), "b": jnp.zeros((3, 4))},
}
FAKE_SPECS = {
    "my/fake/module": {"w": ShardSpec(0), "b": ShardSpec(1)},
    "my/other/fake/module": {"w": ShardSpec(2), "b": ShardSpec(3)},
}


def specs_of(m, tx):
    """The sharding specs of ``tx``'s state, mapped from the params' specs."""
    map_params = optix.tree.map_params if m is optix else optax.tree_utils.tree_map_params
    return map_params(
        tx,
        lambda _, spec: spec,
        tx.init(FAKE_PARAMS),
        FAKE_SPECS,
        transform_non_params=lambda _: ShardSpec(None),
    )


def adam_with_dicts(m):
    """Adam with its state held in dicts instead of a NamedTuple."""
    inner = m.scale_by_adam()

    def init(params):
        state = inner.init(params)
        return {"count": state.count, "params": {"mu": state.mu, "nu": state.nu}}

    def update(updates, state, params=None):
        named = m.ScaleByAdamState(state["count"], state["params"]["mu"], state["params"]["nu"])
        updates, named = inner.update(updates, named, params)
        return updates, {"count": named.count, "params": {"mu": named.mu, "nu": named.nu}}

    return m.GradientTransformation(init, update)


@pytest.mark.parametrize("build", ["adam", "dict_adam"])
def test_map_params_gives_each_param_copy_its_spec(build):
    make = {
        "adam": lambda m: m.adam(1e-4),
        "dict_adam": lambda m: m.chain(adam_with_dicts(m), m.scale(1e-3)),
    }
    ours, theirs = specs_of(optix, make[build](optix)), specs_of(optax, make[build](optax))
    assert jax.tree.leaves(ours, is_leaf=lambda x: isinstance(x, ShardSpec)) == jax.tree.leaves(
        theirs, is_leaf=lambda x: isinstance(x, ShardSpec)
    )
    first = ours[0]
    mu = first.mu if build == "adam" else first["params"]["mu"]
    assert mu["my/other/fake/module"]["b"] == ShardSpec(3)
    assert (first.count if build == "adam" else first["count"]) == ShardSpec(None)


def test_map_params_through_inject_hyperparams_and_to_none():
    tx = optix.inject_hyperparams(optix.adamw)(learning_rate=1e-3)
    state = optix.tree.map_params(tx, lambda v: v + 1, tx.init(FAKE_PARAMS))
    np.testing.assert_allclose(state.hyperparams["learning_rate"], 1e-3)
    jax.tree.map(lambda x: np.testing.assert_array_equal(x, 1.0), state.inner_state[0].mu)
    adagrad = optix.adagrad(1e-4)
    state = optix.tree.map_params(adagrad, lambda _: None, adagrad.init({"a": jnp.zeros((1, 2))}))
    assert state == (optix.ScaleByRssState(sum_of_squares={"a": None}), optix.EmptyState())
    adam = optix.adam(optix.linear_schedule(1e-2, 1e-4, 10))
    state = optix.tree.map_params(
        adam, lambda v: 1, adam.init({"a": jnp.zeros((1, 2))}), transform_non_params=lambda _: None
    )
    assert state == (
        optix.ScaleByAdamState(count=None, mu={"a": 1}, nu={"a": 1}),
        optix.ScaleByScheduleState(count=None),
    )


def plain_paths(found):
    """Paths with either library's NamedTupleKey as a comparable tuple, and the values."""
    paths = [
        tuple(("nt", k.tuple_name, k.name) if type(k).__name__ == "NamedTupleKey" else k for k in p)
        for p, _ in found
    ]
    return paths, [v for _, v in found]


def nested_injected(m):
    inject = m.inject_hyperparams
    return m.chain(
        inject(m.sgd)(learning_rate=1.0),
        m.chain(m.adam(learning_rate=1.0), inject(m.adam)(learning_rate=1e-4)),
    )


def test_get_all_with_path_finds_what_optax_finds():
    params = jnp.array([1.0, 2.0, 3.0])
    assert tu.tree_get_all_with_path((), "foo") == [] == tu.tree_get_all_with_path(params, "foo")
    found = tu.tree_get_all_with_path(optix.scale_by_adam().init(params), "count")
    assert plain_paths(found) == ([(("nt", "ScaleByAdamState", "count"),)], [0])
    assert tu.tree_get_all_with_path(optix.adam(1.0).init(params), "apple") == []
    ours = plain_paths(
        tu.tree_get_all_with_path(nested_injected(optix).init(params), "learning_rate")
    )
    theirs = plain_paths(
        optax.tree_utils.tree_get_all_with_path(
            nested_injected(optax).init(params), "learning_rate"
        )
    )
    assert (
        ours[0]
        == theirs[0]
        == [
            (
                jtu.SequenceKey(0),
                ("nt", "InjectStatefulHyperparamsState", "hyperparams"),
                jtu.DictKey("learning_rate"),
            ),
            (
                jtu.SequenceKey(1),
                jtu.SequenceKey(1),
                ("nt", "InjectStatefulHyperparamsState", "hyperparams"),
                jtu.DictKey("learning_rate"),
            ),
        ]
    )
    np.testing.assert_allclose(ours[1], [1.0, 1e-4])
    state = {"hparams": {"learning_rate": 1.0}, "learning_rate": "foo"}
    assert len(tu.tree_get_all_with_path(state, "learning_rate")) == 2
    only_floats = tu.tree_get_all_with_path(
        state, "learning_rate", lambda _, v: isinstance(v, float)
    )
    assert only_floats == [((jtu.DictKey("hparams"), jtu.DictKey("learning_rate")), 1.0)]
    nested = tu.tree_get_all_with_path({"a": {"a": 1.0}}, "a")
    assert nested == [
        ((jtu.DictKey("a"),), {"a": 1.0}),
        ((jtu.DictKey("a"), jtu.DictKey("a")), 1.0),
    ]


def test_get_all_with_path_reaches_the_schedule_state_of_a_hyperparameter():
    tx = optix.inject_hyperparams(optix.sgd)(learning_rate=lambda x: x)
    with jax.numpy_dtype_promotion("standard"):  # the schedule gives the int32 count
        state = tx.init(jnp.ones(3))
    found = tu.tree_get_all_with_path(
        state, "learning_rate", lambda _, value: isinstance(value, tuple)
    )
    paths, values = plain_paths(found)
    assert paths == [
        (
            ("nt", "InjectStatefulHyperparamsState", "hyperparams_states"),
            jtu.DictKey("learning_rate"),
        )
    ]
    assert type(values[0]).__name__ == "WrappedScheduleState" and int(values[0].count) == 0


def noise_then_adam(m):
    return m.chain(m.add_noise(1.0, 0.9, 0), m.scale_by_adam())


def is_adam_state(path, _):
    return type(path[-1]).__name__ == "NamedTupleKey" and path[-1].tuple_name == "ScaleByAdamState"


def test_get_finds_one_value_or_says_there_are_several():
    params = jnp.array([1.0, 2.0, 3.0])
    state = optix.inject_hyperparams(optix.sgd)(learning_rate=42.0).init(params)
    assert float(tu.tree_get(state, "learning_rate")) == 42.0
    assert tu.tree_get(state, "ema") is None and tu.tree_get(state, "ema", default=7.0) == 7.0
    two = optix.chain(*[optix.inject_hyperparams(optix.sgd)(learning_rate=42.0)] * 2)
    with pytest.raises(KeyError):
        tu.tree_get(two.init(params), "learning_rate")
    plain = {"hparams": {"learning_rate": 1.0}, "learning_rate": "foo"}
    with pytest.raises(KeyError):
        tu.tree_get(plain, "learning_rate")
    assert tu.tree_get(plain, "learning_rate", filtering=lambda _, v: isinstance(v, float)) == 1.0
    state = noise_then_adam(optix).init(params)
    assert int(tu.tree_get(state, "count", filtering=is_adam_state)) == 0
    noise_state = tu.tree_get(state, "AddNoiseState")
    theirs = optax.tree_utils.tree_get(noise_then_adam(optax).init(params), "AddNoiseState")
    assert type(noise_state).__name__ == "AddNoiseState" and int(noise_state.count) == 0
    np.testing.assert_array_equal(jrd.key_data(noise_state.rng_key), jrd.key_data(theirs.rng_key))


def test_get_under_jit_reads_a_scheduled_learning_rate():
    params = jnp.array([1.0, 2.0, 3.0])
    tx = optix.inject_hyperparams(optix.sgd)(learning_rate=lambda x: 1 / (x + 1))
    state = tx.init(params)
    read = jax.jit(
        lambda s: tu.tree_get(s, "learning_rate", filtering=lambda _, v: isinstance(v, jnp.ndarray))
    )
    for i in range(4):
        _, state = tx.update(params, state)
        np.testing.assert_allclose(read(state), 1 / (i + 1), rtol=1e-6)


def test_set_replaces_hyperparameters_counts_subtrees_and_whole_states():
    params = jnp.array([1.0, 2.0, 3.0])
    for flat_tree in ((), params):
        with pytest.raises(KeyError):
            tu.tree_set(flat_tree, foo=1.0)
    tx = optix.inject_hyperparams(optix.adam)(learning_rate=1.0)
    state = tx.init(params)
    new_state = tu.tree_set(state, learning_rate=2.0, b1=3.0)
    assert tu.tree_get(new_state, "learning_rate") == 2.0 and tu.tree_get(new_state, "b1") == 3.0
    with pytest.raises(KeyError):
        tu.tree_set(state, ema=2.0)
    set_lr = jax.jit(lambda s, lr: tu.tree_set(s, learning_rate=lr))
    for i in range(4):
        state = set_lr(state, 1.0 / (i + 1))
        _, state = tx.update(params, state)
        np.testing.assert_allclose(tu.tree_get(state, "learning_rate"), 1.0 / (i + 1), rtol=1e-6)
    two_adams = optix.chain(optix.adam(1.0), optix.adam(1.0)).init(params)
    found = tu.tree_get_all_with_path(tu.tree_set(two_adams, count=2.0), "count")
    assert [v for _, v in found] == [2.0, 2.0]
    plain = {"hparams": {"learning_rate": 1.0}, "learning_rate": "foo"}
    new = tu.tree_set(plain, lambda _, v: isinstance(v, float), learning_rate=0.5)
    assert new == {"hparams": {"learning_rate": 0.5}, "learning_rate": "foo"}
    tree = {"a": {"a": 1.0}, "b": {"a": 1}}
    assert tu.tree_set(tree, lambda _, v: isinstance(v, float), a=2.0) == {
        "a": {"a": 2.0},
        "b": {"a": 1},
    }
    assert tu.tree_set(tree, lambda _, v: isinstance(v, dict), a={"c": 0.0}) == {
        "a": {"c": 0.0},
        "b": {"a": 1},
    }


def test_set_one_state_by_filter_or_by_its_class_name():
    params = jnp.array([1.0, 2.0, 3.0])
    state = noise_then_adam(optix).init(params)
    new = tu.tree_set(state, is_adam_state, count=jnp.array(42))
    assert int(new[1].count) == 42 and int(new[0].count) == 0
    np.testing.assert_array_equal(new[1].mu, jnp.zeros(3))
    replacement = type(state[0])(count=jnp.array(42), rng_key=jrd.key(7))
    new = tu.tree_set(state, AddNoiseState=replacement)
    assert new[0] is replacement and int(new[1].count) == 0
