"""Lookahead: a fast optimizer takes k steps, then the slow weights move toward it.

``lookahead`` has Optax's contract: the caller holds ``LookaheadParams(fast, slow)``.
``lookahead_in_state`` is the same algorithm for plain params: the params are the fast
weights and the slow weights live in the state, as in the PyTorch implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, TypeGuard, cast

import jax
import jax.core
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, Params, apply_updates, with_extra_args_support
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import compute_dtype, ema_weights, map_leaves
from optix.tree.state import NamedTupleKey, get_all_with_path

Pullback = Literal["none", "reset", "pullback"]
MOMENTUM_FIELDS = ("trace", "momentum_buffer")


class LookaheadState(NamedTuple):
    """State of ``lookahead`` (Optax's layout)."""

    fast_state: Any  # the fast optimizer's state
    steps_since_sync: jax.Array  # int32 scalar: fast steps since the last synchronisation


class LookaheadPullbackState(NamedTuple):
    """State of ``lookahead`` with ``pullback_momentum="pullback"``."""

    fast_state: Any
    steps_since_sync: jax.Array
    slow_momentum: Any  # the momentum buffers as they were at the last synchronisation


class LookaheadParams(NamedTuple):
    """Fast and slow params of ``lookahead``: take gradients at ``fast``, evaluate ``slow``."""

    fast: Params
    slow: Params

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Fast and slow params both equal to ``params``."""
        return cls(fast=params, slow=params)


class SlowParamsState(NamedTuple):
    """State of ``lookahead_in_state``: lookahead's state and the slow params."""

    inner_state: Any  # LookaheadState or LookaheadPullbackState
    slow: Params  # the slow weights, for evaluation


def _holds_fast_and_slow(params: Any) -> TypeGuard[LookaheadParams]:
    # Duck-typed, so Optax's LookaheadParams work too.
    return hasattr(params, "fast") and hasattr(params, "slow")


def check_sync_period(fn: str, sync_period: Any) -> None:
    """An int >= 1; integer arrays (``inject_hyperparams`` makes them) are checked if concrete."""
    if isinstance(sync_period, jax.Array) and jnp.issubdtype(sync_period.dtype, jnp.integer):
        if isinstance(sync_period, jax.core.Tracer) or sync_period.ndim:
            return
        sync_period = int(sync_period)
    _checks.integer_at_least(fn, "sync_period", sync_period, 1)


def _check_args(fn, sync_period, slow_step_size, reset_state, pullback_momentum) -> None:
    check_sync_period(fn, sync_period)
    _checks.in_unit_interval(fn, closed_right=True, slow_step_size=slow_step_size)
    _checks.one_of(fn, "pullback_momentum", pullback_momentum, ("none", "reset", "pullback"))
    if reset_state and pullback_momentum != "none":
        raise ValueError(
            f"{fn}: pullback_momentum must be 'none' when reset_state=True (the whole fast "
            f"state is re-initialised), got pullback_momentum={pullback_momentum!r}"
        )


def _is_momentum(path, fields: Sequence[str]) -> bool:
    return any(isinstance(k, jax.tree_util.GetAttrKey) and k.name in fields for k in path)


def _momentum_part(fast_state: Any, fields: Sequence[str]) -> Any:
    """``fast_state`` with every leaf that is not momentum replaced by None."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x if _is_momentum(path, fields) else None, fast_state
    )


def _replace_momentum(fast_state: Any, momentum: Any, fields: Sequence[str]) -> Any:
    new_leaves = iter(jax.tree.leaves(momentum))
    return jax.tree_util.tree_map_with_path(
        lambda path, x: next(new_leaves) if _is_momentum(path, fields) else x, fast_state
    )


def _check_has_momentum(fast_state: Any, fields: Sequence[str], pullback: str) -> None:
    found = [
        path
        for name in fields
        for path, _ in get_all_with_path(fast_state, name)
        if path and isinstance(path[-1], NamedTupleKey) and path[-1].name == name
    ]
    if not found:
        raise ValueError(
            f"lookahead: pullback_momentum={pullback!r} acts on the fast optimizer's momentum, "
            f"but its state has no field named any of {tuple(fields)}. Name the fields that "
            "hold momentum with momentum_fields, e.g. momentum_fields=('mu',) for Adam."
        )


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
    *,
    pullback_momentum: Pullback = "none",
    momentum_fields: Sequence[str] = MOMENTUM_FIELDS,
) -> GradientTransformation:
    """Lookahead: every ``sync_period`` steps, move the slow params toward the fast ones.

    The fast optimizer runs on ``params.fast``; on every ``sync_period``-th step the slow
    params take a step of size ``slow_step_size`` toward the new fast params and the fast
    params are reset to them.

    For each leaf, with u the fast optimizer's update, f and s the fast and slow params,
    sync true on the steps that complete ``sync_period`` fast steps, and a =
    ``slow_step_size``:

        d = f + u - s
        slow update = a * d                       if sync else 0
        fast update = u - (1 - a) * d             if sync else u
        (so after a sync, fast = slow = s + a * d)
        on a sync, for each momentum buffer m of the fast state (``momentum_fields``):
            pullback_momentum == "reset":     m = 0
            pullback_momentum == "pullback":  m = a * m + (1 - a) * m_slow;  m_slow = m

    m_slow starts at zero. The updates must be applied unchanged, or fast and slow drift
    apart. ``init`` also accepts the fast params alone, as Optax's does.

    "pullback" follows the intent of the authors' code (and pytorch_optimizer's
    Lookahead): m_slow is a copy of the buffer at the last synchronisation. In the
    authors' lookahead_pytorch.py m_slow becomes the very tensor that torch.optim.SGD
    updates in place, so from the second synchronisation on it scales the buffer by
    a * (2 - a) instead.

    Args:
        fast_optimizer: The inner optimizer.
        sync_period: Fast steps per synchronisation (k in the paper), an int >= 1.
        slow_step_size: Step of the slow params (alpha in the paper), in [0, 1]; 1 gives
            the fast optimizer alone.
        reset_state: Re-initialise the whole fast state at each synchronisation (Optax).
        pullback_momentum: What a synchronisation does to the fast optimizer's momentum:
            "none" (Optax), "reset" or "pullback" (the authors' PyTorch options).
        momentum_fields: Names of the state fields that hold momentum: ``trace``
            (``sgd``) and ``momentum_buffer`` (``optix.torch.sgd``) by default; ("mu",)
            for Adam's first moment.

    Returns:
        A GradientTransformation whose ``update`` takes ``params=LookaheadParams(fast,
        slow)`` and returns updates of the same kind; its state is ``LookaheadState``,
        or ``LookaheadPullbackState`` with pullback_momentum="pullback".

    References:
        Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
        NeurIPS 2019, arXiv:1907.08610, Algorithm 1.
        Checked against optax.lookahead, run_authors_lookahead (michaelrzhang/lookahead
        lookahead_pytorch.py in NumPy) and pytorch_optimizer.Lookahead in
        tests/transforms/test_lookahead.py.
    """
    _check_args("lookahead", sync_period, slow_step_size, reset_state, pullback_momentum)
    fast_optimizer = with_extra_args_support(fast_optimizer)
    fields = (momentum_fields,) if isinstance(momentum_fields, str) else tuple(momentum_fields)

    def init(params):
        fast = params.fast if _holds_fast_and_slow(params) else params
        fast_state = fast_optimizer.init(fast)
        steps = jnp.zeros([], jnp.int32)
        if pullback_momentum != "none":
            _check_has_momentum(fast_state, fields, pullback_momentum)
        if pullback_momentum == "pullback":
            slow_momentum = jax.tree.map(jnp.zeros_like, _momentum_part(fast_state, fields))
            return LookaheadPullbackState(fast_state, steps, slow_momentum)
        return LookaheadState(fast_state, steps)

    def leaf(u, f, s, sync):
        dt = compute_dtype(u, f, s)
        a, one_minus_a = ema_weights(slow_step_size, dt)
        d = f.astype(dt) + u.astype(dt) - s.astype(dt)
        slow_u = jnp.where(sync, a * d, jnp.zeros_like(d))
        fast_u = jnp.where(sync, u.astype(dt) - one_minus_a * d, u.astype(dt))
        return fast_u.astype(u.dtype), slow_u.astype(s.dtype)

    def pull(m, m_slow, sync):
        dt = compute_dtype(m, m_slow)
        a, one_minus_a = ema_weights(slow_step_size, dt)
        pulled = (a * m.astype(dt) + one_minus_a * m_slow.astype(dt)).astype(m.dtype)
        return jnp.where(sync, pulled, m), jnp.where(sync, pulled.astype(m_slow.dtype), m_slow)

    def update(updates, state, params=None, **extra_args):
        if not _holds_fast_and_slow(params):
            raise ValueError(
                "lookahead needs params=LookaheadParams(fast, slow): call "
                "update(grads, state, params) with params = LookaheadParams.init_synced(p) "
                f"at the start (got {type(params).__name__}), or use lookahead_in_state, "
                "which takes plain params and keeps the slow ones in its state."
            )
        updates, fast_state = fast_optimizer.update(
            updates, state.fast_state, params.fast, **extra_args
        )
        sync = state.steps_since_sync == sync_period - 1
        fast_u, slow_u = map_leaves(
            lambda u, f, s: leaf(u, f, s, sync), updates, params.fast, params.slow, n_out=2
        )
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(lambda x, y: jnp.where(sync, y, x), fast_state, fresh)
        if pullback_momentum == "reset":
            momentum = _momentum_part(fast_state, fields)
            zeroed = jax.tree.map(lambda m: jnp.where(sync, jnp.zeros_like(m), m), momentum)
            fast_state = _replace_momentum(fast_state, zeroed, fields)
        steps = (state.steps_since_sync + 1) % sync_period
        new_updates = type(params)(fast=fast_u, slow=slow_u)
        if pullback_momentum == "pullback":
            momentum, slow_momentum = map_leaves(
                lambda m, m_slow: pull(m, m_slow, sync),
                _momentum_part(fast_state, fields),
                state.slow_momentum,
                n_out=2,
            )
            fast_state = _replace_momentum(fast_state, momentum, fields)
            return new_updates, LookaheadPullbackState(fast_state, steps, slow_momentum)
        return new_updates, LookaheadState(fast_state, steps)

    return GradientTransformation(init, update)


def lookahead_in_state(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size: float,
    reset_state: bool = False,
    *,
    pullback_momentum: Pullback = "none",
    momentum_fields: Sequence[str] = MOMENTUM_FIELDS,
) -> GradientTransformation:
    """``lookahead`` for plain params: the params are the fast weights, the slow in the state.

    The update rule and arguments are ``lookahead``'s. This transformation chains, jits
    and checkpoints like any other; it takes the params the model uses for its
    gradients, and the slow weights for evaluation are ``optix.tree.get(state, "slow")``.
    The state holds one more copy of the params than the fast optimizer's.

    Returns:
        A GradientTransformation whose state is ``SlowParamsState(inner_state, slow)``.

    References:
        Checked against run_authors_lookahead and pytorch_optimizer.Lookahead in
        tests/transforms/test_lookahead.py.
    """
    _check_args("lookahead_in_state", sync_period, slow_step_size, reset_state, pullback_momentum)
    inner = lookahead(
        fast_optimizer,
        sync_period,
        slow_step_size,
        reset_state,
        pullback_momentum=pullback_momentum,
        momentum_fields=momentum_fields,
    )

    def init(params):
        # A copy: one buffer in both the params and the state could not be donated twice.
        return SlowParamsState(inner_state=inner.init(params), slow=jax.tree.map(jnp.copy, params))

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="lookahead_in_state"))
        both = LookaheadParams(fast=params, slow=state.slow)
        new_updates, inner_state = inner.update(updates, state.inner_state, both, **extra_args)
        # lookahead's updates have the structure of its params: fast and slow.
        new_updates = cast(LookaheadParams, new_updates)
        slow = apply_updates(state.slow, new_updates.slow)
        return new_updates.fast, SlowParamsState(inner_state=inner_state, slow=slow)

    return GradientTransformation(init, update)
