"""Optax's own partition cases (optax/_src/combine_test.py and
optax/transforms/_combining_test.py), run on optix.

One deliberate difference: a transformation that no parameter is labelled with is an
error unless ``allow_unused=True`` (Optax silently builds it on an empty tree).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.partition import partition

PARAMS = jax.tree.map(jnp.asarray, {"a1": 1.0, "b1": 2.0, "z1": {"a2": 3.0, "z2": {"c1": 4.0}}})


def first_letters(tree):
    """Each leaf's label: the first letter of its key."""
    return {k: first_letters(v) if isinstance(v, dict) else k[0] for k, v in tree.items()}


def by_letter(tree, fns):
    return {k: by_letter(v, fns) if isinstance(v, dict) else fns[k[0]](v) for k, v in tree.items()}


@pytest.mark.parametrize("use_fn", [True, False], ids=["function", "tree"])
def test_each_label_gets_its_transformation_with_and_without_params(use_fn):
    labels = first_letters if use_fn else first_letters(PARAMS)
    tx = partition({"a": optix.scale(-1.0), "b": optix.ema(0.0), "c": optix.scale(2.0)}, labels)
    update = jax.jit(tx.update)
    expected_fns = {"a": lambda v: -v, "b": lambda v: v, "c": lambda v: 2.0 * v}
    grads = jax.tree.map(lambda x: x / 10.0, PARAMS)
    updates, state = update(grads, jax.jit(tx.init)(PARAMS), PARAMS)
    expected = by_letter(grads, expected_fns)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), updates, expected)
    # Again, with no params: the label function sees the updates.
    updates, _ = update(updates, state)
    expected = by_letter(expected, expected_fns)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), updates, expected)


class ArgNotEqual1Error(ValueError):
    pass


def test_a_group_that_needs_an_extra_arg_gets_it_and_a_plain_one_does_not():
    def update_with_arg(updates, state, params=None, *, arg, **extra_args):
        if arg != 1:
            raise ArgNotEqual1Error()
        return updates, state

    def update_without_arg(updates, state, params=None):
        return updates, state

    init = lambda params: {"mu": params}
    tx = partition(
        {
            "a": optix.GradientTransformation(init, update_without_arg),
            "b": optix.GradientTransformationExtraArgs(init, update_with_arg),
        },
        ("a", "b"),
    )
    params = ({"u": jnp.array([1])}, {"v": jnp.array([1])})
    state = tx.init(params)
    with pytest.raises(TypeError):
        tx.update(params, state)
    with pytest.raises(ArgNotEqual1Error):
        tx.update(params, state, arg=2, ignored_kwarg="hi")
    updates, _ = tx.update(params, state, arg=1, ignored_kwarg="hi")
    assert updates == params


NESTED = jax.tree.map(jnp.asarray, {"a": 1.0, "b": [2.0, 3.0], "c": {"d": 4.0, "e": (5.0, 6.0)}})
PREFIX_LABELS = {"a": 0, "b": [1, 0], "c": 1}


def groups(m):
    return {0: m.sgd(1.0), 1: m.adam(1.0, b1=0.0, b2=0.0), 2: m.trace(1.0)}


@pytest.mark.parametrize("use_fn", [True, False], ids=["function", "tree"])
def test_prefix_labels_with_an_unused_group_need_allow_unused(use_fn):
    labels = (lambda _: PREFIX_LABELS) if use_fn else PREFIX_LABELS
    grads = jax.tree.map(lambda x: x / 10.0, NESTED)
    ours = partition(groups(optix), labels, allow_unused=True)
    theirs = optax.partition(groups(optax), labels)
    updates, _ = jax.jit(ours.update)(grads, jax.jit(ours.init)(NESTED))
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = theirs.update(grads, theirs.init(NESTED))
    jax.tree.map(np.testing.assert_array_equal, updates, expected)
    # sgd(1) negates; adam with b1 = b2 = 0 gives -sign(g).
    np.testing.assert_allclose(updates["b"], [-1.0, -0.3], rtol=1e-6)
    np.testing.assert_allclose(updates["c"]["e"], [-1.0, -1.0], rtol=1e-6)
    # Deliberate difference: without allow_unused the unused group 2 is an error.
    with pytest.raises(ValueError, match="no parameter is labelled 2"):
        partition(groups(optix), labels).init(NESTED)


@pytest.mark.parametrize("use_fn", [True, False], ids=["function", "tree"])
def test_a_label_without_transformation_is_an_error_at_init(use_fn):
    labels = PREFIX_LABELS | {"a": 3}
    tx = partition(groups(optix), (lambda _: labels) if use_fn else labels, allow_unused=True)
    with pytest.raises(ValueError, match="the param labels 3 have no transformation"):
        jax.jit(tx.init)(NESTED)
