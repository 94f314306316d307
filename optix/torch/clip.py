"""torch.nn.utils' gradient clipping, with torch's names, defaults and numbers."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import GradientTransformation
from optix.tree.leafwise import compute_dtype
from optix.tree.math import clip


class ClipGradNormState(NamedTuple):
    """State of ``clip_grad_norm_transform``."""

    total_norm: jax.Array  # scalar: the norm of the last incoming gradients, before clipping


def _raise_if_nonfinite(total_norm: Any, norm_type: float) -> None:
    if not np.isfinite(np.asarray(total_norm)):
        raise RuntimeError(
            f"optix.torch.clip_grad_norm: the total norm of order {norm_type} of the "
            f"gradients is {np.asarray(total_norm)}, so they cannot be clipped. Look for "
            "NaN or inf gradients, or pass error_if_nonfinite=False to scale them by the "
            "non-finite norm anyway."
        )


def _total_norm(leaves: list[jax.Array], norm_type: float) -> jax.Array:
    """torch's ``get_total_norm``: the p-norm of the per-leaf p-norms.

    Each leaf's norm is rounded to the leaf's (>= float32) dtype before the leaves are
    combined in the widest dtype, as torch rounds it to the gradient's dtype.
    """
    if not leaves:
        return jnp.zeros([], jnp.float32)
    dt = compute_dtype(*leaves)
    # jnp.linalg.vector_norm is annotated ord: int | str, but it takes any float order
    # (torch's norm_type, e.g. 1.5 or inf) and computes it.
    order: Any = norm_type
    norms = [
        jnp.linalg.vector_norm(g.astype(compute_dtype(g)), ord=order).astype(dt) for g in leaves
    ]
    return jnp.linalg.vector_norm(jnp.stack(norms), ord=order)


def clip_grad_norm(
    grads: Any,
    max_norm: jax.typing.ArrayLike,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> tuple[Any, jax.Array]:
    """torch.nn.utils.clip_grad_norm_ as a pure function: ``(clipped_grads, total_norm)``.

    With n the ``norm_type``-norm of all leaves together (torch's: the norm of the
    per-leaf norms), for each leaf g:

        coef = min(1 / (n + 1e-6) * max_norm, 1)
        u = g * coef

    Unlike Optax's ``clip_by_global_norm`` the coefficient has torch's ``+1e-6``, so
    gradients a little inside the ball are scaled by ``max_norm / (n + 1e-6)`` too.
    The norm is accumulated as torch does (sum of |g|**p, no rescaling): like torch it
    overflows to inf for float32 norms above ~1.8e19, and then every gradient becomes
    0 (NaN where g is inf). ``norm_type`` 0 and negative orders are torch's
    ``vector_norm`` orders of the per-leaf norms, not norms of the whole tree.

    ``error_if_nonfinite=True`` raises ``RuntimeError`` when n is NaN or inf. Outside
    ``jit`` it raises at the call. Under ``jit`` (or any transformation) the check
    runs on the host through ``jax.debug.callback`` when the step executes, and the
    step fails with ``jax.errors.JaxRuntimeError`` (a ``RuntimeError``) carrying
    the message; like torch's check, it waits for the norm on every step.

    Args:
        grads: A tree of gradients; ``None`` leaves pass through.
        max_norm: The largest total norm of the output, > 0 (inf only measures n).
        norm_type: The order p of the norm, a float or ``"inf"``.
        error_if_nonfinite: Raise if n is NaN or inf.
        foreach: Accepted for torch's signature and ignored: XLA fuses the step anyway.

    Returns:
        ``(clipped_grads, total_norm)``: the clipped tree (each leaf in its dtype) and n
        before clipping, in the widest leaf dtype (at least float32; torch returns a
        bf16 norm for bf16 gradients).

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
        networks", ICML 2013, arXiv:1211.5063.
        Checked against torch.nn.utils.clip_grad_norm_ in tests/torch/test_clip.py.
    """
    del foreach
    _checks.positive("optix.torch.clip_grad_norm", max_norm=max_norm)
    norm_type = float(norm_type)
    total = _total_norm(jax.tree.leaves(grads), norm_type)
    if error_if_nonfinite:
        if isinstance(total, jax.core.Tracer):
            jax.debug.callback(functools.partial(_raise_if_nonfinite, norm_type=norm_type), total)
        else:
            _raise_if_nonfinite(total, norm_type)
    # torch evaluates max_norm / x as x.reciprocal() * max_norm: the same two roundings.
    coef = jnp.reciprocal(total + jnp.asarray(1e-6, total.dtype)) * jnp.asarray(
        max_norm, total.dtype
    )
    coef = jnp.minimum(coef, jnp.ones([], total.dtype))

    def scale(g):
        dt = compute_dtype(g)
        return (g.astype(dt) * coef.astype(dt)).astype(g.dtype)

    return jax.tree.map(scale, grads), total


def clip_grad_value(grads: Any, clip_value: float | jax.Array) -> Any:
    """torch.nn.utils.clip_grad_value_ as a pure function: clamp to ``[-clip_value, clip_value]``.

    For each leaf, with g the gradient:

        u = min(max(g, -clip_value), clip_value)

    In a chain, ``optix.clip(clip_value)`` is the same step.

    Args:
        grads: A tree of gradients; ``None`` leaves pass through.
        clip_value: The largest absolute value of an entry, > 0.

    Returns:
        The clamped tree, each leaf in its dtype.

    References:
        Checked against torch.nn.utils.clip_grad_value_ in tests/torch/test_clip.py.
    """
    _checks.positive("optix.torch.clip_grad_value", clip_value=clip_value)
    return clip(grads, -clip_value, clip_value)


def clip_grad_norm_transform(
    max_norm: jax.typing.ArrayLike,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> GradientTransformation:
    """``clip_grad_norm`` as a transformation, to put in front of an optimizer in a chain.

    ``chain(clip_grad_norm_transform(1.0), optix.torch.adamw(1e-3))`` is torch's
    ``clip_grad_norm_(params, 1.0)`` followed by ``AdamW.step()``. The update rule and
    arguments are ``clip_grad_norm``'s; the state keeps the total norm of the last
    gradients (what torch's function returns), ready to log.

    Returns:
        A GradientTransformation whose state is ``ClipGradNormState``; ``total_norm``
        has the params' widest dtype (at least float32) and is 0 after ``init``.

    References:
        Checked against torch.nn.utils.clip_grad_norm_ in tests/torch/test_clip.py.
    """
    _checks.positive("optix.torch.clip_grad_norm_transform", max_norm=max_norm)

    def init(params):
        return ClipGradNormState(total_norm=jnp.zeros([], compute_dtype(*jax.tree.leaves(params))))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, total = clip_grad_norm(updates, max_norm, norm_type, error_if_nonfinite, foreach)
        return updates, ClipGradNormState(total_norm=total.astype(state.total_norm.dtype))

    return GradientTransformation(init, update)
