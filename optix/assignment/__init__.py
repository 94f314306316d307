"""The linear assignment problem (Optax's ``optax.assignment``)."""

from optix.assignment.hungarian import base_hungarian_algorithm, hungarian_algorithm

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]
