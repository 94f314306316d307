"""Constructors that reproduce torch.optim's numbers, with torch's names and defaults."""

from optix.torch.optim import adam, adamax, adamw, nadam, sgd

__all__ = ["adam", "adamax", "adamw", "nadam", "sgd"]
