"""One computation's value with another's derivatives: how ``inject_hyperparams`` keeps
the unwrapped optimizer's numbers and still differentiates through its hyperparameters.

``exact_fn`` (an optimizer built from Python constants) and ``traced_fn`` (the same
optimizer built from the state's arrays) compute one function; they differ only in
rounding, where the constants enter float64 arithmetic before any rounding (Adam's
``1 - b2``, its bias corrections). The value is ``exact_fn``'s while ``use_exact`` holds,
and the derivatives are always ``traced_fn``'s: ``exact_fn`` sees the hyperparameters
as constants, so its own derivative with respect to them would be zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import ClosedJaxpr, jaxpr_as_fun


def exact_or_traced(
    use_exact: Callable[..., jax.Array],
    exact_fn: Callable[..., Any],
    traced_fn: Callable[..., Any],
    *args: Any,
) -> Any:
    """``lax.cond(use_exact(*args), exact_fn, traced_fn, *args)``, with the JVP of
    ``traced_fn`` for every argument.

    The three functions may close over anything, tracers of enclosing transformations
    included (a ``value_fn`` extra argument closing over the values being
    differentiated): the computation is traced once to a jaxpr and every value it closes
    over becomes an explicit input of the ``custom_jvp``, so derivatives with respect to
    closed-over values flow through ``traced_fn`` as well. Under differentiation the
    forward pass also evaluates ``traced_fn`` (its residuals); otherwise only the
    branch ``lax.cond`` selects runs.

    Args:
        use_exact: Boolean scalar function of ``args``: take ``exact_fn``'s value.
        exact_fn: Gives the value where ``use_exact`` holds.
        traced_fn: Gives the value elsewhere, and every derivative.
        *args: Pytrees of arrays, the arguments of all three.

    Returns:
        The selected function's output, a pytree.
    """

    def select(allow_exact, *a):
        pred = jnp.logical_and(allow_exact, use_exact(*a))
        return jax.lax.cond(pred, exact_fn, traced_fn, *a)

    closed, shape = jax.make_jaxpr(select, return_shape=True)(np.True_, *args)
    jaxpr, out_tree = closed.jaxpr, jax.tree.structure(shape)
    flat_args = jax.tree.leaves(args)

    def evaluate(allow_exact, flat, consts):
        return jaxpr_as_fun(ClosedJaxpr(jaxpr, consts))(allow_exact, *flat)

    @jax.custom_jvp
    def value(flat, consts):
        return evaluate(np.True_, flat, consts)

    @value.defjvp
    def value_jvp(primals, tangents):
        # The traced pass forbids the exact branch, so lax.cond's JVP is traced_fn's.
        traced, out_tangents = jax.jvp(lambda f, c: evaluate(np.False_, f, c), primals, tangents)
        exact = evaluate(np.True_, *primals)
        return list(map(_value_with_derivative, exact, traced)), out_tangents

    return jax.tree.unflatten(out_tree, value(flat_args, list(closed.consts)))


def _value_with_derivative(exact: Any, traced: Any) -> Any:
    """``exact``'s value with ``traced``'s derivatives, to every order.

    ``exact - (traced - traced)`` is ``exact`` bit for bit where ``traced`` is finite
    (``x - x`` is +0 and ``e - +0`` is ``e``, signed zeros included), and with the
    first two terms held constant its derivative is ``traced``'s. Written with plain
    operations rather than a nested ``custom_jvp`` call: partial evaluation (reverse
    mode through ``lax.scan``) inlines a custom rule whose inputs are partly unknown,
    which would lose the traced derivatives at second order.
    """
    dtype = getattr(exact, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
        return exact  # integers, booleans, keys and literals carry no derivative
    stop = jax.lax.stop_gradient
    return jnp.where(jnp.isfinite(traced), stop(exact) - (stop(traced) - traced), exact)
