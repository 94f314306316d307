"""Constructors that reproduce torch.optim's numbers, with torch's names and defaults."""

from optix.torch.adaptive import adadelta, adagrad, rmsprop
from optix.torch.asgd import asgd
from optix.torch.clip import (
    ClipGradNormState,
    clip_grad_norm,
    clip_grad_norm_transform,
    clip_grad_value,
)
from optix.torch.optim import adam, adamax, adamw, nadam, sgd
from optix.torch.radam import radam
from optix.torch.rprop import rprop
from optix.torch.sparse_adam import sparse_adam

__all__ = [
    "ClipGradNormState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "clip_grad_norm",
    "clip_grad_norm_transform",
    "clip_grad_value",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sparse_adam",
]
