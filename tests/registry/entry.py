"""One registry entry: an optimizer with test hyperparameters, its reference, its tolerance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

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

    def updater(self, tx=None, **extra_args):
        """update(grads, state, params) of `tx` (default: this entry's optimizer, possibly
        wrapped). Entries that need an objective get `value`, `grad` and `value_fn` of
        `distance_to(grads)`, so `grads` still drives them."""
        tx = self.make() if tx is None else tx
        if not self.objective:
            return lambda grads, state, params: tx.update(grads, state, params, **extra_args)

        def update(grads, state, params):
            value_fn = distance_to(grads)
            value, grad = jax.value_and_grad(value_fn)(params)
            objective = {"value": value, "grad": grad, "value_fn": value_fn}
            return tx.update(grad, state, params, **(extra_args | objective))

        return update


def distance_to(target):
    """Half the squared distance to `target`: the objective of line-search entries."""

    def value_fn(params):
        pairs = zip(jax.tree.leaves(params), jax.tree.leaves(target), strict=True)
        return sum(0.5 * jnp.sum(jnp.square(p - t)) for p, t in pairs)

    return value_fn
