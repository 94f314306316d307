"""Registry entries of Optax's deprecated aliases, which warn when built (optimistic_adam)."""

import warnings

from optix.core import GradientTransformation
from optix.optimizers.optimistic import optimistic_adam
from tests.registry.entry import Entry


def built_quietly(factory, *args, **kwargs) -> GradientTransformation:
    """``factory(*args, **kwargs)`` with its DeprecationWarning silenced (the suites run
    with warnings as errors; tests/optimizers/test_optimistic_adam.py checks the warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return factory(*args, **kwargs)


ENTRIES = [
    Entry(
        "optimistic_adam",
        lambda: built_quietly(optimistic_adam, 0.05),
        "optax.optimistic_adam",
        2e-5,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
