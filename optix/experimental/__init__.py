"""Experimental APIs (Optax's ``optax.experimental``): ``aggregating``."""

from optix.experimental import aggregating

__all__ = ["aggregating"]
