"""SophiaG: the official Sophia, with the Gauss-Newton-Bartlett Hessian estimate."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    with_extra_args_support,
    zero_count,
)
from optix.optimizers.sophia import SophiaState, _check, _first_moment, hessian_ema
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import zeros_like


class GaussNewtonBartlettState(NamedTuple):
    """State of ``gauss_newton_bartlett_estimator``: the PRNG key of the next labels."""

    key: jax.Array


def gnb_hessian_diagonal(logits_fn: Callable[[Any], jax.Array], params: Any, key: jax.Array) -> Any:
    """One Gauss-Newton-Bartlett estimate of the Hessian diagonal of a softmax loss.

    With logits = ``logits_fn(params)`` of shape (..., C), B = logits.size // C positions:

        y ~ Categorical(softmax(logits))          (labels sampled from the model)
        g = grad of mean_b cross_entropy(logits_b, y_b) with respect to params
        h = B * g * g

    E[h] is the diagonal of the Gauss-Newton matrix of the summed loss. The official
    code multiplies by B (its ``bs``) in the step; here it is in the estimate.

    References:
        Liu et al., arXiv:2305.14342, Algorithm 2; official code Liuhong99/Sophia
        (train_sophiag.py: ``y_sample``, ``optimizer.update_hessian()``).
    """
    logits, pullback = jax.vjp(logits_fn, params)
    num_classes = logits.shape[-1]
    batch = logits.size // num_classes
    labels = jax.random.categorical(key, jax.lax.stop_gradient(logits), axis=-1)
    dt = compute_dtype(logits)
    probs = jax.nn.softmax(logits.astype(dt), axis=-1)
    d_logits = (probs - jax.nn.one_hot(labels, num_classes, dtype=dt)) / batch
    (g,) = pullback(d_logits.astype(logits.dtype))
    return jax.tree.map(lambda x: (batch * (x.astype(dt) * x.astype(dt))).astype(x.dtype), g)


def gauss_newton_bartlett_estimator(
    random_seed: jax.Array | int | None = None,
) -> GradientTransformation:
    """``gnb_hessian_diagonal`` as a transformation: ``update(g, state, params,
    logits_fn=f)`` returns the estimate (``g`` is ignored) and splits the key.

    Args:
        random_seed: PRNG key (or int seed) of the first labels; None: ``PRNGKey(0)``.

    Returns:
        A GradientTransformation whose state is ``GaussNewtonBartlettState``.
    """
    fn = "gauss_newton_bartlett_estimator"
    if isinstance(random_seed, numbers.Integral) and not isinstance(random_seed, bool):
        random_seed = jax.random.PRNGKey(int(random_seed))
    elif random_seed is not None and not isinstance(random_seed, jax.Array):
        raise TypeError(
            f"{fn}: random_seed must be a PRNG key, an int or None, got {random_seed!r}"
        )

    def init(params):
        del params
        return GaussNewtonBartlettState(
            jax.random.PRNGKey(0) if random_seed is None else random_seed
        )

    def update(updates, state, params=None, *, logits_fn=None, **extra_args):
        del updates, extra_args
        if params is None or logits_fn is None:
            raise ValueError(
                f"{fn}: update needs params and the keyword argument logits_fn "
                "(params -> logits of shape (..., num_classes))"
            )
        key, sample_key = jax.random.split(state.key)
        return gnb_hessian_diagonal(logits_fn, params, sample_key), GaussNewtonBartlettState(key)

    return GradientTransformation(init, update)


def scale_by_sophia_g(
    b1: float = 0.965,
    b2: float = 0.99,
    rho: float = 0.04,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """The official SophiaG step (Liuhong99/Sophia ``sophia.py``), without learning rate.

    For each leaf, with g the incoming update and h the estimator's output
    (``gauss_newton_bartlett_estimator`` by default: B * g_sampled**2):

        if count % update_interval == 0 and count > 0:   nu = b2 * nu + (1 - b2) * h
        mu = b1 * mu + (1 - b1) * g
        u = sign(mu) * min(|mu| / (rho * nu + 1e-15), 1)

    No bias correction. The official loop updates the Hessian after the step of
    iteration k - 1, 2k - 1, ... with the new params, which is before the step of
    iteration k, 2k, ...: here, at the params of that step. Until the first estimate
    nu = 0 and u = sign(mu). The official ``rho * bs * hessian`` is ``rho * nu`` here
    (B is in the estimate). Optax's ``scale_by_sophia`` differs: bias-corrected mu,
    ``mu / max(gamma * nu, eps)`` clipped, estimates from step 0 on.

    Args:
        b1: Decay of the gradient EMA, in [0, 1).
        b2: Decay of the Hessian EMA per estimate, in [0, 1).
        rho: Clipping scale, > 0 (the official 0.03-0.05; the paper's gamma).
        update_interval: Steps between estimates (the official ``hess_interval``), >= 1.
        hessian_diagonal_fn: The estimator (default GNB, which needs ``logits_fn``).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.

    References:
        Liu et al., arXiv:2305.14342, Algorithm 3.
        Checked against the official SophiaG (``sophia_opt.SophiaG``) in
        tests/optimizers/test_sophia.py.
    """
    fn = "scale_by_sophia_g"
    _check(fn, b1, b2, update_interval, mu_dtype)
    _checks.positive(fn, rho=rho)
    estimator = (
        gauss_newton_bartlett_estimator() if hessian_diagonal_fn is None else hessian_diagonal_fn
    )
    hessian_fn = with_extra_args_support(estimator)

    def init(params):
        _checks.real_params("scale_by_sophia_g", params, "a Hessian of real variables")
        return SophiaState(
            zero_count(), zeros_like(params, mu_dtype), zeros_like(params), hessian_fn.init(params)
        )

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_sophia_g: update needs params (the Hessian is taken there)")
        when = (state.count % update_interval == 0) & (state.count > 0)
        fn_state, nu = hessian_ema(hessian_fn, when, updates, state, params, extra_args, b2)
        mu = _first_moment(updates, state.mu, b1)

        def leaf(m, n, g):
            dt = m.dtype
            ratio = jnp.abs(m) / (jnp.asarray(rho, dt) * n.astype(dt) + jnp.asarray(1e-15, dt))
            return ((jnp.sign(m) * jnp.minimum(ratio, 1)).astype(g.dtype),)

        u = map_leaves(leaf, mu, nu, updates, n_out=1)[0]
        mu = jax.tree.map(lambda m, old: m.astype(old.dtype), mu, state.mu)
        return u, SophiaState(safe_increment(state.count), mu, nu, fn_state)

    return GradientTransformation(init, update)


def sophia_g(
    learning_rate: ScalarOrSchedule = 1e-4,
    b1: float = 0.965,
    b2: float = 0.99,
    rho: float = 0.04,
    weight_decay: ScalarOrSchedule = 0.1,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation | None = None,
    mask: MaskOrFn = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """The official SophiaG: ``scale_by_sophia_g``, decoupled weight decay, learning rate.

    Each step is ``p = p * (1 - learning_rate * weight_decay) - learning_rate * u`` (the
    official ``param.mul_(1 - lr * weight_decay)`` then ``addcmul_``), with u from
    ``scale_by_sophia_g``; call ``update(grads, state, params, logits_fn=f)`` with f the
    model's logits on the batch (GNB estimator). Defaults are the official ones
    (lr 1e-4, betas (0.965, 0.99), rho 0.04, weight decay 0.1). Arguments: see
    ``scale_by_sophia_g``.
    """
    _checks.finite("sophia_g", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("sophia_g", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_sophia_g(b1, b2, rho, update_interval, hessian_diagonal_fn, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
