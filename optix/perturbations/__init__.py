"""Differentiable approximations of functions by random perturbation (Optax's
``optax.perturbations``)."""

from optix.perturbations.make_perturbed import make_perturbed_fun
from optix.perturbations.noise import Gumbel, Normal

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]
