"""Strict settings for every test: no silent dtype or rank promotion, warnings are errors.

Strict promotion makes a bf16 optimizer step that silently promotes to float32 (or a
float32 step that mixes in float64) fail loudly instead of passing.

Reference tests import torch, optax, pytorch-optimizer and scipy. They are test
dependencies (the ``test`` extra) and CI installs them; a missing one is an error,
never a skip.
"""

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX types enabled."""
    with jax.enable_x64(True):
        yield
