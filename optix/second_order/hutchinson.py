"""Hutchinson's stochastic estimate of the Hessian diagonal, as a transformation."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp

from optix.core import GradientTransformation
from optix.tree.casting import cast_like
from optix.tree.random import random_like


class HutchinsonState(NamedTuple):
    """State of ``hutchinson_estimator_diag_hessian``: the PRNG key of the next draw."""

    key: jax.Array


def hutchinson_estimator_diag_hessian(
    random_seed: jax.Array | None = None,
) -> GradientTransformation:
    """Estimate the diagonal of the Hessian of ``obj_fn`` at ``params`` from one product.

    ``update(updates, state, params, obj_fn=f)`` ignores ``updates`` and returns, with
    z a fresh vector of independent random signs (+1 or -1, each with probability 1/2)
    shaped like ``params``:

        key, sample_key = split(key)
        z = rademacher(sample_key), one key per leaf, in each leaf's dtype
        u = z * (H z),   H z = jvp(grad(f), params, z)

    Since E[z_i z_j] = 1 if i == j else 0, E[u] = diag(H): the estimate is unbiased,
    with variance ``sum_{j != i} H_ij**2`` in entry i. Sophia's default Hessian
    estimator. The same key gives Optax's signs; Optax casts them all to the params'
    lowest dtype, which a mixed-dtype tree cannot take through ``jvp``, so here each
    leaf's signs are in that leaf's dtype (the same numbers wherever Optax runs).

    Args:
        random_seed: The PRNG key of the first draw (a typed key, a raw ``PRNGKey`` or
            an int seed); ``None`` uses ``jax.random.PRNGKey(0)``.

    Returns:
        A GradientTransformation whose ``update`` needs ``params`` and the keyword
        argument ``obj_fn`` (a function of the params to a scalar); state
        ``HutchinsonState``.

    References:
        Hutchinson, "A stochastic estimator of the trace of the influence matrix for
        Laplacian smoothing splines", 1989.
        Bekas, Kokiopoulou & Saad, "An estimator for the diagonal of a matrix", Applied
        Numerical Mathematics 2007.
        Checked against optax.contrib.hutchinson_estimator_diag_hessian in
        tests/second_order/test_hutchinson.py.
    """
    fn = "hutchinson_estimator_diag_hessian"
    if isinstance(random_seed, numbers.Integral) and not isinstance(random_seed, bool):
        random_seed = jax.random.PRNGKey(int(random_seed))
    elif random_seed is not None and not isinstance(random_seed, jax.Array):
        raise TypeError(
            f"{fn}: random_seed must be a PRNG key (jax.random.key(seed)), an int or None, "
            f"got random_seed={random_seed!r}"
        )

    def init(params):
        del params
        return HutchinsonState(key=jax.random.PRNGKey(0) if random_seed is None else random_seed)

    def update(updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args
        if params is None:
            raise ValueError(
                f"{fn}: update needs params, the point where the Hessian is taken: "
                "call update(updates, state, params, obj_fn=loss)"
            )
        if obj_fn is None:
            raise ValueError(
                f"{fn}: update needs the objective as the keyword argument obj_fn: "
                "call update(updates, state, params, obj_fn=loss)"
            )
        key, sample_key = jax.random.split(state.key)
        signs = random_like(sample_key, params, jax.random.rademacher, dtype=jnp.float32)
        # +-1 is exact in every dtype: each leaf's signs take that leaf's dtype.
        signs = cast_like(signs, params)
        h_signs = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return jax.tree.map(lambda h, z: h * z, h_signs, signs), HutchinsonState(key=key)

    return GradientTransformation(init, update)
