"""AdaGrad: scale by the root of the running sum of squared updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import abs_sq, compute_dtype, map_leaves, real_dtype, real_part
from optix.tree.math import full_like


class ScaleByRssState(NamedTuple):
    """State of ``scale_by_rss``."""

    sum_of_squares: Any  # param-shaped: initial_accumulator_value + sum of g**2 (nu_dtype)


def scale_by_rss(
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    *,
    eps_in_sqrt: bool = True,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by the root of the sum of all squared updates so far (AdaGrad).

    For each leaf, with g the incoming update:

        sum_of_squares = sum_of_squares + |g|**2
        d = sqrt(sum_of_squares + eps)   if eps_in_sqrt else   sqrt(sum_of_squares) + eps
        u = g / d   where sum_of_squares > 0, else 0

    ``sum_of_squares`` starts at ``initial_accumulator_value``. The defaults are
    Optax's (eps inside the root, accumulator 0.1); torch.optim.Adagrad is
    ``eps_in_sqrt=False, initial_accumulator_value=0, eps=1e-10``. The sum is zero only
    where every update so far was zero, so the guard returns 0 where 0 / 0 would be
    NaN (with ``eps=0``); everywhere else it changes nothing.

    Args:
        initial_accumulator_value: Starting value of ``sum_of_squares``, >= 0.
        eps: Added to the denominator, inside or outside the root, >= 0.
        eps_in_sqrt: Add ``eps`` under the square root (Optax) or after it (torch).
        nu_dtype: Dtype of ``sum_of_squares``; ``None`` keeps the params' dtype. It is
            updated in at least float32 and stored back in it; a bfloat16 sum stops
            growing where ``g**2`` is below about ``2**-9`` of it (8 significant bits).

    Returns:
        A GradientTransformation whose state is ``ScaleByRssState``.

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, 2011.
        Checked against optax.scale_by_rss and torch.optim.Adagrad in
        tests/optimizers/test_adagrad.py.
    """
    _checks.non_negative(
        "scale_by_rss", initial_accumulator_value=initial_accumulator_value, eps=eps
    )
    _checks.floating_dtype("scale_by_rss", nu_dtype=nu_dtype)

    def leaf(g, s):
        dt = compute_dtype(g, s)
        g_ = g.astype(dt)
        s_new = real_part(s).astype(real_dtype(dt)) + abs_sq(g_)
        d = jnp.sqrt(s_new + eps) if eps_in_sqrt else jnp.sqrt(s_new) + eps
        u = jnp.where(s_new > 0, g_ / d.astype(dt), jnp.zeros_like(g_))
        return u.astype(g.dtype), s_new.astype(s.dtype)

    def init(params):
        return ScaleByRssState(
            sum_of_squares=full_like(params, initial_accumulator_value, dtype=nu_dtype)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, sum_of_squares = map_leaves(leaf, updates, state.sum_of_squares, n_out=2)
        return updates, ScaleByRssState(sum_of_squares=sum_of_squares)

    return GradientTransformation(init, update)


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    *,
    eps_in_sqrt: bool = True,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AdaGrad: ``chain(scale_by_rss(...), scale_by_learning_rate(learning_rate))``.

    Update rule and arguments (``nu_dtype`` too): see ``scale_by_rss``. For torch.optim.Adagrad's
    numbers (``lr_decay``, weight decay, ``maximize``) use ``optix.torch.adagrad``.
    """
    _checks.finite("adagrad", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("adagrad", initial_accumulator_value=initial_accumulator_value, eps=eps)
    _checks.floating_dtype("adagrad", nu_dtype=nu_dtype)
    return chain(
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
