"""Fenchel-Young losses built from a "max" function (a convex conjugate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp


class MaxFun(Protocol):
    """A convex function of a score vector, e.g. ``logsumexp`` or ``max``."""

    def __call__(self, scores: Any, *args: Any, **kwargs: Any) -> jax.typing.ArrayLike: ...


def make_fenchel_young_loss(max_fun: MaxFun) -> Callable[..., jax.Array]:
    """Build the Fenchel-Young loss of ``max_fun``.

    With f = max_fun (the conjugate Omega* of a regulariser Omega), scores s and
    targets y, over the last axis:

        loss(s, y, *args, **kwargs) = f(s, *args, **kwargs) - <y, s>

    (the term Omega(y), constant in s, is left out, as in Optax). Its gradient in s is
    grad f(s) - y, e.g. softmax(s) - y for f = logsumexp, whose loss is then the
    softmax cross entropy for one-hot y.

    ``max_fun`` is applied to each vector along the last axis (leading axes are
    batch axes; extra positional and keyword arguments are passed to every call
    unchanged, where Optax's version drops keyword arguments and refuses positional
    ones). The inner product is summed in at least float32, and entries with
    y = 0 contribute 0 even where s = -inf (a masked class), so a finite ``max_fun``
    gives a finite loss.

    Args:
        max_fun: Function of a score vector (and optional extra arguments) to a
            scalar.

    Returns:
        ``fenchel_young_loss(scores, targets, *args, **kwargs)`` returning one loss
        per vector along the last axis, shape ``scores.shape[:-1]`` broadcast with
        ``targets.shape[:-1]``.

    References:
        Blondel, Martins & Niculae, "Learning with Fenchel-Young losses", JMLR 2020
        (arXiv:1901.02324).
        Checked against optax.losses.make_fenchel_young_loss in
        tests/losses/test_fenchel_young.py.
    """

    def fenchel_young_loss(scores, targets, *args, **kwargs):
        """Fenchel-Young loss of ``max_fun`` along the last axis (see the builder)."""
        scores, targets = jnp.asarray(scores), jnp.asarray(targets)
        per_vector = jnp.vectorize(lambda v: max_fun(v, *args, **kwargs), signature="(n)->()")
        max_value = jnp.asarray(per_vector(scores))
        out = jnp.result_type(max_value, scores, targets)
        with jax.numpy_dtype_promotion("standard"):
            wide = jnp.result_type(jnp.float32, out)
        s, y = scores.astype(wide), targets.astype(wide)
        # 0 * -inf would be NaN: a target of 0 on a masked class contributes 0.
        s = jnp.where((y == 0) & jnp.isinf(s), 0, s)
        shape = jnp.broadcast_shapes(s.shape, y.shape)
        dot = jnp.sum(jnp.broadcast_to(y, shape) * jnp.broadcast_to(s, shape), axis=-1)
        max_value = jnp.broadcast_to(max_value.astype(wide), dot.shape)
        return (max_value - dot).astype(out)

    return fenchel_young_loss
