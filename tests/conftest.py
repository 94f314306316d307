"""Strict settings for every test: no silent dtype or rank promotion, warnings are errors.

Strict promotion makes a bf16 optimizer step that silently promotes to float32 (or a
float32 step that mixes in float64) fail loudly instead of passing.

Reference tests import torch, optax, pytorch-optimizer and scipy. They are test
dependencies (the ``test`` extra) and CI installs them; a missing one is an error,
never a skip.
"""

import os

# The suite compiles thousands of small programs, where LLVM's optimizations cost more
# compile time than they save in run time (about a sixth of the suite's CPU time). It
# changes code generation only; examples and device subprocesses inherit it. XLA reads
# XLA_FLAGS when JAX starts its backend, after this.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0"

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX types enabled."""
    with jax.enable_x64(True):
        yield
