"""torch.optim.lr_scheduler in optix: every scheduler as a pure schedule of the step count.

The names are torch's class names in snake_case; the arguments are torch's, without
``optimizer`` and ``last_epoch``, with the base learning rate ``lr`` first where torch
reads it from the optimizer (OneCycleLR and CyclicLR set their own). Each returns a
``TorchLRSchedule``, usable as the learning rate of any optix optimizer; count 0 is
the learning rate of the first optimizer step. ReduceLROnPlateau needs the monitored
value, so it is a transformation fed through ``update(..., value=loss)``.
"""

from optix.torch.lr_base import TorchLRSchedule
from optix.torch.lr_composite import chained_scheduler, lambda_lr, multiplicative_lr, sequential_lr
from optix.torch.lr_cosine import cosine_annealing_lr, cosine_annealing_warm_restarts
from optix.torch.lr_cycles import cyclic_lr, one_cycle_lr
from optix.torch.lr_decay import (
    constant_lr,
    exponential_lr,
    linear_lr,
    multi_step_lr,
    polynomial_lr,
    step_lr,
)
from optix.torch.lr_plateau import reduce_lr_on_plateau

__all__ = [
    "TorchLRSchedule",
    "chained_scheduler",
    "constant_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts",
    "cyclic_lr",
    "exponential_lr",
    "lambda_lr",
    "linear_lr",
    "multi_step_lr",
    "multiplicative_lr",
    "one_cycle_lr",
    "polynomial_lr",
    "reduce_lr_on_plateau",
    "sequential_lr",
    "step_lr",
]
