"""LARS: SGD with momentum and a per-layer trust ratio."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, MaskOrFn, ScalarOrSchedule, chain
from optix.transforms.masking import masked
from optix.transforms.momentum import trace
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.trust_ratio import scale_by_trust_ratio
from optix.transforms.weight_decay import add_decayed_weights


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: float = 0.9,
    nesterov: bool = False,
    *,
    lr_inside_buffer: bool = True,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """LARS: coupled weight decay, a per-leaf trust ratio, then heavy-ball momentum.

    For each leaf, with g the incoming gradient, p the parameter and ||.|| the Frobenius
    norm of the whole leaf:

        g = g + weight_decay * p                                      where weight_decay_mask
        ratio = trust_coefficient * ||p|| / (||g|| + eps),  1 if ||p|| == 0 or ||g|| == 0
        g = ratio * g                                                 where trust_ratio_mask
        v = learning_rate * g + momentum * v                          if lr_inside_buffer
        u = -v,  or with nesterov  u = -(learning_rate * g + momentum * v)
        v = g + momentum * v                                          otherwise
        u = -learning_rate * v,  or with nesterov  u = -learning_rate * (g + momentum * v)

    The default is Optax's ``lars``: ``chain(add_decayed_weights, masked(scale_by_trust_ratio),
    scale_by_learning_rate, trace)``, momentum on learning-rate-scaled steps. MoCo v3 /
    MAE's LARS keeps the momentum on the unscaled step and skips decay and trust ratio for
    leaves with ndim <= 1; the two agree under a constant learning rate. To reproduce it::

        matrices = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
        lars(lr, weight_decay, weight_decay_mask=matrices, trust_ratio_mask=matrices,
             lr_inside_buffer=False)

    Args:
        learning_rate: Step size (a negative one ascends), or a schedule of the step count.
        weight_decay: Coupled weight decay, >= 0, or a schedule.
        weight_decay_mask: Where to decay: a tree of bools, a function of the params, or
            ``True`` (all).
        trust_coefficient: Multiplier of the trust ratio (eta in the paper), >= 0.
        eps: Added to ||g|| in the ratio's denominator, >= 0.
        trust_ratio_mask: Where to apply the trust ratio (as ``weight_decay_mask``).
        momentum: Momentum coefficient, > -1.
        nesterov: Use Nesterov momentum.
        lr_inside_buffer: Accumulate ``learning_rate * g`` (Optax, Keras) rather than g
            (MoCo v3, MAE, torch's SGD).
        mu_dtype: Dtype of the momentum buffer ``v`` (``TraceState.trace``); ``None``
            keeps the params' dtype. It is updated in at least float32 and stored back.

    Returns:
        A GradientTransformation whose state is ``(MaskedState, MaskedState,
        EmptyState, TraceState)`` (``ScaleByScheduleState`` in place of the ``EmptyState``
        for a scheduled learning rate), the last two swapped without
        ``lr_inside_buffer``.

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks",
        arXiv:1708.03888, 2017.
        Checked against optax.lars and a NumPy transliteration of MAE's util/lars.py in
        tests/optimizers/test_lars.py.
    """
    _checks.finite("lars", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("lars", allow_schedule=True, weight_decay=weight_decay)
    _checks.non_negative("lars", trust_coefficient=trust_coefficient, eps=eps)
    _checks.in_interval("lars", "(-1, inf)", momentum=momentum)
    _checks.floating_dtype("lars", mu_dtype=mu_dtype)
    trust_ratio = masked(
        scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask
    )
    momentum_tx = trace(decay=momentum, nesterov=nesterov, accumulator_dtype=mu_dtype)
    lr_tx = scale_by_learning_rate(learning_rate)
    steps = (lr_tx, momentum_tx) if lr_inside_buffer else (momentum_tx, lr_tx)
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask), trust_ratio, *steps)
