"""Compiled losses for tests: one XLA program per shape is far cheaper than eager ops."""

import functools
import inspect

import jax
import optax

from optix import losses

# Arguments that select code paths (Python values); everything else is traced.
STATIC = (
    "axis",
    "reduce_fn",
    "apply_softmax",
    "apply_sigmoid",
    "reduction",
    "ignore_background",
    "norm_degree",
)


def _jit(fn):
    names = [n for n in STATIC if n in inspect.signature(fn).parameters]
    return jax.jit(fn, static_argnames=names)


@functools.cache
def ours(name):
    """``optix.losses.<name>``, compiled."""
    return _jit(getattr(losses, name))


@functools.cache
def _optax(name):
    return _jit(getattr(optax.losses, name))


def theirs(name, *args, **kwargs):
    """``optax.losses.<name>``, compiled, traced with JAX's default promotion rules."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return _optax(name)(*args, **kwargs)
