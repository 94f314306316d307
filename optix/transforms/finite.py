"""Skipping bad steps: non-finite updates (``apply_if_finite``) and the rules that
``MultiSteps`` uses to reject a micro-step (``skip_not_finite``, ``skip_large_updates``)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, Params, Updates, safe_increment, zero_count
from optix.transforms.conditional import as_transformation, run_if
from optix.tree.leafwise import compute_dtype
from optix.tree.math import norm, zeros_like
from optix.tree.shards import combine_partials


def all_finite(updates: Updates) -> jax.Array:
    """Whether every entry of every leaf is finite (True for an empty tree).

    Inside ``optix.sharding.reduce_over`` the answer covers every device's blocks, so
    all devices agree on it (and on whether to skip a step).
    """
    checks = [jnp.all(jnp.isfinite(u)) for u in jax.tree.leaves(updates)]
    checks = combine_partials(checks, "min")
    return functools.reduce(jnp.logical_and, checks, jnp.asarray(True))


class ApplyIfFiniteState(NamedTuple):
    """State of ``apply_if_finite``."""

    notfinite_count: jax.Array  # int32: non-finite updates in a row (0 after a finite one)
    last_finite: jax.Array  # bool: whether the last update was finite
    total_notfinite: jax.Array  # int32: non-finite updates since init, never reset
    inner_state: Any


def apply_if_finite(
    inner: GradientTransformation,
    max_consecutive_errors: int,
    *,
    reset_count_on_give_up: bool = False,
) -> GradientTransformation:
    """Skip updates that hold a NaN or an inf: output zeros and leave ``inner``'s state
    untouched, unless that happened more than ``max_consecutive_errors`` times in a row.

    With finite = every entry of g is finite:

        notfinite_count = 0 if finite else notfinite_count + 1
        accept = finite or notfinite_count > max_consecutive_errors
        u, inner_state = inner.update(g, inner_state)   if accept
        u = 0 (inner_state kept bit for bit)            otherwise

    A skipped step leaves every moment and count of ``inner`` as it was (the inner
    update runs in a ``lax.cond`` branch that is not taken). Once it gives up, Optax
    keeps counting, so every later non-finite update is accepted until a finite one
    comes; ``reset_count_on_give_up=True`` sets ``notfinite_count`` back to 0 on the
    step that gives up, so the next ``max_consecutive_errors`` bad steps are skipped
    again (the reading of "consecutive" in optax PR #1746). Inside ``shard_map``, wrap
    it with ``optix.sharding.with_axis_name`` so that every device sees every block's
    NaNs and all of them skip the same steps.

    Args:
        inner: The transformation to protect.
        max_consecutive_errors: Non-finite updates in a row to skip before accepting
            one, an int >= 0.
        reset_count_on_give_up: Restart the count after accepting a non-finite update.

    Returns:
        A GradientTransformation whose state is ``ApplyIfFiniteState``; its counts
        are readable with ``optix.tree.get(state, "total_notfinite")``.

    References:
        Checked against optax.apply_if_finite in tests/transforms/test_finite.py.
    """
    if not isinstance(max_consecutive_errors, jax.Array):
        _checks.integer_at_least(
            "apply_if_finite", "max_consecutive_errors", max_consecutive_errors, 0
        )
    inner = as_transformation(inner)

    def init(params):
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.asarray(True),
            total_notfinite=zero_count(),
            inner_state=inner.init(params),
        )

    def update(updates, state, params=None, **extra_args):
        finite = all_finite(updates)
        notfinite_count = jnp.where(finite, zero_count(), safe_increment(state.notfinite_count))
        give_up = notfinite_count > max_consecutive_errors

        updates, inner_state = run_if(
            finite | give_up, inner, zeros_like, updates, state.inner_state, params, extra_args
        )
        if reset_count_on_give_up:
            notfinite_count = jnp.where(give_up, zero_count(), notfinite_count)
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)

    return GradientTransformation(init, update)


class ShouldSkipUpdateFunction(Protocol):
    """``(updates, gradient_step, params) -> (should_skip, skip_state)`` for ``MultiSteps``.

    ``should_skip`` is a bool scalar; ``skip_state`` is any tree of arrays with a
    fixed structure, stored in ``MultiStepsState.skip_state`` for monitoring.
    """

    def __call__(
        self, updates: Updates, gradient_step: jax.typing.ArrayLike, params: Params | None
    ) -> tuple[jax.typing.ArrayLike, Any]: ...


def skip_not_finite(
    updates: Updates, gradient_step: jax.typing.ArrayLike, params: Params | None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Skip a micro-step whose updates hold a NaN or an inf (a ``ShouldSkipUpdateFunction``).

    Returns:
        ``(should_skip, {"should_skip": should_skip, "num_not_finite": n})`` with n the
        number of non-finite entries over all leaves (default int dtype), counted on
        every device inside ``optix.sharding.reduce_over``.

    References:
        Checked against optax.skip_not_finite in tests/transforms/test_finite.py.
    """
    del gradient_step, params
    counts = [jnp.sum(jnp.logical_not(jnp.isfinite(u))) for u in jax.tree.leaves(updates)]
    counts = combine_partials(counts)
    num_not_finite = sum(counts, start=jnp.zeros([], jnp.result_type(int)))
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates,
    gradient_step: jax.typing.ArrayLike,
    params: Params | None,
    max_squared_norm: jax.typing.ArrayLike,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Skip a micro-step whose squared global norm is not below ``max_squared_norm``.

    Bind ``max_squared_norm`` with ``functools.partial`` to get a
    ``ShouldSkipUpdateFunction``. A NaN norm is skipped too. The squares are summed in
    at least float32.

    Returns:
        ``(should_skip, {"should_skip": should_skip, "norm_squared": norm_sq})``.

    References:
        Checked against optax.skip_large_updates in tests/transforms/test_finite.py.
    """
    del gradient_step, params
    norm_sq = norm(jax.tree.map(lambda u: u.astype(compute_dtype(u)), updates), squared=True)
    should_skip = jnp.logical_not(norm_sq < jnp.asarray(max_squared_norm, norm_sq.dtype))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}
