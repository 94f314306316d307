"""Noisy SGD: SGD on gradients with annealed Gaussian noise added."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.transforms.noise import add_noise
from optix.transforms.scaling import scale_by_learning_rate


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: float = 0.01,
    gamma: float = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """Noisy SGD: ``chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))``.

    For each leaf, with g the incoming gradient and t = count + 1:

        u = -learning_rate * (g + sqrt(eta / t**gamma) * normal(shape of g))

    Noise and arguments: see ``add_noise``; ``learning_rate`` is a number (a negative one
    ascends) or a schedule of the step count.

    References:
        Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep
        Networks", arXiv:1511.06807, 2015.
        Checked against optax.noisy_sgd in tests/optimizers/test_noisy_sgd.py.
    """
    _checks.finite("noisy_sgd", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("noisy_sgd", eta=eta, gamma=gamma)
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
