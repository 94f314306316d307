"""RAdam's variance rectification: the length of the approximated SMA and its factor.

With rho_inf = 2 / (1 - b2) - 1, the length of the simple moving average that the
EMA of g**2 approximates at step t is

    rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)

and the rectification factor is

    r_t = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).

The direct formula subtracts two numbers near rho_inf (about 2000 for b2 = 0.999)
to get rho_t (about 5 where rectification starts): in float32 that leaves rho_t
wrong by 1e-4. Here, with a = -log(b2) and P(z) = (2 / z) * (1 - z / expm1(z)),

    rho_t = 1 + t * P(t * a) - P(a)

exactly, and P is evaluated without cancellation (its Taylor series below z = 1, the
closed form above), so rho_t and r_t keep float32 runs within 1e-6 of float64 ones.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp

# Bernoulli numbers B_2 ... B_20; P(z) = 1 - 2 * sum_n B_n z**(n - 1) / n! over even n.
_BERNOULLI = [
    Fraction(1, 6),
    Fraction(-1, 30),
    Fraction(1, 42),
    Fraction(-1, 30),
    Fraction(5, 66),
    Fraction(-691, 2730),
    Fraction(7, 6),
    Fraction(-3617, 510),
    Fraction(43867, 798),
    Fraction(-174611, 330),
]
# Coefficient of z**(2k - 1); the first omitted term is below 2e-17 for z <= 1.
_SERIES = [float(-2 * b / math.factorial(2 * k)) for k, b in enumerate(_BERNOULLI, start=1)]


def _p(z: jax.Array) -> jax.Array:
    """``(2 / z) * (1 - z / expm1(z))`` for z > 0, accurate to a few ulps."""
    small = jnp.minimum(z, 1.0)
    w = small * small
    series = jnp.zeros_like(w)
    for c in reversed(_SERIES):
        series = series * w + c
    near_zero = 1.0 + small * series
    large = jnp.maximum(z, 1.0)
    far = (2.0 / large) * (1.0 - large / jnp.expm1(large))
    return jnp.where(z < 1.0, near_zero, far)


def sma_length(b2: jax.typing.ArrayLike, count: jax.Array) -> jax.Array:
    """``rho_t`` at step ``t = count``, a scalar in the default float dtype."""
    dtype = jnp.result_type(float)
    if isinstance(b2, int | float) and b2 > 0:
        a = jnp.asarray(-math.log(b2), dtype)
    else:
        a = -jnp.log(jnp.asarray(b2, dtype))
    t = jnp.asarray(count, dtype)
    # b2 = 0 makes a infinite; the limit of rho_t there is rho_inf = 1.
    return jnp.where(jnp.isinf(a), 1.0, 1.0 + t * _p(t * a) - _p(a))


def rectification(
    b2: jax.typing.ArrayLike,
    threshold: jax.typing.ArrayLike,
    count: jax.Array,
    *,
    strict: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``(rho_t >= threshold, r_t)`` at step ``t = count`` (``>`` when ``strict``).

    r_t is a scalar in the default float dtype; it is 0 on the steps that are not
    rectified (where its formula has no real value for rho_t < 4).
    """
    rho_t = sma_length(b2, count)
    dtype = rho_t.dtype
    if isinstance(b2, int | float):
        rho_inf = jnp.asarray(2.0 / (1.0 - b2) - 1.0, dtype)
    else:
        rho_inf = 2.0 / (1.0 - jnp.asarray(b2, dtype)) - 1.0
    threshold = jnp.asarray(threshold, dtype)
    rectified = rho_t > threshold if strict else rho_t >= threshold
    ratio = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
    r_t = jnp.sqrt(jnp.maximum(ratio, 0.0))
    return rectified, jnp.where(rectified, r_t, jnp.zeros([], dtype))
