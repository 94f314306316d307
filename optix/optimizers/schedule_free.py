"""Schedule-Free: interpolation and averaging in place of momentum and a decaying schedule.

``schedule_free`` wraps a base optimizer (without momentum); ``schedule_free_sgd`` and
``schedule_free_adamw`` (in ``schedule_free_aliases.py``) are the official SGD and AdamW
forms. The params the wrapper updates are the gradient points y; evaluate at x, which
``schedule_free_eval_params`` recovers from y and the state's z.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    Params,
    ScalarOrSchedule,
    safe_increment,
    with_extra_args_support,
)
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.casting import dtype as tree_dtype
from optix.tree.leafwise import compute_dtype, ema_weights, map_leaves, real_dtype, real_part
from optix.tree.state import format_path, get_all_with_path

BaseParams = Literal["y", "z"]


class ScheduleFreeState(NamedTuple):
    """State of ``schedule_free`` (Optax's layout).

    The scalars have the lowest dtype of the params, as in Optax.
    """

    b1: jax.Array  # scalar: the interpolation weight b1 (for schedule_free_eval_params)
    weight_sum: jax.Array  # scalar: sum of the averaging weights so far
    step_count: jax.Array  # int32 scalar: 1 + number of updates applied so far
    max_lr: jax.Array  # scalar: largest learning rate seen so far (0 at init)
    base_optimizer_state: Any  # the base optimizer's state
    z: Any  # param-shaped: the base optimizer's iterates (dtype state_dtype)


def check_args(fn: str, b1: Any, weight_lr_power: Any, r: Any, state_dtype: Any) -> None:
    """The checks shared by ``schedule_free`` and its aliases; b1 in (0, 1] because the
    eval params divide by it."""
    _checks.in_interval(fn, "(0, 1]", b1=b1)
    _checks.finite(fn, weight_lr_power=weight_lr_power, r=r)
    _checks.floating_dtype(fn, state_dtype=state_dtype)


def schedule_free(
    base_optimizer: GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    weight_lr_power: float = 2.0,
    state_dtype: jax.typing.DTypeLike | None = None,
    *,
    r: float = 0.0,
    base_params: BaseParams = "y",
) -> GradientTransformation:
    """Make ``base_optimizer`` schedule-free: average its iterates instead of decaying.

    The base optimizer's iterates are z, the averaged sequence is x and the gradients
    are taken at y = b1 * x + (1 - b1) * z, the params this transformation updates. For
    each step, with k = step_count (1 on the first update), u the base optimizer's update
    (given the gradient at y) and lr the learning rate at k:

        max_lr = max(max_lr, lr)
        weight = k**r * max_lr**weight_lr_power
        weight_sum = weight_sum + weight
        ck = weight / weight_sum                  (0 while weight_sum is 0)
        z_new = z + u
        x_new = (1 - ck) * x + ck * z_new
        y_new = b1 * x_new + (1 - b1) * z_new
              = y + ck * (z_new - y) + (1 - ck) * (1 - b1) * u

    The last line is what is computed: x is never stored, and no division by b1 is needed
    (Optax recomputes x = (y - (1 - b1) * z) / b1 each step; the two agree exactly in
    exact arithmetic, whatever y is). With lr constant and r = 0, x_new is the uniform
    average of z_1 .. z_k. Evaluate the model at x: ``schedule_free_eval_params``.

    The base optimizer must apply its own learning rate and have no momentum (e.g.
    ``sgd(lr)``, or AdamW with b1 = 0). It gets the gradient at y and, as params, y
    (``base_params="y"``, as in Optax and the official code: weight decay at y) or z
    (``"z"``: the official reference implementation's ``decay_at_z=True``). The schedule
    ``learning_rate`` is evaluated at k = count + 1 for the averaging weight, while a
    schedule inside the base optimizer sees its own count from 0 (Optax's behavior); give
    the base optimizer ``lambda count: schedule(count + 1)`` for the official timing.

    Args:
        base_optimizer: The transformation that produces z's updates, without momentum.
        learning_rate: The base optimizer's learning rate (a number or a schedule), used
            only for the averaging weights; warmup but no decay.
        b1: Interpolation weight of x in y, in (0, 1]; tune it with the learning rate
            and the warmup (0.9 by default, values up to 0.98 are in use).
        weight_lr_power: Power of the largest learning rate so far in the averaging
            weight (finite; 0 for uniform weights). Down-weights the warmup iterates.
        state_dtype: Dtype of z; ``None`` keeps the params' dtype.
        r: Power of the step count in the averaging weight (the official ``r``; Optax has
            no such option and uses 0).
        base_params: ``"y"`` or ``"z"``, the sequence the base optimizer gets as params.

    Returns:
        A GradientTransformation whose state is ``ScheduleFreeState``; its updates take
        the params from y to y_new.

    References:
        Defazio et al., "The Road Less Scheduled", NeurIPS 2024, arXiv:2405.15682.
        Checked against optax.contrib.schedule_free and the official schedulefree package
        (facebookresearch/schedule_free) in tests/optimizers/test_schedule_free.py.
    """
    fn = "schedule_free"
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    check_args(fn, b1, weight_lr_power, r, state_dtype)
    _checks.one_of(fn, "base_params", base_params, ("y", "z"))
    base_optimizer = with_extra_args_support(base_optimizer)

    def init(params):
        scalar_dtype = tree_dtype(params, "lowest")
        cast = (lambda p: p) if state_dtype is None else (lambda p: p.astype(state_dtype))
        # A copy, so that params and state can both be donated to a jitted step.
        z = jax.tree.map(lambda p: jnp.array(cast(jnp.asarray(p)), copy=True), params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, scalar_dtype),
            weight_sum=jnp.zeros([], scalar_dtype),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], scalar_dtype),
            base_optimizer_state=base_optimizer.init(params),
            z=z,
        )

    def averaging_weight(state):
        """(ck, new weight_sum, new max_lr), computed in at least float32."""
        dt = compute_dtype(jax.ShapeDtypeStruct((), real_dtype(state.max_lr.dtype)))
        count = state.step_count
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        max_lr = jnp.maximum(state.max_lr.real.astype(dt), jnp.asarray(lr, dt))
        weight = max_lr ** jnp.asarray(weight_lr_power, dt)
        if not (isinstance(r, int | float) and r == 0):
            weight = weight * count.astype(dt) ** jnp.asarray(r, dt)
        weight_sum = state.weight_sum.real.astype(dt) + weight
        ratio = jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf)  # 0 / 0 -> 0
        ck = jnp.where(jnp.isnan(weight) | jnp.isnan(weight_sum), jnp.nan, ratio)
        return ck, weight_sum, max_lr

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        ck, weight_sum, max_lr = averaging_weight(state)
        at = params if base_params == "y" else state.z
        u, base_state = base_optimizer.update(updates, state.base_optimizer_state, at, **extra_args)

        def leaf(u, z, y):
            dt = compute_dtype(u, z, y)
            ck_, u_ = ck.astype(dt), u.astype(dt)
            one_minus_b1 = ema_weights(b1, real_dtype(dt))[1].astype(dt)
            z_new = (z.astype(dt) + u_).astype(z.dtype)
            step = ck_ * (z_new.astype(dt) - y.astype(dt)) + (1 - ck_) * one_minus_b1 * u_
            out = jnp.promote_types(u.dtype, y.dtype)
            step = step if jnp.issubdtype(out, jnp.complexfloating) else real_part(step)
            return step.astype(out), z_new

        y_updates, z = map_leaves(leaf, u, state.z, params, n_out=2)
        new_state = ScheduleFreeState(
            b1=state.b1,
            weight_sum=weight_sum.astype(state.weight_sum.dtype),
            step_count=safe_increment(state.step_count),
            max_lr=max_lr.astype(state.max_lr.dtype),
            base_optimizer_state=base_state,
            z=z,
        )
        return y_updates, new_state

    return GradientTransformation(init, update)


def find_schedule_free_state(state: Any, fn: str) -> ScheduleFreeState:
    """The one ``ScheduleFreeState`` in ``state`` (at its top or nested: chain, MultiSteps,
    inject_hyperparams, a Flax TrainState's opt_state)."""
    if isinstance(state, ScheduleFreeState):
        return state
    found = get_all_with_path(state, "ScheduleFreeState")
    if len(found) == 1:
        return found[0][1]
    if not found:
        raise ValueError(
            f"{fn} needs the state of a schedule_free optimizer (a ScheduleFreeState, at the "
            f"top of the state or inside it), got a state of type {type(state).__name__} "
            "holding none. Pass the opt_state of the schedule-free optimizer."
        )
    paths = ", ".join(format_path(path) for path, _ in found)
    raise ValueError(
        f"{fn}: the state holds {len(found)} ScheduleFreeStates (at {paths}); pass the "
        "one that belongs to the params."
    )


def schedule_free_eval_params(state: Any, params: Params) -> Params:
    """The params to evaluate at, x = (y - (1 - b1) * z) / b1, from the training params y.

    ``state`` is the optimizer state that holds the ``ScheduleFreeState``: its top (as
    Optax requires) or any state containing exactly one, such as
    ``chain(clip_by_global_norm(1.0), schedule_free_adamw(...))``'s, a ``MultiSteps``
    state, or a Flax TrainState's ``opt_state``:

        eval_params = schedule_free_eval_params(train_state.opt_state, train_state.params)

    This is the official code's ``optimizer.eval()``. Models with BatchNorm must
    recompute their statistics at x before evaluating (docs/reference/schedule_free.md).
    The result has the dtypes and shapes of ``params``.
    """
    sf = find_schedule_free_state(state, "schedule_free_eval_params")
    b1 = sf.b1

    def leaf(y, z):
        dt = compute_dtype(y, z, b1)
        b1_ = b1.real.astype(dt)
        return ((y.astype(dt) - (1 - b1_) * z.astype(dt)) / b1_).astype(y.dtype)

    return jax.tree.map(leaf, params, sf.z)


def schedule_free_train_params(state: Any, eval_params: Params) -> Params:
    """The training params y = b1 * x + (1 - b1) * z from evaluation params x.

    The inverse of ``schedule_free_eval_params`` (the official ``optimizer.train()``):
    resume training from params saved at x, e.g. from a PyTorch checkpoint written in
    eval mode, with the state's z. ``state`` is found as in ``schedule_free_eval_params``.
    """
    sf = find_schedule_free_state(state, "schedule_free_train_params")
    b1 = sf.b1

    def leaf(x, z):
        dt = compute_dtype(x, z, b1)
        b1_ = b1.real.astype(dt)
        return (b1_ * x.astype(dt) + (1 - b1_) * z.astype(dt)).astype(x.dtype)

    return jax.tree.map(leaf, eval_params, sf.z)
