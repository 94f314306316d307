"""Fromage: per-layer relative steps followed by a shrink of the parameters."""

from __future__ import annotations

import math

import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.trust_ratio import scale_by_trust_ratio
from optix.transforms.weight_decay import signed_decayed_weights


def _step_and_decay(lr):
    """``(lr / sqrt(1 + lr**2), lr / (sqrt(1 + lr**2) + 1))``, in Python floats for numbers.

    The decay is ``(sqrt(1 + lr**2) - 1) / lr`` written without the cancellation.
    """
    if isinstance(lr, int | float):
        root = math.sqrt(1.0 + lr * lr)
        return lr / root, lr / (root + 1.0)
    array_root = jnp.sqrt(1.0 + lr * lr)
    return lr / array_root, lr / (array_root + 1.0)


def fromage(learning_rate: ScalarOrSchedule, min_norm: float = 1e-6) -> GradientTransformation:
    """Fromage: move each leaf by ``learning_rate * ||p||`` along g, then shrink it.

    For each leaf, with g the incoming gradient, p the parameter, lr the learning rate
    and ||.|| the Frobenius norm of the whole leaf (clipped below at ``min_norm``):

        p_new = (p - lr * ||p|| / ||g|| * g) / sqrt(1 + lr**2)

    written as decoupled weight decay with a rescaled learning rate,

        u = -(lr / sqrt(1 + lr**2)) * (||p|| / ||g|| * g + lr / (sqrt(1 + lr**2) + 1) * p)

    i.e. Optax's chain ``(scale_by_trust_ratio(min_norm), scale_by_learning_rate(step),
    add_decayed_weights(-step * decay))``, with its state. Optax writes the rate
    ``-step * decay`` as ``1 / sqrt(1 + lr**2) - 1``, which cancels for small lr; the
    form here does not.

    Args:
        learning_rate: Step size (a negative one ascends), or a schedule of the step count.
        min_norm: Lower clip of both norms in the ratio, >= 0 (keeps zero gradients
            and zero parameters finite).

    Returns:
        A GradientTransformation whose state is ``(ScaleByTrustRatioState, EmptyState,
        EmptyState)``, or ``(ScaleByTrustRatioState, ScaleByScheduleState,
        WeightDecaySchedule)`` for a schedule.

    References:
        Bernstein, Vahdat, Yue & Liu, "On the distance between two neural networks and
        the stability of learning", NeurIPS 2020, arXiv:2002.03432.
        Checked against optax.fromage and pytorch_optimizer.Fromage in
        tests/optimizers/test_fromage.py.
    """
    _checks.finite("fromage", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("fromage", min_norm=min_norm)
    if callable(learning_rate):
        step = lambda count: _step_and_decay(learning_rate(count))[0]
        shrink = lambda count: _shrink(*_step_and_decay(learning_rate(count)))
    else:
        step, shrink = _step_and_decay(learning_rate)[0], _shrink(*_step_and_decay(learning_rate))
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step),
        signed_decayed_weights(shrink),
    )


def _shrink(step, decay):
    """The (negative) decay rate ``-step * decay`` that follows the learning rate."""
    return -(step * decay)
