"""Smooth a function by averaging it over random perturbations of its input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.perturbations.noise import Gumbel
from optix.tree.math import sum as tree_sum
from optix.tree.random import random_like


def _as_float(value: jax.Array, like: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``value`` and ``like`` in one floating dtype: ``like``'s when it is inexact."""
    like = jnp.asarray(like)
    if jnp.issubdtype(like.dtype, jnp.inexact):
        return value.astype(like.dtype), like
    return value, like.astype(value.dtype)


def _score_weight(log_p: jax.Array) -> jax.Array:
    """``exp(log_p - stop_gradient(log_p))``: the value 1, whose derivative is that of log_p.

    Multiplying a sampled value by it attaches the score-function (REINFORCE) term to
    every derivative, of any order, while leaving the value unchanged (the "magic box"
    of Foerster et al.).
    """
    return jnp.exp(log_p - jax.lax.stop_gradient(log_p))


def make_perturbed_fun(
    fun: Callable[[Any], Any],
    num_samples: int = 1000,
    sigma: jax.typing.ArrayLike = 0.1,
    noise: Any = Gumbel(),
    use_baseline: bool = True,
) -> Callable[[jax.Array, Any], Any]:
    """A Monte-Carlo estimate of ``fun`` smoothed by noise, differentiable to any order.

    The smoothed function is

        f_sigma(x) = E_z[fun(x + sigma * z)],   z ~ noise, entry by entry

    which is smooth even where ``fun`` is not (an argmax, a sort, a solver). The
    returned ``perturbed(key, x)`` draws ``num_samples`` samples z_i and returns

        y_i = stop_gradient(x + sigma * z_i)
        w_i = exp(L_i - stop_gradient(L_i)),  L_i = sum(noise.log_prob((y_i - x) / sigma))
        out = mean_i(w_i * fun(y_i) + (1 - w_i) * fun(x))       (use_baseline)
        out = mean_i(w_i * fun(y_i))                            (otherwise)

    Each w_i equals 1, so ``out`` is the plain sample mean of ``fun(y_i)``; its
    derivatives with respect to x are the score-function estimates of the derivatives
    of f_sigma, e.g. the gradient ``mean_i((fun(y_i) - fun(x)) * -grad log p(z_i) / sigma)``.
    ``fun`` is only evaluated, never differentiated. The baseline ``fun(x)`` (evaluated
    at the unperturbed input) leaves every estimate unbiased and lowers its variance.

    Args:
        fun: A function from a pytree of arrays to a pytree of arrays.
        num_samples: The number of perturbations averaged, an int >= 1.
        sigma: The scale of the perturbation, > 0.
        noise: The distribution of z: an object with ``sample(key, shape, dtype)`` and
            ``log_prob(z)`` methods, such as ``Gumbel()`` (the default) or ``Normal()``.
        use_baseline: Subtract ``fun(x)`` inside the score-function term.

    Returns:
        ``perturbed(key, x)``: ``fun``'s signature with a leading PRNG key. The key is
        split into ``num_samples`` keys, each split again over the leaves of x (as
        ``optix.tree.random_like`` does), so a key gives the same samples as Optax's
        ``make_perturbed_fun``.

    References:
        Berthet et al., "Learning with Differentiable Perturbed Optimizers", NeurIPS 2020,
        arXiv:2002.08676.
        Foerster et al., "DiCE: The Infinitely Differentiable Monte Carlo Estimator",
        ICML 2018, arXiv:1802.05098.
        Checked against optax.perturbations.make_perturbed_fun in
        tests/perturbations/test_make_perturbed.py.
    """
    fn = "make_perturbed_fun"
    _checks.integer_at_least(fn, "num_samples", num_samples, 1)
    _checks.positive(fn, sigma=sigma)
    methods = (getattr(noise, "sample", None), getattr(noise, "log_prob", None))
    if not all(callable(m) for m in methods):
        raise TypeError(
            f"{fn}: noise must have sample(key, shape, dtype) and log_prob(z) methods "
            f"(optix.perturbations.Gumbel() or Normal()), got noise={noise!r}"
        )

    def one_sample(key: jax.Array, x: Any, baseline: Any) -> Any:
        z = random_like(key, x, sampler=noise.sample)
        y = jax.lax.stop_gradient(jax.tree.map(lambda xi, zi: xi + sigma * zi, x, z))
        # z again, now as a function of x: the score's derivative flows through it.
        z_of_x = jax.tree.map(lambda xi, yi: (yi - xi) / sigma, x, y)
        w = _score_weight(tree_sum(jax.tree.map(noise.log_prob, z_of_x)))

        def leaf(value, base):
            w_, value = _as_float(w, value)
            out = w_ * value
            if base is not None:
                w_, base = _as_float(w, base)
                out = out + (1 - w_) * base
            return out

        values = fun(y)
        if baseline is None:
            return jax.tree.map(lambda v: leaf(v, None), values)
        return jax.tree.map(leaf, values, baseline)

    def perturbed(key: jax.Array, x: Any) -> Any:
        baseline = fun(jax.lax.stop_gradient(x)) if use_baseline else None
        keys = jax.random.split(key, num_samples)
        outs = jax.vmap(one_sample, in_axes=(0, None, None))(keys, x, baseline)
        return jax.tree.map(lambda o: jnp.mean(o, axis=0), outs)

    return perturbed
