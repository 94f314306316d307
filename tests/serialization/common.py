"""Exact tree comparisons, and the common suite's parameters and gradients."""

import jax
import numpy as np

from tests.optimizers.test_common import make_grads, make_params

__all__ = ["assert_identical", "make_grads", "make_params", "raw"]


def raw(x):
    """A leaf as a NumPy array; typed PRNG keys as their key data."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(x))
    return np.asarray(x)


def assert_identical(actual, expected):
    """Same tree (NamedTuple classes included), same dtypes, same bits."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_array_equal(raw(a), raw(e))
