"""Constructors that reproduce torch.optim's numbers, with torch's names and defaults."""

from optix.torch import lr_scheduler
from optix.torch.adafactor import TorchAdafactorState, adafactor
from optix.torch.adaptive import adadelta, adagrad, rmsprop
from optix.torch.asgd import asgd
from optix.torch.clip import (
    ClipGradNormState,
    clip_grad_norm,
    clip_grad_norm_transform,
    clip_grad_value,
)
from optix.torch.lr_scheduler import (
    TorchLRSchedule,
    chained_scheduler,
    constant_lr,
    cosine_annealing_lr,
    cosine_annealing_warm_restarts,
    cyclic_lr,
    exponential_lr,
    lambda_lr,
    linear_lr,
    multi_step_lr,
    multiplicative_lr,
    one_cycle_lr,
    polynomial_lr,
    reduce_lr_on_plateau,
    sequential_lr,
    step_lr,
)
from optix.torch.muon import muon
from optix.torch.optim import adam, adamax, adamw, nadam, sgd
from optix.torch.quasi_newton import TorchLBFGSState, lbfgs
from optix.torch.radam import radam
from optix.torch.rprop import rprop
from optix.torch.sparse_adam import sparse_adam

__all__ = [
    "ClipGradNormState",
    "TorchAdafactorState",
    "TorchLBFGSState",
    "TorchLRSchedule",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "chained_scheduler",
    "clip_grad_norm",
    "clip_grad_norm_transform",
    "clip_grad_value",
    "constant_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts",
    "cyclic_lr",
    "exponential_lr",
    "lambda_lr",
    "lbfgs",
    "linear_lr",
    "lr_scheduler",
    "multi_step_lr",
    "multiplicative_lr",
    "muon",
    "nadam",
    "one_cycle_lr",
    "polynomial_lr",
    "radam",
    "reduce_lr_on_plateau",
    "rmsprop",
    "rprop",
    "sequential_lr",
    "sgd",
    "sparse_adam",
    "step_lr",
]
