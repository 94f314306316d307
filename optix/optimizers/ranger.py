"""Ranger: RAdam with Lookahead and gradient centralization (lessw2020's Ranger)."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, MaskOrFn, ScalarOrSchedule, chain, identity
from optix.optimizers.adam import check_moment_args
from optix.optimizers.radam import check_radam_args, scale_by_radam
from optix.transforms.centralize import centralize
from optix.transforms.lookahead import check_sync_period, lookahead_in_state
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights


def ranger(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.95,
    b2: float = 0.999,
    eps: float = 1e-5,
    threshold: float = 5.0,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    use_gc: bool = True,
    gc_conv_only: bool = False,
    gc_channel_last: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Ranger: gradient centralization, then RAdam, inside Lookahead.

    Ranger as lessw2020 wrote it: its RAdam rectifies only when rho_t > threshold
    (strictly), is momentum SGD before that, puts eps on the raw root, and decays the
    weights (decoupled) on every step.

    For each leaf, with g the incoming gradient, t = count + 1, c(b, t) = 1 - b**t, and
    rho_t, r_t RAdam's (see ``scale_by_radam``):

        g = g - mean(g, axis=every axis but k)   if use_gc and g.ndim >= 2 (4 if gc_conv_only)
            with k the first axis, or the last if gc_channel_last
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        u = r_t * sqrt(c(b2, t)) * (mu / c(b1, t)) / (sqrt(nu) + eps)   if rho_t > threshold
        u = mu / c(b1, t)                                                 otherwise
        p = p - learning_rate * (u + weight_decay * p)
        every sync_period steps: slow = slow + slow_step_size * (p - slow); p = slow

    That is ``lookahead_in_state(chain(centralize(...), scale_by_radam(b1, b2, eps,
    threshold=threshold, eps_placement="raw", strict_threshold=True),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate)),
    sync_period, slow_step_size)``. As in the reference, the params are the fast weights
    and the slow weights live in the state (``optix.tree.get(state, "slow")``), so this
    takes plain params, unlike Optax's ``lookahead``; for the ``LookaheadParams`` form,
    use ``lookahead`` on the same chain. Ranger's names: alpha = slow_step_size, k =
    sync_period, N_sma_threshhold = threshold, betas = (b1, b2).

    Ranger keeps axis 0 out of the GC mean: the output units of PyTorch weights. Flax
    kernels keep them last, so Flax models get the paper's centralization with
    gc_channel_last=True.

    Args:
        learning_rate: Step size (a negative one ascends), or a schedule of the step count.
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to the raw root sqrt(nu), >= 0.
        threshold: rho_t must exceed it for the adaptive step, >= 4.
        sync_period: Steps between Lookahead synchronisations, an int >= 1.
        slow_step_size: Lookahead's interpolation factor, in [0, 1].
        weight_decay: Decoupled weight decay, >= 0, or a schedule.
        mask: Where to apply the weight decay (see ``add_decayed_weights``).
        use_gc: Centralize the gradients of leaves with >= 2 axes.
        gc_conv_only: Centralize only leaves with >= 4 axes (convolution kernels).
        gc_channel_last: The output units are the last axis (Flax), not the first.
        mu_dtype: Dtype of RAdam's ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of RAdam's ``nu``; ``None`` keeps the params' dtype. The slow
            weights keep the params' dtype.

    Returns:
        A GradientTransformation whose state is ``SlowParamsState``.

    References:
        Wright, Ranger-Deep-Learning-Optimizer, ranger/ranger.py (version 20.4.11),
        github.com/lessw2020/Ranger-Deep-Learning-Optimizer, 2019-2020.
        Liu et al., arXiv:1908.03265; Zhang et al., arXiv:1907.08610; Yong et al.,
        arXiv:2004.01461.
        Checked against run_ranger (lessw2020's ranger.py in NumPy) in
        tests/optimizers/test_ranger.py.
    """
    check_moment_args("ranger", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    check_radam_args("ranger", threshold, "raw", "sgd")
    _checks.finite("ranger", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("ranger", allow_schedule=True, weight_decay=weight_decay)
    check_sync_period("ranger", sync_period)
    _checks.in_unit_interval("ranger", closed_right=True, slow_step_size=slow_step_size)
    gc = (
        centralize(min_ndim=4 if gc_conv_only else 2, channel_axis=-1 if gc_channel_last else 0)
        if use_gc
        else identity()
    )
    fast = chain(
        gc,
        scale_by_radam(
            b1,
            b2,
            eps,
            threshold=threshold,
            eps_placement="raw",
            strict_threshold=True,
            mu_dtype=mu_dtype,
            nu_dtype=nu_dtype,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
    return lookahead_in_state(fast, sync_period, slow_step_size)
