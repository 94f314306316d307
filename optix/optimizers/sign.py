"""Sign descent: signSGD and Signum (the sign of a moving average)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, init_empty_state
from optix.transforms.momentum import ema
from optix.transforms.scaling import scale_by_learning_rate


def scale_by_sign() -> GradientTransformation:
    """Replace each update by its elementwise sign.

    For each leaf, with g the incoming update:

        u = sign(g)          (0 where g == 0; g / |g| for complex g)

    Returns:
        A GradientTransformation whose state is ``EmptyState``.

    References:
        Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems",
        ICML 2018, arXiv:1802.04434.
        Checked against optax.scale_by_sign and pytorch_optimizer.SignSGD in
        tests/optimizers/test_sign.py.
    """

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(jnp.sign, updates), state

    return GradientTransformation(init_empty_state, update)


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """signSGD: ``chain(scale_by_sign(), scale_by_learning_rate(learning_rate))``.

    Each step is ``p -= learning_rate * sign(g)``; see ``scale_by_sign``.
    """
    _checks.finite("sign_sgd", allow_schedule=True, learning_rate=learning_rate)
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(
    learning_rate: ScalarOrSchedule,
    beta: float = 0.9,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Signum: the sign of an EMA of the gradient.

    ``chain(ema(beta, debias=False, accumulator_dtype), scale_by_sign(),
    scale_by_learning_rate(learning_rate))``; for each leaf, with g the incoming gradient:

        m = beta * m + (1 - beta) * g
        u = -learning_rate * sign(m)

    No bias correction: it would not change the sign.

    Args:
        learning_rate: Step size (a negative one ascends), or a schedule of the step count.
        beta: Decay of the moving average, in (-1, 1].
        accumulator_dtype: Dtype of m; ``None`` keeps the params' dtype.

    References:
        Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems",
        ICML 2018, arXiv:1802.04434.
        Checked against optax.signum and pytorch_optimizer.SignSGD in
        tests/optimizers/test_sign.py.
    """
    _checks.finite("signum", allow_schedule=True, learning_rate=learning_rate)
    _checks.momentum("signum", beta=beta)
    _checks.floating_dtype("signum", accumulator_dtype=accumulator_dtype)
    return chain(
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )
