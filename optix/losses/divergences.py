"""Kullback-Leibler divergences of predicted distributions (given as log-probabilities).

Every divergence is a sum of per-entry terms along ``axis``, computed in at least
float32 and returned in the promoted dtype of the inputs. A target of 0 contributes
0 log 0 = 0 (and a predicted log-probability of -inf there is fine: the term and its
derivatives stay 0). Entries that ``where`` excludes are left out of the sum and get
zero derivatives.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from optix.losses import _softmax


def _inputs(fn: str, log_predictions: Any, targets: Any, where: Any, masked_target: float):
    """(log_predictions, targets, dtype, out) broadcast, with excluded entries set to
    log_predictions = -inf and targets = masked_target (each term then vanishes)."""
    _softmax.check_floating(fn, log_predictions=log_predictions, targets=targets)
    out, dtype = _softmax.dtypes(log_predictions, targets)
    lp, t = jnp.broadcast_arrays(jnp.asarray(log_predictions, dtype), jnp.asarray(targets, dtype))
    if where is not None:
        where = jnp.broadcast_to(jnp.asarray(where, bool), lp.shape)
        lp = jnp.where(where, lp, jnp.array(-jnp.inf, dtype))
        t = jnp.where(where, t, jnp.array(masked_target, dtype))
    return lp, t, dtype, out


def _safe_log(t: jax.Array) -> jax.Array:
    """log(t) where t != 0, 0 where t == 0 (never differentiated there)."""
    return jnp.log(jnp.where(t == 0, jnp.ones((), t.dtype), t))


def kl_divergence(
    log_predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Kullback-Leibler divergence KL(targets || predictions), predictions in log space.

    Along ``axis``, over the entries ``where`` allows:

        loss = sum(targets * (log(targets) - log_predictions)),  0 where targets == 0

    Args:
        log_predictions: Log-probabilities of the predicted distribution; floating.
        targets: Probabilities of the target distribution (>= 0), broadcastable with
            ``log_predictions``; floating.
        axis: Axis or axes to sum over (None: all of them).
        where: Boolean mask of the entries to include, broadcastable with the inputs.

    Returns:
        The divergence per distribution, in the promoted dtype of the inputs.

    References:
        Kullback & Leibler, "On Information and Sufficiency", Ann. Math. Statist. 1951.

    Checked against Optax, ``torch.nn.functional.kl_div`` and ``scipy.special.rel_entr``
    in tests/losses/test_divergences.py.
    """
    lp, t, _, out = _inputs("kl_divergence", log_predictions, targets, where, 0.0)
    terms = _softmax.mul0(t, _safe_log(t) - lp)
    return jnp.sum(terms, axis).astype(out)


def kl_divergence_with_log_targets(
    log_predictions: jax.typing.ArrayLike,
    log_targets: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Kullback-Leibler divergence KL(targets || predictions), both in log space.

    Along ``axis``, over the entries ``where`` allows:

        loss = sum(exp(log_targets) * (log_targets - log_predictions))

    with 0 wherever exp(log_targets) == 0 (a log-target of -inf).

    Args:
        log_predictions: Log-probabilities of the predicted distribution; floating.
        log_targets: Log-probabilities of the target distribution, broadcastable with
            ``log_predictions``; floating.
        axis: Axis or axes to sum over (None: all of them).
        where: Boolean mask of the entries to include, broadcastable with the inputs.

    Returns:
        The divergence per distribution, in the promoted dtype of the inputs.

    References:
        Kullback & Leibler, "On Information and Sufficiency", Ann. Math. Statist. 1951.

    Checked against Optax and ``torch.nn.functional.kl_div(..., log_target=True)`` in
    tests/losses/test_divergences.py.
    """
    fn = "kl_divergence_with_log_targets"
    _softmax.check_floating(fn, log_targets=log_targets)
    lp, lt, _, out = _inputs(fn, log_predictions, log_targets, where, -jnp.inf)
    terms = _softmax.mul0(jnp.exp(lt), lt - lp)
    return jnp.sum(terms, axis).astype(out)


def _log_ratio(lp: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    zero = t == 0
    return zero, jnp.where(zero, jnp.zeros((), lp.dtype), lp - _safe_log(t))


@jax.custom_jvp
def _bregman_terms(lp: jax.Array, t: jax.Array) -> jax.Array:
    """t * (expm1(d) - d) with d = lp - log(t), and exp(lp) where t == 0."""
    zero, d = _log_ratio(lp, t)
    return jnp.where(zero, jnp.exp(lp), t * (jnp.expm1(d) - d))


@_bregman_terms.defjvp
def _bregman_terms_jvp(primals, tangents):
    """d/dlp = p - t = t * expm1(d) and d/dt = -d, each without cancellation (the chain
    rule through the formula would subtract expm1(d) from itself); d/dt = 0 at t = 0."""
    (lp, t), (dlp, dt) = primals, tangents
    zero, d = _log_ratio(lp, t)
    slope = jnp.where(zero, jnp.exp(lp), t * jnp.expm1(d))
    return _bregman_terms(lp, t), slope * dlp - d * dt


def generalized_kl_divergence(
    log_predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Generalized KL divergence, for non-negative measures that need not sum to 1.

    The Bregman divergence of f(q) = q log q - q. Along ``axis``, over the entries
    ``where`` allows, with p = exp(log_predictions):

        loss = sum(targets * (log(targets) - log_predictions) - targets + p)

    Each term is >= 0. It is computed as targets * (expm1(d) - d) with
    d = log_predictions - log(targets) (and as p where targets == 0), which is the same
    number without cancelling three terms of size targets when p is close to it.
    When both sum to 1 this is ``kl_divergence``.

    Args:
        log_predictions: Log of the predicted measure; floating.
        targets: Target measure (>= 0), broadcastable with ``log_predictions``;
            floating.
        axis: Axis or axes to sum over (None: all of them).
        where: Boolean mask of the entries to include, broadcastable with the inputs.

    Returns:
        The divergence per measure, in the promoted dtype of the inputs.

    References:
        Bregman, "The relaxation method of finding the common point of convex sets and
        its application to the solution of problems in convex programming", USSR
        Comput. Math. Math. Phys. 1967. Boyd & Vandenberghe, "Convex Optimization",
        Cambridge University Press 2004, p. 90.

    Checked against Optax and ``scipy.special.kl_div`` in
    tests/losses/test_divergences.py.
    """
    lp, t, _, out = _inputs("generalized_kl_divergence", log_predictions, targets, where, 0.0)
    return jnp.sum(_bregman_terms(lp, t), axis).astype(out)


def convex_kl_divergence(
    log_predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Deprecated name of ``generalized_kl_divergence`` (as in Optax, it warns).

    Args:
        log_predictions: Log of the predicted measure; floating.
        targets: Target measure (>= 0), broadcastable with ``log_predictions``.
        axis: Axis or axes to sum over (None: all of them).
        where: Boolean mask of the entries to include, broadcastable with the inputs.

    Returns:
        ``generalized_kl_divergence(log_predictions, targets, axis, where)``.
    """
    warnings.warn(
        "convex_kl_divergence is deprecated, use generalized_kl_divergence instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)
