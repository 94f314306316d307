"""DoG and DoWG over the whole tree: step sizes from the distance travelled from the
initial parameters, with no learning rate to tune (Optax's ``optax.contrib`` versions)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, MaskOrFn, ScalarOrSchedule, chain, identity
from optix.optimizers.distance_over_gradients import dog_step
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import NO_PARAMS, add_decayed_weights
from optix.tree.casting import dtype as tree_dtype
from optix.tree.leafwise import compute_dtype, real_dtype, real_part
from optix.tree.math import norm
from optix.tree.structure import check_same_structure

InitStep = tuple[Literal["distance", "learning_rate", "heuristic"], jax.typing.ArrayLike]


class DoGState(NamedTuple):
    """State of ``scale_by_dog`` (Optax's ``optax.contrib.DoGState``)."""

    is_init_step: jax.Array  # bool scalar: no update applied yet
    init_params: Any  # the params at init
    max_dist: jax.Array  # scalar: the largest norm(p - p0) so far (r_eps at init)
    sum_sq_norm_grads: jax.Array  # scalar: sum of norm(g)**2 so far


class DoWGState(NamedTuple):
    """State of ``scale_by_dowg`` (Optax's ``optax.contrib.DoWGState``)."""

    init_params: Any  # the params at init
    weighted_sq_norm_grads: jax.Array  # scalar: sum of estim_sq_dist * norm(g)**2 so far
    estim_sq_dist: jax.Array  # scalar: the largest norm(p - p0)**2 so far


def _scalar(value: Any, params: Any) -> jax.Array:
    """A state scalar in the lowest dtype of the params, as Optax stores it."""
    return jnp.asarray(value, tree_dtype(params, "lowest"))


def _distances(updates: Any, params: Any, init_params: Any, *scalars: jax.Array):
    """(compute dtype, real dtype, norm(p - p0)**2, norm(g)**2), over all leaves together."""
    leaves = jax.tree.leaves(updates) + jax.tree.leaves(params)
    dt = compute_dtype(*leaves, *scalars)
    rdt = real_dtype(dt)
    diff = jax.tree.map(lambda p, p0: p.astype(dt) - p0.astype(dt), params, init_params)
    sq_dist = jnp.asarray(norm(diff, squared=True), rdt)
    sq_grad = jnp.asarray(norm(jax.tree.map(lambda g: g.astype(dt), updates), squared=True), rdt)
    return dt, rdt, sq_dist, sq_grad


def _scaled(step: jax.Array, updates: Any, dt: Any) -> Any:
    return jax.tree.map(lambda g: (step.astype(dt) * g.astype(dt)).astype(g.dtype), updates)


def _check_dog(fn: str, init_step: Any, eps: Any) -> tuple[str, Any]:
    if not isinstance(init_step, tuple | list) or len(init_step) != 2:
        raise TypeError(f"{fn}: init_step must be a pair (tag, value), got {init_step!r}")
    kind, value = init_step
    _checks.one_of(fn, "init_step[0]", kind, ("distance", "learning_rate", "heuristic"))
    _checks.positive(fn, init_step_value=value)
    _checks.non_negative(fn, eps=eps)
    return kind, value


def scale_by_dog(init_step: InitStep, eps: jax.typing.ArrayLike = 1e-8) -> GradientTransformation:
    """Scale the updates by DoG's step size, with norms over all leaves together.

    With g the incoming updates, p the params, p0 the params at init and norms over the
    whole tree:

        max_dist = max(max_dist, norm(p - p0))
        sum_sq_norm_grads = sum_sq_norm_grads + norm(g)**2
        eta = max_dist / sqrt(sum_sq_norm_grads + eps)
        eta = value                            at the first step, if kind == "learning_rate"
        u = eta * g

    where ``(kind, value) = init_step`` sets ``max_dist`` at init (r_eps in the paper):
    ``value`` ("distance"), ``value * (1 + norm(p0))`` ("heuristic") or 0
    ("learning_rate"). The result ascends; ``dog`` chains the learning rate. The
    layer-wise version is ``scale_by_distance_over_gradients``; both share ``dog_step``.

    Args:
        init_step: ``(kind, value)``, kind one of "distance", "learning_rate",
            "heuristic", value > 0. "heuristic" needs the real params at init.
        eps: Added to the sum of squared norms, >= 0.

    Returns:
        A GradientTransformation whose state is ``DoGState``; ``update`` needs params.

    References:
        Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
        Size Schedule", ICML 2023, arXiv:2302.12022.
        Checked against optax.contrib.dog and dog.DoG (the official dog-optimizer
        package) in tests/optimizers/test_dog.py.
    """
    fn = "scale_by_dog"
    kind, value = _check_dog(fn, init_step, eps)

    def init(params):
        if kind == "distance":
            r_eps = value
        elif kind == "heuristic":
            dt = compute_dtype(*jax.tree.leaves(params))
            r_eps = value * (1 + norm(jax.tree.map(lambda p: p.astype(dt), params)))
        else:
            r_eps = 0.0
        zero = _scalar(0.0, params)
        return DoGState(jnp.asarray(True), params, _scalar(r_eps, params), zero)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params, state=state.init_params)
        max_dist, sum_sq = state.max_dist, state.sum_sq_norm_grads
        dt, rdt, sq_dist, sq_grad = _distances(updates, params, state.init_params, max_dist)
        new_max_dist, new_sum_sq, eta = dog_step(
            real_part(max_dist).astype(rdt),
            jnp.sqrt(sq_dist),
            real_part(sum_sq).astype(rdt),
            sq_grad,
            jnp.asarray(eps, rdt),
        )
        if kind == "learning_rate":
            eta = jnp.where(state.is_init_step, jnp.asarray(value, rdt), eta)
        new_state = DoGState(
            jnp.asarray(False),
            state.init_params,
            new_max_dist.astype(max_dist.dtype),
            new_sum_sq.astype(sum_sq.dtype),
        )
        return _scaled(eta, updates, dt), new_state

    return GradientTransformation(init, update)


def _chain(fn, scaler, learning_rate, weight_decay, mask) -> GradientTransformation:
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, allow_none=True, weight_decay=weight_decay)
    return chain(
        identity() if weight_decay is None else add_decayed_weights(weight_decay, mask),
        scaler,
        scale_by_learning_rate(learning_rate),
    )


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: InitStep = ("heuristic", 1e-6),
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """DoG: ``chain(add_decayed_weights(weight_decay, mask), scale_by_dog(init_step, eps),
    scale_by_learning_rate(learning_rate))`` (no decay when ``weight_decay`` is None).

    Each step is ``p -= learning_rate * eta * (g + weight_decay * p)`` with eta from
    ``scale_by_dog``. The official DoG(reps_rel=a, lr=c, weight_decay=w) is
    ``dog(c, ("heuristic", a), weight_decay=w)``; its ``init_eta=e`` is
    ``init_step=("learning_rate", e)`` with learning_rate 1 (Optax multiplies that first
    step by the learning rate, the official code does not). The authors recommend
    averaging the iterates (``optix.ema_params``). Arguments: see ``scale_by_dog``;
    learning_rate (the paper's c, 1 recommended) is a number or a schedule.
    """
    _check_dog("dog", init_step, eps)
    return _chain("dog", scale_by_dog(init_step, eps), learning_rate, weight_decay, mask)


def scale_by_dowg(
    init_estim_sq_dist: jax.typing.ArrayLike | None = None, eps: jax.typing.ArrayLike = 1e-4
) -> GradientTransformation:
    """Scale the updates by DoWG's step size, with norms over all leaves together.

    With g the incoming updates, p the params, p0 the params at init and norms over the
    whole tree:

        estim_sq_dist = max(estim_sq_dist, norm(p - p0)**2)
        weighted_sq_norm_grads = weighted_sq_norm_grads + estim_sq_dist * norm(g)**2
        u = estim_sq_dist / (sqrt(weighted_sq_norm_grads) + eps) * g

    ``estim_sq_dist`` (the paper's rbar**2) starts at ``init_estim_sq_dist`` (r_eps**2),
    or ``eps`` when that is None. The paper's rule has eps = 0. The result ascends;
    ``dowg`` chains the learning rate.

    Args:
        init_estim_sq_dist: Initial guess of the squared distance to a solution, > 0,
            or None.
        eps: Added to the denominator, >= 0; the initial squared distance by default.

    Returns:
        A GradientTransformation whose state is ``DoWGState``; ``update`` needs params.

    References:
        Khaled, Mishchenko & Jin, "DoWG Unleashed: An Efficient Universal Parameter-Free
        Gradient Descent Method", NeurIPS 2023, arXiv:2305.16284, Algorithm 1.
        Checked against optax.contrib.dowg and a NumPy transliteration of Algorithm 1
        in tests/optimizers/test_dog.py.
    """
    fn = "scale_by_dowg"
    _checks.positive(fn, allow_none=True, init_estim_sq_dist=init_estim_sq_dist)
    _checks.non_negative(fn, eps=eps)

    def init(params):
        first = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(params, _scalar(0.0, params), _scalar(first, params))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params, state=state.init_params)
        estim, weighted = state.estim_sq_dist, state.weighted_sq_norm_grads
        dt, rdt, sq_dist, sq_grad = _distances(updates, params, state.init_params, estim)
        new_estim = jnp.maximum(real_part(estim).astype(rdt), sq_dist)
        new_weighted = new_estim * sq_grad + real_part(weighted).astype(rdt)
        eta = new_estim / (jnp.sqrt(new_weighted) + jnp.asarray(eps, rdt))
        new_state = DoWGState(
            state.init_params, new_weighted.astype(weighted.dtype), new_estim.astype(estim.dtype)
        )
        return _scaled(eta, updates, dt), new_state

    return GradientTransformation(init, update)


def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: jax.typing.ArrayLike | None = None,
    eps: jax.typing.ArrayLike = 1e-4,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """DoWG: ``chain(add_decayed_weights(weight_decay, mask), scale_by_dowg(init_estim_sq_dist,
    eps), scale_by_learning_rate(learning_rate))`` (no decay when ``weight_decay`` is None).

    Each step is ``p -= learning_rate * eta * (g + weight_decay * p)`` with eta from
    ``scale_by_dowg``. Arguments: see ``scale_by_dowg``; learning_rate (1 in the paper)
    is a number or a schedule.
    """
    scaler = scale_by_dowg(init_estim_sq_dist, eps)
    return _chain("dowg", scaler, learning_rate, weight_decay, mask)
