"""Optimizer state created directly in its sharded buffers."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Literal

from optix.core import GradientTransformation
from optix.sharding.specs import state_shardings


def _value_dependent(tx: GradientTransformation, params: Any, abstract: list[bool]) -> list[bool]:
    """For each state leaf, whether it depends on the values of the abstract params.

    Read from the jaxpr of ``tx.init``: a state leaf depends on a param when an
    equation chain leads from the param to it (zeros shaped like a param do not).
    """
    leaves, treedef = jax.tree.flatten(params)
    specs = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
    jaxpr = jax.make_jaxpr(lambda *xs: tx.init(treedef.unflatten(xs)))(*specs).jaxpr
    tainted = {v for v, a in zip(jaxpr.invars, abstract, strict=True) if a}
    for eqn in jaxpr.eqns:
        if any(not isinstance(v, Literal) and v in tainted for v in eqn.invars):
            tainted.update(eqn.outvars)
    return [not isinstance(v, Literal) and v in tainted for v in jaxpr.outvars]


def init(
    tx: GradientTransformation, params: Any, shardings: Any = None, *, zero_axis: Any = None
) -> Any:
    """``tx.init(params)`` born sharded: each device computes and holds only its blocks.

    The state is created by ``jax.jit(tx.init, out_shardings=shardings)``, so it is
    never whole on one device (a bare ``jax.jit(tx.init)`` puts it all on device 0).

    ``params`` may be arrays (sharded or not) or ``jax.ShapeDtypeStruct``s. Most states
    (moments, counts, factored statistics) depend only on the params' shapes and are
    created from abstract params without any param in memory. A state that copies
    param values (Lookahead's slow weights, parameter averages) needs those values:
    with abstract params this raises rather than filling it with made-up numbers;
    pass the (sharded) params for it.

    Args:
        tx: The transformation.
        params: Params, or their ``jax.ShapeDtypeStruct``s, or a mix.
        shardings: The state's shardings (``state_shardings``); ``None`` derives them
            from the params' shardings.
        zero_axis: With ``shardings=None``: split the state along this mesh axis.

    Returns:
        The state, as ``jax.Array``s with the given shardings.

    Raises:
        ValueError: if a state leaf depends on the value of an abstract param.
    """
    if shardings is None:
        shardings = state_shardings(tx, params, zero_axis=zero_axis)
    leaves, treedef = jax.tree.flatten(params)
    abstract = [isinstance(x, jax.ShapeDtypeStruct) for x in leaves]
    if any(abstract):
        dependent = _value_dependent(tx, params, abstract)
        if any(dependent):
            paths = [
                jax.tree_util.keystr(path)
                for (path, _), d in zip(
                    jax.tree_util.tree_flatten_with_path(jax.eval_shape(tx.init, params))[0],
                    dependent,
                    strict=True,
                )
                if d
            ]
            raise ValueError(
                "optix.sharding.init: the state at "
                + ", ".join(paths[:4])
                + (" ..." if len(paths) > 4 else "")
                + " copies param values, which abstract params (jax.ShapeDtypeStruct) "
                "do not have; pass the params themselves (sharded arrays)."
            )

    def make(concrete):
        given = iter(concrete)
        pairs = zip(leaves, abstract, strict=True)
        full = [jnp.zeros(x.shape, x.dtype) if a else next(given) for x, a in pairs]
        return tx.init(treedef.unflatten(full))

    concrete = [x for x, a in zip(leaves, abstract, strict=True) if not a]
    return jax.jit(make, out_shardings=shardings)(concrete)
