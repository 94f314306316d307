"""Distance over gradients (layer-wise DoG): a step size from how far the parameters have
moved, over the root of the summed squared gradients; no learning rate to tune."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.casting import cast
from optix.tree.leafwise import abs_sq, compute_dtype, map_leaves, real_dtype
from optix.tree.shards import leaf_total
from optix.tree.structure import check_same_structure


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State of ``scale_by_distance_over_gradients`` (Optax's fields)."""

    max_dist: Any  # one scalar per leaf: the largest distance from init_params so far
    grad_sum_of_squares: Any  # one array of shape (1,) per leaf: sum of |g|**2 so far
    init_params: Any  # the params at init, in param_dtype


def dog_step(max_dist, dist, sum_of_squares, grad_sq, eps):
    """One DoG step on scalars: the running maximum distance, the running sum of squared
    gradient norms, and the step size ``max_dist / sqrt(sum_of_squares + eps)``.

    Shared by the layer-wise DoG here and the global one (``optix.optimizers.dog``).
    """
    max_dist = jnp.maximum(max_dist, dist)
    sum_of_squares = sum_of_squares + grad_sq
    return max_dist, sum_of_squares, max_dist / jnp.sqrt(sum_of_squares + eps)


def _norm(x: jax.Array) -> jax.Array:
    """The 2-norm of a whole leaf (all blocks of a split one)."""
    return jnp.sqrt(leaf_total(jnp.sum(abs_sq(x))))


def scale_by_distance_over_gradients(
    reps_rel: float = 1e-6,
    eps: float = 1e-8,
    param_dtype: jax.typing.DTypeLike | None = jnp.float32,
    global_scale: float = 1.0,
) -> GradientTransformation:
    """Scale each leaf by its distance travelled over the root of its summed squared
    gradients (layer-wise DoG).

    For each leaf, with g the incoming update, p the current parameter and p0 the
    parameter at init:

        max_dist = max(max_dist, norm(p - p0))
        grad_sum_of_squares = grad_sum_of_squares + sum(|g|**2)
        u = global_scale * max_dist / sqrt(grad_sum_of_squares + eps) * g

    with ``max_dist = reps_rel * (1 + norm(p0))`` at init, so the first step is small
    but not zero, and norms over the whole leaf. The result ascends: chain it with
    ``scale(-1.0)`` or pass ``global_scale=-1.0``. The authors recommend averaging the
    iterates (``optix.ema_params``).

    A scalar leaf gets a scalar update (Optax's comes out of shape ``(1,)``, the shape
    of ``grad_sum_of_squares``); the state is Optax's, ``grad_sum_of_squares`` in the
    default float dtype.

    Args:
        reps_rel: Relative size of the first step, > 0: 1e-4 for models with batch
            normalization, 1e-6 otherwise (the paper's advice).
        eps: Added under the square root, >= 0.
        param_dtype: Dtype of the stored ``init_params``; ``None`` keeps the params'.
        global_scale: Factor of every update, typically 1.0 or -1.0.

    Returns:
        A GradientTransformation whose state is ``ScaleByDistanceOverGradientsState``;
        ``update`` needs params.

    References:
        Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic
        Step Size Schedule", ICML 2023, arXiv:2302.12022 (LDoG, the layer-wise version).
        Checked against optax.scale_by_distance_over_gradients in
        tests/optimizers/test_distance_over_gradients.py.
    """
    fn = "scale_by_distance_over_gradients"
    _checks.positive(fn, reps_rel=reps_rel)
    _checks.non_negative(fn, eps=eps)
    _checks.finite(fn, global_scale=global_scale)
    _checks.floating_dtype(fn, param_dtype=param_dtype)

    def init_leaf(p):
        dt = compute_dtype(p)
        max_dist = jnp.asarray(reps_rel, real_dtype(dt)) * (1 + _norm(p.astype(dt)))
        return max_dist.astype(real_dtype(p.dtype)), jnp.zeros(1, jnp.result_type(float))

    def leaf(g, max_dist, sum_of_squares, p, p0):
        dt = compute_dtype(g, p, sum_of_squares)
        rdt = real_dtype(dt)
        d, s, eta = dog_step(
            max_dist.astype(rdt),
            _norm(p.astype(dt) - p0.astype(dt)),
            sum_of_squares.astype(rdt),
            jnp.sum(abs_sq(g.astype(dt))),
            jnp.asarray(eps, rdt),
        )
        eta = jnp.asarray(global_scale, rdt) * eta
        u = jnp.reshape(eta, ()) * g.astype(dt)
        return u.astype(g.dtype), d.astype(max_dist.dtype), s.astype(sum_of_squares.dtype)

    def init(params):
        max_dist, sum_of_squares = map_leaves(init_leaf, params, n_out=2)
        init_params = cast(params, param_dtype)
        return ScaleByDistanceOverGradientsState(max_dist, sum_of_squares, init_params)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params)
        updates, max_dist, sum_of_squares = map_leaves(
            leaf,
            updates,
            state.max_dist,
            state.grad_sum_of_squares,
            params,
            state.init_params,
            n_out=3,
        )
        new_state = ScaleByDistanceOverGradientsState(max_dist, sum_of_squares, state.init_params)
        return updates, new_state

    return GradientTransformation(init, update)
