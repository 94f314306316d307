"""Stochastic gradient descent, with heavy-ball or Nesterov momentum."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, identity
from optix.transforms.momentum import trace
from optix.transforms.scaling import scale_by_learning_rate


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """SGD: ``chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))``.

    For each leaf, with g the incoming gradient:

        trace = g + momentum * trace
        u = -learning_rate * (g + momentum * trace   if nesterov else   trace)

    Without momentum, ``u = -learning_rate * g`` and ``identity()`` takes the place of
    ``trace`` (Optax's layout). The
    learning rate multiplies the buffer's output, so a changed learning rate acts on
    the whole velocity at once, as in torch.optim.SGD (with ``dampening=0``).

    Args:
        learning_rate: Step size (a negative one ascends), or a schedule of the step count.
        momentum: Momentum coefficient, > -1 (negative momentum is allowed); ``None`` for
            plain SGD.
        nesterov: Use Nesterov momentum (needs ``momentum``).
        accumulator_dtype: Dtype of the momentum buffer; ``None`` keeps the params'.

    References:
        Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
        momentum in deep learning", ICML 2013.
        Checked against torch.optim.SGD and optax.sgd in tests/optimizers/test_sgd.py.
    """
    _checks.finite("sgd", allow_schedule=True, learning_rate=learning_rate)
    _checks.floating_dtype("sgd", accumulator_dtype=accumulator_dtype)
    if momentum is None:
        if nesterov:
            raise ValueError("sgd: nesterov=True needs a momentum, got momentum=None")
        return chain(identity(), scale_by_learning_rate(learning_rate))
    _checks.in_interval("sgd", "(-1, inf)", momentum=momentum)
    return chain(
        trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )
