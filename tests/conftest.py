"""Strict settings for every test: no silent dtype or rank promotion, warnings are errors.

Strict promotion makes a bf16 optimizer step that silently promotes to float32 (or a
float32 step that mixes in float64) fail loudly instead of passing.

Reference tests import torch, optax, pytorch-optimizer and scipy. They are test
dependencies (the ``test`` extra) and CI installs them; a missing one is an error,
never a skip.
"""

import os
import tempfile

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Many tests compile the same programs (one optimizer's step in several suites): XLA's
# persistent cache, shared by the xdist workers of one run, compiles each once. A cached
# executable is the one XLA built, so the numbers do not change.
# The directory is made at the first compile, so the xdist controller leaves none behind.
_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.getpid()
jax.config.update(
    "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), f"optix-xla-{_run}")
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX types enabled."""
    with jax.enable_x64(True):
        yield
