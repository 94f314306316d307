"""fp32 master weights: train bf16/fp16 parameters on a float32 copy kept in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix.core import GradientTransformation
from optix.transforms.conditional import as_transformation
from optix.tree.leafwise import map_leaves


class MasterWeightsState(NamedTuple):
    """State of ``with_master_weights``."""

    master: Any  # param-shaped: master_dtype copy of each narrower float param, None elsewhere
    inner_state: Any  # the inner state, built on the master copy


def _needs_master(param: Any, master_dtype: jnp.dtype) -> bool:
    dtype = getattr(param, "dtype", None)
    return (
        dtype is not None
        and jnp.issubdtype(dtype, jnp.floating)
        and jnp.finfo(dtype).bits < jnp.finfo(master_dtype).bits
    )


def _merge(low: Any, full: Any) -> Any:
    """Leaves of ``low`` where it has one, of ``full`` elsewhere."""
    return jax.tree.map(lambda f, m: f if m is None else m, full, low)


def with_master_weights(
    inner: GradientTransformation, master_dtype: jax.typing.DTypeLike = jnp.float32
) -> GradientTransformation:
    """Run ``inner`` on a ``master_dtype`` copy of the low-precision params.

    For each param p narrower than ``master_dtype`` (bf16, fp16), with master its copy
    (initialized to p) and g the incoming update:

        u, inner_state = inner.update(g as master_dtype, inner_state, master)
        master = master + u                           (in master_dtype)
        out = master.astype(p.dtype).astype(master_dtype) - p

    so ``apply_updates(params, out)`` lands exactly on the master rounded to p's dtype.
    Steps below p's resolution accumulate in master instead of being rounded away (a bf16
    param at 1.0 ignores any step under 2**-8). Params already at least ``master_dtype``
    are passed through: ``inner`` sees them and their updates as they are, and the
    state stores no copy of them (``None``). ``inner``'s moments are built on the master
    copy, so they are float32 too.

    The updates of low-precision leaves come out in ``master_dtype``, not the incoming
    dtype: a bf16 difference would not always be exact. Change params only through these
    updates; a param changed elsewhere is overwritten by its master on the next step.

    Args:
        inner: The optimizer to run on the master copy.
        master_dtype: The master copy's floating dtype (float32; float64 under x64).

    Returns:
        A GradientTransformation whose state is ``MasterWeightsState``.

    References:
        Micikevicius et al., "Mixed Precision Training", ICLR 2018, arXiv:1710.03740,
        section 3.1. Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training
        Trillion Parameter Models", SC 2020, arXiv:1910.02054.
        Checked against optix.sgd on float32 params (bit for bit) in
        tests/precision/test_master_weights.py.
    """
    master_dtype = jnp.dtype(master_dtype)
    if not jnp.issubdtype(master_dtype, jnp.floating):
        raise TypeError(
            "with_master_weights: master_dtype must be a floating dtype, "
            f"got master_dtype={master_dtype}"
        )
    inner = as_transformation(inner)

    def copy(p):
        return p.astype(master_dtype) if _needs_master(p, master_dtype) else None

    def init(params):
        master = jax.tree.map(copy, params)
        return MasterWeightsState(master, inner.init(_merge(master, params)))

    def step(u, m, p):
        if m is None:
            return u, None
        master = m + u.astype(master_dtype)
        return master.astype(p.dtype).astype(master_dtype) - p.astype(master_dtype), master

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(
                "with_master_weights: update needs params, to return updates that move them "
                "onto the rounded master copy; call update(updates, state, params)."
            )
        grads = jax.tree.map(
            lambda g, m: g if m is None else g.astype(master_dtype),
            updates,
            state.master,
            is_leaf=lambda x: x is None,
        )
        steps, inner_state = inner.update(
            grads, state.inner_state, _merge(state.master, params), **extra_args
        )
        out, master = map_leaves(step, steps, state.master, params, n_out=2)
        return out, MasterWeightsState(master, inner_state)

    return GradientTransformation(init, update)
