"""Constructors that reproduce torch.optim's numbers, with torch's names and defaults."""

from optix.torch.adaptive import adadelta, adagrad, rmsprop
from optix.torch.asgd import asgd
from optix.torch.optim import adam, adamax, adamw, nadam, sgd
from optix.torch.radam import radam
from optix.torch.rprop import rprop
from optix.torch.sparse_adam import sparse_adam

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sparse_adam",
]
