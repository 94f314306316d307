"""Clipping: bound the size of the updates element-wise, globally, or unit by unit."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import EmptyState, GradientTransformation, init_empty_state
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import clip as clip_leaves
from optix.tree.math import norm
from optix.tree.shards import split_axes

ClipState = EmptyState
"""State of ``clip``: Optax's name for ``EmptyState``."""
ClipByGlobalNormState = EmptyState
"""State of ``clip_by_global_norm``: Optax's name for ``EmptyState``."""
AdaptiveGradClipState = EmptyState
"""State of ``adaptive_grad_clip``: Optax's name for ``EmptyState``."""

Axis = int | tuple[int, ...] | None


def wide_global_norm(updates) -> jax.Array:
    """The global L2 norm of ``updates``, each leaf squared and summed in >= float32.

    Summing bf16 squares in bf16 would lose most digits of the norm of a large tree. The
    square root is guarded at 0, so an all-zero tree has zero norm and finite gradients.
    """
    squared = norm(jax.tree.map(lambda u: u.astype(compute_dtype(u)), updates), squared=True)
    zero = squared == 0
    return jnp.where(zero, jnp.zeros_like(squared), jnp.sqrt(jnp.where(zero, 1, squared)))


def clip(max_delta: float | jax.Array) -> GradientTransformation:
    """Clip every entry of the updates to ``[-max_delta, max_delta]``.

    For each leaf, with g the incoming update:

        u = min(max(g, -max_delta), max_delta)
        u = g * min(1, max_delta / |g|)            for complex g (the phase is kept)

    NaN entries stay NaN; ``max_delta=0`` gives zeros. ``optix.torch.clip_grad_value``
    is the same clamp as a function. Optax refuses complex updates here; the complex rule
    bounds the modulus the way the real one bounds the absolute value.

    Args:
        max_delta: The largest absolute value of an entry, >= 0 (inf disables clipping).

    Returns:
        A GradientTransformation whose state is ``ClipState`` (empty).

    References:
        Checked against optax.clip in tests/transforms/test_clipping.py.
    """
    _checks.at_least("clip", 0, max_delta=max_delta)

    def clip_modulus(g):
        dt = compute_dtype(g)
        g_ = g.astype(dt)
        modulus = jnp.abs(g_)
        limit = jnp.asarray(max_delta, modulus.dtype)
        safe = jnp.where(modulus > limit, modulus, jnp.ones_like(modulus))
        return jnp.where(modulus > limit, g_ * (limit / safe).astype(dt), g_).astype(g.dtype)

    def leaf(g):
        return clip_modulus(g) if jnp.iscomplexobj(g) else clip_leaves(g, -max_delta, max_delta)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(leaf, updates), state

    return GradientTransformation(init_empty_state, update)


def clip_by_global_norm(max_norm: jax.typing.ArrayLike) -> GradientTransformation:
    """Rescale the updates so that their global norm is at most ``max_norm``.

    With n the L2 norm of all leaves together, for each leaf g:

        u = g                    if n < max_norm or n == 0
        u = g / n * max_norm     otherwise

    This is Optax's rule: no epsilon, and updates already inside the ball pass
    unchanged. ``max_norm=0`` gives zeros, also for all-zero updates (where Optax's
    0 / 0 gives NaN). The norm is accumulated in at least float32; inside
    ``optix.sharding.reduce_over`` (``shard_map``) it spans every device. torch's
    ``clip_grad_norm_`` divides by ``n + 1e-6`` instead: ``optix.torch.clip_grad_norm``.

    Args:
        max_norm: The largest global norm of the output, >= 0 (inf disables clipping).

    Returns:
        A GradientTransformation whose state is ``ClipByGlobalNormState`` (empty).

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
        networks", ICML 2013, arXiv:1211.5063.
        Checked against optax.clip_by_global_norm in tests/transforms/test_clipping.py.
    """
    _checks.at_least("clip_by_global_norm", 0, max_norm=max_norm)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        g_norm = wide_global_norm(updates)
        # A zero norm has nothing to clip (Optax's 0 / 0 gives NaN for max_norm=0).
        keep = (g_norm < jnp.asarray(max_norm, g_norm.dtype)) | (g_norm == 0)
        safe_norm = jnp.where(keep, jnp.ones_like(g_norm), g_norm)

        def clip_leaf(g):
            dt = compute_dtype(g)
            n, limit = safe_norm.astype(dt), jnp.asarray(max_norm, dt)
            return jnp.where(keep, g, (g.astype(dt) / n * limit).astype(g.dtype))

        return jax.tree.map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update)


def stateless_with_params(fn: str, leaf) -> GradientTransformation:
    """A stateless transformation mapping ``leaf(g, p) -> (u,)`` over updates and params.

    ``update`` raises a message naming ``fn`` when it gets no params.
    """

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        (updates,) = map_leaves(leaf, updates, params, n_out=1)
        return updates, state

    return GradientTransformation(init_empty_state, update)


def _unit_axes(x: jax.Array, axis: Axis) -> Axis:
    """The axes a unit spans: given, or guessed from the layout of common layers."""
    if axis is not None:
        return axis
    if jnp.squeeze(x).ndim <= 1:  # scalars and vectors, also of shape (1, n)
        return None
    if x.ndim in (2, 3):  # dense (in, out) and multi-head dense kernels
        return 0
    if x.ndim == 4:  # 2-d convolution kernels (H, W, in, out)
        return (0, 1, 2)
    if x.ndim == 5:  # 3-d convolution kernels (D, H, W, in, out)
        return (0, 1, 2, 3)
    raise ValueError(
        f"unitwise_norm: cannot guess the units of an array of shape {x.shape}; "
        "pass axis= with the axes that one unit spans."
    )


def unitwise_norm(x: jax.typing.ArrayLike, axis: Axis = None) -> jax.Array:
    """The L2 norm of each unit of ``x``, broadcast back to ``x``'s shape.

    A unit is the slice of ``x`` spanned by ``axis``. Without ``axis`` the units follow
    the usual layouts: the whole array for scalars and vectors, each output column for
    dense kernels (rank 2 and 3: axis 0), each output channel for convolution kernels
    (rank 4: axes 0-2, rank 5: axes 0-3). The result has ``x``'s real dtype.

    Raises:
        ValueError: for rank > 5 without ``axis``.
    """
    x = jnp.asarray(x)
    squares = jnp.sum(jnp.real(x * jnp.conj(x)), axis=_unit_axes(x, axis), keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(squares), x.shape)


def unitwise_clip(
    g_norm: jax.typing.ArrayLike,
    max_norm: jax.typing.ArrayLike,
    grad: jax.typing.ArrayLike,
    div_eps: jax.typing.ArrayLike = 1e-6,
) -> jax.Array:
    """Rescale the units of ``grad`` whose norm ``g_norm`` reaches ``max_norm``.

    Entry by entry (all three arrays have one shape):

        u = grad                                         if g_norm < max_norm
        u = grad * max_norm / max(g_norm, div_eps)       otherwise

    ``div_eps`` only guards the division (reached when ``max_norm`` is 0).
    """
    g_norm, max_norm, grad = jnp.asarray(g_norm), jnp.asarray(max_norm), jnp.asarray(grad)
    if not g_norm.shape == max_norm.shape == grad.shape:
        raise ValueError(
            "unitwise_clip: g_norm, max_norm and grad must have one shape, got "
            f"{g_norm.shape}, {max_norm.shape} and {grad.shape}"
        )
    floor = jnp.asarray(div_eps, g_norm.dtype)
    factor = max_norm / jnp.maximum(g_norm, floor)
    return jnp.where(g_norm < max_norm, grad, grad * factor.astype(grad.dtype))


def adaptive_grad_clip(
    clipping: jax.typing.ArrayLike, eps: jax.typing.ArrayLike = 1e-3, axis: Axis = None
) -> GradientTransformation:
    """Clip each unit of the updates to ``clipping`` times the norm of its parameters.

    For each leaf, with g the incoming update, p the parameter and ||.||_unit the
    ``unitwise_norm`` (one norm per output unit, broadcast over the unit):

        max_norm = clipping * max(||p||_unit, eps)
        u = g                                          if ||g||_unit < max_norm
        u = g * max_norm / max(||g||_unit, 1e-6)       otherwise

    ``eps`` keeps zero-initialised parameters (biases) moving.

    Args:
        clipping: The largest ratio of an update unit's norm to its parameters' norm
            (lambda in the paper), >= 0 (0 gives zeros).
        eps: Floor of the parameter norm, >= 0.
        axis: The axes one unit spans; ``None`` guesses them from the rank (see
            ``unitwise_norm``), which covers dense and convolution kernels.

    Returns:
        A GradientTransformation whose state is ``AdaptiveGradClipState`` (empty);
        ``update`` needs params.

    References:
        Brock, De, Smith & Simonyan, "High-Performance Large-Scale Image Recognition
        Without Normalization", ICML 2021, arXiv:2102.06171, section 4.1.
        Checked against optax.adaptive_grad_clip in tests/transforms/test_clipping.py.
    """
    _checks.at_least("adaptive_grad_clip", 0, clipping=clipping)
    _checks.non_negative("adaptive_grad_clip", eps=eps)

    def leaf(g, p):
        split = split_axes(g) + split_axes(p)
        if split:
            raise ValueError(
                f"adaptive_grad_clip: a leaf of shape {g.shape} is split over the mesh axes "
                f"{sorted(set(split), key=str)} inside reduce_over, and its unit norms need whole "
                "units; replicate it in shard_map, or use jax.jit with shardings."
            )
        dt = compute_dtype(g, p)
        real = jnp.finfo(dt).dtype
        g_ = g.astype(dt)
        g_norm, p_norm = unitwise_norm(g_, axis), unitwise_norm(p.astype(dt), axis)
        max_norm = jnp.asarray(clipping, real) * jnp.maximum(p_norm, jnp.asarray(eps, real))
        return (unitwise_clip(g_norm, max_norm, g_).astype(g.dtype),)

    return stateless_with_params("adaptive_grad_clip", leaf)
