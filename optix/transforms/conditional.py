"""Run an inner transformation only at the steps a condition picks."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optix.core import GradientTransformation, safe_increment, with_extra_args_support, zero_count
from optix.tree.math import zeros_like


def as_transformation(tx: Any) -> GradientTransformation:
    """``tx`` as a GradientTransformation whose ``update`` takes ``**extra_args``.

    Accepts anything with ``init`` and ``update`` (a ``MultiSteps``, an Optax
    transformation) and keeps forwarding extra arguments when its ``update`` takes them.
    """
    return with_extra_args_support(GradientTransformation(tx.init, tx.update))


def keep_dtypes(new_state: Any, old_state: Any) -> Any:
    """``new_state`` with each leaf in the dtype of the matching leaf of ``old_state``.

    Both branches of a ``lax.cond`` must agree on dtypes; an inner update that widens
    a state leaf must not change the wrapper's state.
    """

    def cast(new, old):
        dtype = getattr(old, "dtype", None)
        new = jnp.asarray(new)
        return new if dtype is None or new.dtype == dtype else new.astype(dtype)

    return jax.tree.map(cast, new_state, old_state)


def run_if(pred, inner, on_reject, updates, inner_state, params, extra_args):
    """``inner.update`` if ``pred`` else ``(on_reject(updates), inner_state)``.

    A ``lax.cond``: the inner update is computed only when ``pred`` holds (under
    ``vmap`` with a batched ``pred`` it becomes a select and both sides run).
    """

    def apply(inner_state):
        new_updates, new_state = inner.update(updates, inner_state, params, **extra_args)
        return new_updates, keep_dtypes(new_state, inner_state)

    def reject(inner_state):
        return on_reject(updates), inner_state

    return jax.lax.cond(pred, apply, reject, inner_state)


class ConditionFn(Protocol):
    """``should_transform_fn(step, **extra_args) -> bool scalar``; ``step`` is int32."""

    def __call__(self, step: jax.typing.ArrayLike, **extra_args: Any) -> jax.typing.ArrayLike: ...


class ConditionallyTransformState(NamedTuple):
    """State of ``conditionally_transform``."""

    inner_state: Any
    step: jax.Array  # int32 scalar: number of updates seen, run or not


class ConditionallyMaskState(NamedTuple):
    """State of ``conditionally_mask``."""

    step: jax.Array  # int32 scalar: number of updates seen, run or not
    inner_state: Any


def _conditional(fn, inner, should_transform_fn, forward_extra_args, on_reject, state_class):
    """The wrapper both public functions build: ``lax.cond`` on the condition, so the
    inner update runs only at the steps it picks; ``on_reject(updates)`` otherwise."""
    if not callable(should_transform_fn):
        raise TypeError(
            f"{fn}: should_transform_fn must be a callable step -> bool, "
            f"got should_transform_fn={should_transform_fn!r}"
        )
    inner = as_transformation(inner)

    def init(params):
        return state_class(step=zero_count(), inner_state=inner.init(params))

    def update(updates, state, params=None, **extra_args):
        kwargs = extra_args if forward_extra_args else {}
        run = jnp.asarray(should_transform_fn(state.step, **kwargs))
        updates, inner_state = run_if(
            run, inner, on_reject, updates, state.inner_state, params, extra_args
        )
        return updates, state_class(step=safe_increment(state.step), inner_state=inner_state)

    return GradientTransformation(init, update)


def conditionally_transform(
    inner: GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> GradientTransformation:
    """Apply ``inner`` at the steps ``should_transform_fn`` picks; pass updates through
    unchanged at the others.

    With step the number of earlier calls (0 on the first):

        u, inner_state = inner.update(g, inner_state)   if should_transform_fn(step)
        u = g (inner_state kept)                        otherwise

    The inner update sits in a ``lax.cond`` branch, so skipped steps do not compute it.

    Args:
        inner: The transformation to run conditionally.
        should_transform_fn: ``step -> bool scalar``, with ``step`` an int32 scalar.
        forward_extra_args: Also pass the extra keyword arguments of ``update`` to
            ``should_transform_fn``. The inner update always receives them.

    Returns:
        A GradientTransformation whose state is ``ConditionallyTransformState``.

    References:
        Checked against optax.conditionally_transform in tests/transforms/test_conditional.py.
    """
    keep = lambda updates: updates
    return _conditional(
        "conditionally_transform",
        inner,
        should_transform_fn,
        forward_extra_args,
        keep,
        ConditionallyTransformState,
    )


def conditionally_mask(
    inner: GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> GradientTransformation:
    """Apply ``inner`` at the steps ``should_transform_fn`` picks; output zeros at the others.

    With step the number of earlier calls (0 on the first):

        u, inner_state = inner.update(g, inner_state)   if should_transform_fn(step)
        u = 0 (inner_state kept)                        otherwise

    The arguments are those of ``conditionally_transform``; masked steps do not compute
    the inner update either.

    Returns:
        A GradientTransformation whose state is ``ConditionallyMaskState``.

    References:
        Checked against optax.conditionally_mask in tests/transforms/test_conditional.py.
    """
    return _conditional(
        "conditionally_mask",
        inner,
        should_transform_fn,
        forward_extra_args,
        zeros_like,
        ConditionallyMaskState,
    )
