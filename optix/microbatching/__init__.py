"""Evaluate functions and gradients one microbatch at a time (Optax's
``optax.microbatching``; ``microbatch`` is also Optax's top-level ``optax.microbatch``)."""

from optix.microbatching.accumulators import AccumulationType, Accumulator
from optix.microbatching.gradients import micro_grad
from optix.microbatching.reshape import reshape_batch_axis
from optix.microbatching.sequential import micro_vmap, microbatch

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
