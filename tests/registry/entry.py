"""One registry entry: an optimizer with test hyperparameters, its reference, its tolerance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optix

F64_RTOL = 1e-10


@dataclass(frozen=True)
class Entry:
    name: str  # "adam", or "torch.adam" for optix.torch constructors
    make: Callable[[], optix.GradientTransformation]  # test hyperparameters
    reference: str  # what the trajectory tests compare against
    f32_rtol: float  # measured float32 tolerance of the trajectory tests
    # True when update needs `value`, `grad` and `value_fn` of one objective (line searches,
    # L-BFGS, Newton): the common suite then drives it with a quadratic objective.
    objective: bool = False
