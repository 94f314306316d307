"""Optax's ``optax.contrib`` names that optix provides."""

from optix.transforms.reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]
