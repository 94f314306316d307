"""Averaged SGD (Polyak-Ruppert averaging with a decaying step), as torch.optim.ASGD."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.transforms.scaling import scale
from optix.transforms.weight_decay import NO_PARAMS, add_decayed_weights
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import zeros_like
from optix.tree.state import get


class ScaleByAsgdState(NamedTuple):
    """State of ``scale_by_asgd`` (torch.optim.ASGD's ``step``, ``eta``, ``mu``, ``ax``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    eta: jax.Array  # scalar (default float dtype): step size of the next update
    mu: jax.Array  # scalar (default float dtype): averaging weight of the next update
    ax: Any  # param-shaped: the averaged parameters (dtype mu_dtype)


def _value_at(hyperparameter: ScalarOrSchedule, count: jax.Array) -> jax.Array:
    value = hyperparameter(count) if callable(hyperparameter) else hyperparameter
    return jnp.asarray(value, jnp.result_type(float))


def scale_by_asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Averaged SGD: a decaying SGD step, and the running average of the iterates.

    For each leaf, with g the incoming update, p the parameter, t = count + 1 and
    lr = learning_rate(count):

        u = eta * (g + lambd * p)           (the step: p_new = p - u)
        ax = p_new                          if mu == 1
        ax = ax + mu * (p_new - ax)         otherwise
        eta = lr / (1 + lambd * lr * t)**alpha     (for the next update)
        mu = 1 / max(1, t - t0)                    (for the next update)

    with eta = learning_rate(0) and mu = 1 before the first update. The output u is
    the descent step (learning rate included): ``ax`` averages p - u, so the update
    applied must be exactly -u, as in ``asgd``'s ``scale(-1)``. The averaged
    parameters are for evaluation and are never applied; read them with
    ``asgd_averaged_params``. As in torch, eta and mu of a step are those computed at
    the end of the previous step, so a changed learning rate acts one step later, and
    ax is the latest iterate up to step t0 + 2 and the mean of the iterates since
    then (integer t0; the default 1e6 keeps averaging off for a million steps).

    Args:
        learning_rate: Base step size, >= 0, or a schedule of the step count.
        lambd: Decay of the step size and shrinkage of p, >= 0.
        alpha: Power of the step-size decay, >= 0.
        t0: Step after which averaging starts, >= 0.
        mu_dtype: Dtype of ``ax``, the first moment of the iterates; ``None`` keeps the
            params' dtype. It is updated in at least float32 and stored back in it.

    Returns:
        A GradientTransformation whose state is ``ScaleByAsgdState``.

    References:
        Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging",
        SIAM J. Control Optim. 30(4), 1992. Bottou, "Stochastic Gradient Descent
        Tricks", Neural Networks: Tricks of the Trade, 2012.
        Checked against torch.optim.ASGD in tests/optimizers/test_asgd.py.
    """
    _checks.non_negative("scale_by_asgd", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("scale_by_asgd", lambd=lambd, alpha=alpha, t0=t0)
    _checks.floating_dtype("scale_by_asgd", mu_dtype=mu_dtype)

    def leaf(g, p, ax, eta, mu):
        dt = compute_dtype(g, p, ax)
        eta_, p_ = eta.astype(dt), p.astype(dt)
        u = eta_ * (g.astype(dt) + jnp.asarray(lambd, dt) * p_)
        p_new = p_ - u
        averaged = ax.astype(dt) + mu.astype(dt) * (p_new - ax.astype(dt))
        ax_new = jnp.where(mu == 1, p_new, averaged)
        return u.astype(g.dtype), ax_new.astype(ax.dtype)

    def init(params):
        return ScaleByAsgdState(
            count=zero_count(),
            eta=_value_at(learning_rate, zero_count()),
            mu=jnp.ones([], jnp.result_type(float)),
            ax=zeros_like(params, dtype=mu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="scale_by_asgd"))
        updates, ax = map_leaves(
            lambda g, p, a: leaf(g, p, a, state.eta, state.mu),
            updates,
            params,
            state.ax,
            n_out=2,
        )
        count = safe_increment(state.count)
        t = count.astype(jnp.result_type(float))
        lr = _value_at(learning_rate, state.count)
        eta = lr / (1 + lambd * lr * t) ** alpha
        mu = 1 / jnp.maximum(1, t - t0)
        return updates, ScaleByAsgdState(count=count, eta=eta, mu=mu, ax=ax)

    return GradientTransformation(init, update)


def asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """ASGD: ``chain(add_decayed_weights(weight_decay), scale_by_asgd(...), scale(-1))``.

    torch.optim.ASGD's numbers and defaults; the weight decay is L2, added to g
    before the step. Update rule and arguments: see
    ``scale_by_asgd`` (``mu_dtype`` too); the averaged parameters: ``asgd_averaged_params(state)``.

    References:
        Checked against torch.optim.ASGD in tests/optimizers/test_asgd.py.
    """
    _checks.non_negative(
        "asgd", allow_schedule=True, learning_rate=learning_rate, weight_decay=weight_decay
    )
    _checks.non_negative("asgd", lambd=lambd, alpha=alpha, t0=t0)
    _checks.floating_dtype("asgd", mu_dtype=mu_dtype)
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_asgd(learning_rate, lambd, alpha, t0, mu_dtype=mu_dtype),
        scale(-1.0),
    )


def asgd_averaged_params(opt_state: Any) -> Any:
    """The averaged parameters ``ax`` held in the state of ``asgd`` (or ``scale_by_asgd``).

    They are zeros before the first update and the latest iterate up to step t0 + 2;
    from there on (for an integer t0) the mean of the iterates since step t0 + 2.
    """
    found = get(opt_state, "ScaleByAsgdState")
    if found is None:
        raise ValueError(
            "asgd_averaged_params: the state holds no ScaleByAsgdState; pass the state "
            "of asgd or of a chain that contains scale_by_asgd."
        )
    return found.ax
