"""Type-checked, never run: a look-alike of a transformation that is not Optax's class.

tests/test_typing.py expects pyright and mypy to report an error on each line marked
``# rejected``: the checkers see Optax's real types, so flax_usage.py passing them shows
that optix's transformations are accepted, not that the annotations are unchecked.
"""

from typing import Any, NamedTuple

import optax
from flax import nnx


class LookAlike(NamedTuple):
    init: Any
    update: Any


def initial_state(tx: optax.GradientTransformation) -> optax.OptState:
    return tx.init({})


def nnx_optimizer(model: nnx.Module) -> nnx.Optimizer:
    initial_state(LookAlike(None, None))  # rejected
    return nnx.Optimizer(model, LookAlike(None, None), wrt=nnx.Param)  # rejected
