"""Curvature of a loss ``loss(params, inputs, targets)``: Hessian-vector products and diagonals.

Every result is over the flattened parameters, in the order of
``jax.flatten_util.ravel_pytree(params)``. These three functions keep Optax's
signatures (Optax 0.2.8 marks them deprecated; here they are kept as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import flatten_util

LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
"""``loss(params, inputs, targets) -> scalar``."""


def _flat(tree: Any) -> jax.Array:
    return flatten_util.ravel_pytree(tree)[0]


def hvp(
    loss: LossFn,
    v: jax.Array,
    params: Any,
    inputs: jax.Array,
    targets: jax.Array,
) -> Any:
    """The product H v of the Hessian of ``loss`` at ``params`` with a flat vector v.

    With g(p) = grad of ``loss(p, inputs, targets)`` with respect to p, the product is
    the directional derivative of g along v (forward over reverse mode):

        H v = jvp(g, params, unravel(v))

    It costs about two gradient evaluations and never forms H.

    Args:
        loss: The loss, ``loss(params, inputs, targets) -> scalar``.
        v: A flat vector with as many entries as ``params`` (``ravel_pytree`` order).
        params: The point where the Hessian is taken, a pytree of arrays.
        inputs: The inputs passed to ``loss``.
        targets: The targets passed to ``loss``.

    Returns:
        H v as a pytree with ``params``' structure (``ravel_pytree`` flattens it).

    References:
        Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation 1994.
        Checked against jax.hessian and optax.second_order.hvp in
        tests/second_order/test_derivatives.py.
    """
    _, unravel = flatten_util.ravel_pytree(params)
    grad_fn = jax.grad(lambda p: loss(p, inputs, targets))
    return jax.jvp(grad_fn, (params,), (unravel(v),))[1]


def hessian_diag(
    loss: LossFn,
    params: Any,
    inputs: jax.Array,
    targets: jax.Array,
) -> jax.Array:
    """The exact diagonal of the Hessian of ``loss`` at ``params``, as a flat vector.

    Entry i is e_i . (H e_i), with e_i the i-th unit vector over the n flattened
    parameters: n Hessian-vector products, computed together under ``vmap``. Meant for
    small models; ``optix.contrib.hutchinson_estimator_diag_hessian`` estimates the
    diagonal from one product per step.

    Args:
        loss: The loss, ``loss(params, inputs, targets) -> scalar``.
        params: The point where the Hessian is taken, a pytree of arrays.
        inputs: The inputs passed to ``loss``.
        targets: The targets passed to ``loss``.

    Returns:
        A vector of the n diagonal entries, in ``ravel_pytree`` order.

    References:
        Checked against jax.hessian and optax.second_order.hessian_diag in
        tests/second_order/test_derivatives.py.
    """
    flat = _flat(params)
    basis = jnp.eye(flat.size, dtype=flat.dtype)

    def entry(e):
        return jnp.vdot(e, _flat(hvp(loss, e, params, inputs, targets)))

    return jax.vmap(entry)(basis)


def fisher_diag(
    negative_log_likelihood: LossFn,
    params: Any,
    inputs: jax.Array,
    targets: jax.Array,
) -> jax.Array:
    """The diagonal of the observed Fisher information: the squared gradient, flattened.

    With g = grad of ``negative_log_likelihood(params, inputs, targets)``:

        F_ii = g_i**2

    For a negative log-likelihood summed over a batch this is the square of the
    batch gradient (the "empirical Fisher" of one aggregated example).

    Args:
        negative_log_likelihood: ``nll(params, inputs, targets) -> scalar``.
        params: The point where it is taken, a pytree of arrays.
        inputs: The inputs passed to ``negative_log_likelihood``.
        targets: The targets passed to ``negative_log_likelihood``.

    Returns:
        A vector of the squared gradient entries, in ``ravel_pytree`` order.

    References:
        Checked against optax.second_order.fisher_diag in
        tests/second_order/test_derivatives.py.
    """
    return jnp.square(_flat(jax.grad(negative_log_likelihood)(params, inputs, targets)))
