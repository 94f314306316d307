"""Shared pieces of the wrapper tests: runs with Optax's promotion, call counting, signatures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import optix
from tests.test_optax_compat import positional_and_defaults

PARAMS = {"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.asarray([0.1, -0.3])}


def grads(t, params=PARAMS):
    """A deterministic gradient for step ``t``, shaped and typed like ``params``."""
    return jax.tree.map(lambda p: (jnp.sin(p * (t + 1)) + 0.1 * t).astype(p.dtype), params)


def run(tx, grad_list, params=PARAMS, standard=False, **extra_args):
    """``[(updates, state)]`` per jitted step with fixed params (``standard``: for Optax)."""
    with jax.numpy_dtype_promotion("standard" if standard else "strict"):
        state, out = tx.init(params), []
        step = jax.jit(lambda g, s: tx.update(g, s, params, **extra_args))
        for g in grad_list:
            updates, state = step(g, state)
            out.append((updates, state))
        return out


def _as_numpy(leaf):
    """A leaf as a NumPy array; a typed PRNG key (noise states) as its key data."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf))
    return np.asarray(leaf)


def assert_trees_equal(ours, theirs, rtol=0.0, atol=0.0):
    """Same structure up to NamedTuple classes, same leaves (bitwise when both are 0)."""
    ours_leaves, theirs_leaves = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(ours_leaves) == len(theirs_leaves)
    for a, b in zip(ours_leaves, theirs_leaves, strict=True):
        a, b = _as_numpy(a), _as_numpy(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a, b)
        if rtol or atol:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(a, b)


def same_layout(ours, theirs):
    """Whether two states have the same NamedTuple class names and field names throughout."""
    if hasattr(ours, "_fields") or hasattr(theirs, "_fields"):
        return (
            type(ours).__name__ == type(theirs).__name__
            and ours._fields == theirs._fields
            and all(same_layout(a, b) for a, b in zip(ours, theirs, strict=True))
        )
    if isinstance(ours, dict):
        return ours.keys() == theirs.keys() and all(same_layout(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, tuple | list):
        return len(ours) == len(theirs) and all(
            same_layout(a, b) for a, b in zip(ours, theirs, strict=True)
        )
    return True


def assert_signature_matches_optax(ours, theirs):
    """Optax's parameters, in order, with its defaults; optix may add keyword-only ones."""
    ours, theirs = positional_and_defaults(ours), positional_and_defaults(theirs)
    assert ours[: len(theirs)] == theirs
    assert all(kind.name == "KEYWORD_ONLY" for _, kind, _ in ours[len(theirs) :])


def counting(inner, calls):
    """``inner`` whose update appends to ``calls`` each time it really runs on the device.

    ``jax.debug.callback`` fires when the compiled computation executes that op: inside
    a ``lax.cond`` branch, only when that branch is taken; tracing alone never fires it.
    """

    def update(updates, state, params=None, **extra_args):
        jax.debug.callback(lambda: calls.append(1))
        return inner.update(updates, state, params, **extra_args)

    return optix.GradientTransformation(inner.init, update)
