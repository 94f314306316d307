"""AdEMAMix's warmup schedules of its alpha and b3 (and simplified AdEMAMix's b1)."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from optix import _checks


def _warmup_fraction(count: jax.Array, warmup: int) -> tuple[jax.Array, jax.Array]:
    step = jnp.asarray(count).astype(jnp.result_type(float))
    return step < warmup, step / max(warmup, 1)


def ademamix_alpha_schedule(
    alpha: float, alpha_start: float = 0.0, warmup: int = 0
) -> Callable[[jax.Array], jax.Array]:
    """AdEMAMix's alpha warmup: linear from ``alpha_start`` to ``alpha`` over ``warmup`` steps.

    ``a = step / warmup``, value ``(1 - a) * alpha_start + a * alpha`` while
    ``step < warmup``, then ``alpha`` (``warmup=0``: ``alpha`` from the start). The
    official JAX ``alpha_scheduler``; pass it as ``alpha`` of ``optix.ademamix``.
    """
    fn = "ademamix_alpha_schedule"
    _checks.finite(fn, alpha=alpha, alpha_start=alpha_start)
    _checks.integer_at_least(fn, "warmup", warmup, 0)

    def schedule(count):
        warming, a = _warmup_fraction(count, warmup)
        return jnp.where(warming, (1.0 - a) * alpha_start + a * alpha, alpha)

    return schedule


def _half_life(beta: float) -> float:
    """``log(0.5) / log(beta) - 1``: the steps a unit weight takes to halve, less one."""
    return -1.0 if beta == 0 else math.log(0.5) / math.log(beta) - 1.0


def ademamix_b3_schedule(
    b3: float, b3_start: float = 0.0, warmup: int = 0
) -> Callable[[jax.Array], jax.Array]:
    """AdEMAMix's b3 warmup: the half-life of the slow EMA grows linearly over ``warmup`` steps.

    With ``f(b) = log(0.5) / log(b) - 1`` and its inverse ``f_inv(h) = 0.5**(1 / (h + 1))``,
    ``a = step / warmup``, the value is ``f_inv((1 - a) * f(b3_start) + a * f(b3))`` while
    ``step < warmup``, then ``b3``. The paper starts from ``b3_start = b1``. The official
    JAX ``beta3_scheduler``; the official PyTorch one adds 1e-8 to b inside the log.
    Also the official b1 warmup of simplified AdEMAMix (``b3_start = min_beta1``).
    """
    fn = "ademamix_b3_schedule"
    _checks.in_unit_interval(fn, b3=b3, b3_start=b3_start)
    _checks.integer_at_least(fn, "warmup", warmup, 0)
    h_start, h_end = _half_life(b3_start), _half_life(b3)

    def schedule(count):
        warming, a = _warmup_fraction(count, warmup)
        h = (1.0 - a) * h_start + a * h_end
        return jnp.where(warming, jnp.power(0.5, 1.0 / (h + 1.0)), b3)

    return schedule
