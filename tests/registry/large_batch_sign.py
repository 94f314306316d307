"""Registry entries of the trust-ratio (LAMB, LARS, Fromage), sign (Lion, signSGD, Signum),
noisy, Polyak and optimistic optimizers."""

import jax.numpy as jnp

from optix.core import GradientTransformation
from optix.optimizers.fromage import fromage
from optix.optimizers.lamb import lamb
from optix.optimizers.lars import lars
from optix.optimizers.lion import lion
from optix.optimizers.noisy_sgd import noisy_sgd
from optix.optimizers.optimistic import optimistic_adam_v2, optimistic_gradient_descent
from optix.optimizers.polyak import polyak_sgd
from optix.optimizers.sign import sign_sgd, signum
from tests.registry.entry import Entry


def with_default_value(tx: GradientTransformation) -> GradientTransformation:
    """Supply ``value=1.0`` when the caller passes no loss value.

    The common suite calls ``update`` without ``value``; a caller that passes one (the
    extra-args test passes ``value=1.0``) is unaffected.
    """

    def update(updates, state, params=None, *, value=None, **extra_args):
        value = jnp.asarray(1.0) if value is None else value
        return tx.update(updates, state, params, value=value, **extra_args)

    return GradientTransformation(tx.init, update)


ENTRIES = [
    Entry(
        "lamb",
        lambda: lamb(0.05, weight_decay=0.1),
        "optax.lamb, TF-Addons LAMB (NumPy), cybertronai pytorch-lamb (NumPy), "
        "pytorch_optimizer.Lamb",
        2e-5,
    ),
    Entry(
        "lars",
        lambda: lars(1.0, weight_decay=0.01, trust_coefficient=0.02),
        "optax.lars, MAE util/lars.py (NumPy)",
        8e-7,
    ),
    Entry("lion", lambda: lion(0.01, weight_decay=0.1), "optax.lion, pytorch_optimizer.Lion", 3e-5),
    Entry("sign_sgd", lambda: sign_sgd(0.01), "optax.sign_sgd, pytorch_optimizer.SignSGD", 7e-7),
    Entry("signum", lambda: signum(0.01), "optax.signum, pytorch_optimizer.SignSGD", 3e-5),
    Entry("fromage", lambda: fromage(0.1), "optax.fromage, pytorch_optimizer.Fromage", 3e-5),
    Entry("noisy_sgd", lambda: noisy_sgd(0.05, key=0), "optax.noisy_sgd (same key)", 1e-7),
    Entry(
        "polyak_sgd",
        lambda: with_default_value(polyak_sgd(max_learning_rate=0.1)),
        "optax.polyak_sgd",
        5e-5,
    ),
    Entry(
        "optimistic_gradient_descent",
        lambda: optimistic_gradient_descent(0.05),
        "optax.optimistic_gradient_descent",
        2e-6,
    ),
    Entry(
        "optimistic_adam_v2",
        lambda: optimistic_adam_v2(0.05),
        "optax.optimistic_adam_v2",
        2e-5,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
