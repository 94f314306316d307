"""Gradient accumulation: ``MultiSteps`` (one inner step per k micro-steps) and
``apply_every`` (sum k updates, emit every k-th)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, Params, Updates, safe_increment, zero_count
from optix.transforms.conditional import as_transformation, keep_dtypes
from optix.transforms.finite import ShouldSkipUpdateFunction
from optix.tree.casting import cast_like
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import zeros_like


class MultiStepsState(NamedTuple):
    """State of ``MultiSteps``."""

    mini_step: jax.Array  # int32: micro-steps accumulated since the last inner step
    gradient_step: jax.Array  # int32: inner steps taken so far
    inner_opt_state: Any
    acc_grads: Any  # param-shaped, accumulator_dtype: running mean (or sum) of g
    skip_state: Any = ()  # what should_skip_update_fn reported on the last micro-step


def _never_skip(updates, gradient_step, params):
    del updates, gradient_step, params
    return jnp.asarray(False), ()


class MultiSteps:
    """Accumulate k micro-step gradients and run the inner optimizer once on their mean.

    For each leaf, with g the incoming update, n = mini_step and
    k = every_k_schedule(gradient_step):

        acc = g                                         if n == 0
        acc = acc + (g - acc) / (n + 1)                 otherwise (acc + g if not
                                                        use_grad_mean)
        u, inner_state = opt.update(acc, inner_state)   if n == k - 1
        u = 0                                           otherwise

    k micro-steps therefore equal one step of ``opt`` on the mean (or sum) of their
    gradients. Optax computes the inner update on every micro-step and discards it
    with ``jnp.where``; here it runs in a ``lax.cond`` branch, so a non-emitting
    micro-step costs one accumulate (under ``vmap`` of the step the branch becomes a
    select and both sides run). The only extra memory is ``acc``, kept in
    ``accumulator_dtype`` (float32 by default, so bf16 gradients accumulate without
    loss) and handed to ``opt`` cast to the gradients' dtype; with the state donated,
    a micro-step updates ``acc`` in place and needs no param-sized scratch buffer (on
    CPU, XLA still copies bf16 state leaves through the branch). A micro-step that
    ``should_skip_update_fn`` rejects changes nothing but ``skip_state``.

    Differences from Optax, same updates otherwise: after an emitting step ``acc``
    keeps the window's mean (Optax zeroes it; the next micro-step overwrites it either
    way). Optax clears ``acc`` by multiplying with ``emit``, so one NaN gradient makes
    all later updates NaN; here the next window starts clean. With an accumulator
    narrower than the gradients, ``opt`` sees the stored (rounded) mean, where Optax
    hands it the last micro-step's unrounded value (at the cost of a scratch buffer).
    Use ``.gradient_transformation()`` for a GradientTransformation (``chain`` and
    ``masked`` need one to forward extra arguments).

    Args:
        opt: The inner optimizer; it receives the extra arguments of the emitting step.
        every_k_schedule: Micro-steps per inner step: an int >= 1, or a function of
            ``gradient_step`` returning one (varies the effective batch size).
        use_grad_mean: Average the micro-step gradients (True) or sum them.
        should_skip_update_fn: ``(updates, gradient_step, params) -> (bool, skip_state)``
            deciding to drop a micro-step, e.g. ``skip_not_finite``; None keeps all.
        accumulator_dtype: Dtype of ``acc``; None uses the params' dtype.

    References:
        Checked against optax.MultiSteps in tests/transforms/test_accumulation.py.
    """

    def __init__(
        self,
        opt: GradientTransformation,
        every_k_schedule: int | Callable[[jax.Array], jax.typing.ArrayLike],
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype: jax.typing.DTypeLike | None = jnp.float32,
    ):
        if not callable(every_k_schedule):
            _checks.integer_at_least("MultiSteps", "every_k_schedule", every_k_schedule, 1)
        self._opt = as_transformation(opt)
        self._every_k_schedule = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._should_skip_update_fn = should_skip_update_fn or _never_skip
        self._accumulator_dtype = accumulator_dtype

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return self._opt

    def _k(self, gradient_step: jax.Array) -> jax.Array:
        k = self._every_k_schedule
        return jnp.asarray(k(gradient_step) if callable(k) else k).astype(jnp.int32)

    def _acc_dtype(self) -> Any:
        dtype = self._accumulator_dtype
        return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)

    def init(self, params: Params) -> MultiStepsState:
        """The initial state: zero counters and accumulator, ``opt.init(params)``."""
        gradient_step = zero_count()
        _, skip_state = self._should_skip_update_fn(zeros_like(params), gradient_step, params)
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self._opt.init(params),
            acc_grads=zeros_like(params, dtype=self._acc_dtype()),
            skip_state=skip_state,
        )

    def update(
        self,
        updates: Updates,
        state: MultiStepsState | Any,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[Updates, MultiStepsState]:
        """Accumulate ``updates``; on every k-th accepted micro-step, run ``opt``."""
        k = self._k(state.gradient_step)
        skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if skip.dtype != jnp.bool_ or skip.shape != ():
            raise ValueError(
                "MultiSteps: should_skip_update_fn must return a bool scalar first, got "
                f"dtype {skip.dtype} and shape {skip.shape}"
            )
        n = state.mini_step

        def accumulate(g, acc):
            dt = compute_dtype(g, acc)
            g_, acc_ = g.astype(dt), acc.astype(dt)
            step = (g_ - acc_) / (n + 1).astype(dt) if self._use_grad_mean else g_
            # A window's first micro-step overwrites the accumulator, so no step has to
            # clear it: the lax.cond below reads it and never writes it, which lets XLA
            # update it in place (a cond that wrote it would copy it every micro-step).
            new = jnp.where(n == 0, g_, acc_ + step)
            return (jnp.where(skip, acc_, new).astype(acc.dtype),)

        (acc,) = map_leaves(accumulate, updates, state.acc_grads, n_out=1)
        emit = jnp.logical_and(jnp.logical_not(skip), n == k - 1)

        def step(acc, inner_state):
            new_updates, new_state = self._opt.update(
                cast_like(acc, updates), inner_state, params, **extra_args
            )
            return new_updates, keep_dtypes(new_state, inner_state)

        shapes = jax.eval_shape(step, acc, state.inner_opt_state)[0]

        def hold(acc, inner_state):
            return zeros_like(shapes), inner_state

        new_updates, inner_state = jax.lax.cond(emit, step, hold, acc, state.inner_opt_state)
        return new_updates, MultiStepsState(
            mini_step=jnp.where(skip, n, safe_increment(n) % k),
            gradient_step=jnp.where(emit, safe_increment(state.gradient_step), state.gradient_step),
            inner_opt_state=inner_state,
            acc_grads=acc,
            skip_state=skip_state,
        )

    def has_updated(self, state: MultiStepsState | Any) -> jax.Array:
        """Whether the last call ran the inner optimizer (its updates are not zeros)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This wrapper as a GradientTransformation."""
        return GradientTransformation(init=self.init, update=self.update)


class ApplyEvery(NamedTuple):
    """State of ``apply_every``."""

    # int32: micro-steps into the current window, in [0, k)
    count: jax.Array  # type: ignore[assignment]
    grad_acc: Any  # param-shaped: sum of the window's updates so far


def apply_every(k: jax.typing.ArrayLike = 1) -> GradientTransformation:
    """Sum the updates of k consecutive steps and emit the sum on the k-th; zeros before.

    For each leaf, with g the incoming update and c = count (in [0, k)):

        grad_acc = g              if c == 0
        grad_acc = grad_acc + g   otherwise
        u = grad_acc if c == k - 1 else 0

    Transformations chained before it still update on every step; to run a whole
    optimizer once per k steps on the mean gradient use ``MultiSteps``. ``grad_acc``
    keeps the params' dtype and holds the last emitted sum until the next window.

    Args:
        k: Steps per emission, an int >= 1.

    Returns:
        A GradientTransformation whose state is ``ApplyEvery``.

    References:
        Checked against optax.apply_every in tests/transforms/test_accumulation.py.
    """
    if not isinstance(k, jax.Array):  # a traced k (inject_hyperparams) passes
        _checks.integer_at_least("apply_every", "k", k, 1)

    def leaf(g, ga, first, emit):
        dt = compute_dtype(g, ga)
        new = jnp.where(first, jnp.zeros([], dt), ga.astype(dt)) + g.astype(dt)
        u = jnp.where(emit, new, jnp.zeros([], dt))
        return u.astype(g.dtype), new.astype(ga.dtype)

    def init(params):
        return ApplyEvery(count=zero_count(), grad_acc=zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        c = state.count % k
        updates, grad_acc = map_leaves(
            lambda g, ga: leaf(g, ga, c == 0, c == k - 1), updates, state.grad_acc, n_out=2
        )
        return updates, ApplyEvery(count=safe_increment(state.count) % k, grad_acc=grad_acc)

    return GradientTransformation(init, update)
