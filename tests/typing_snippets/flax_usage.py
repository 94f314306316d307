"""Type-checked, never run: optix transformations where Flax and Optax code annotate Optax types.

tests/test_typing.py runs pyright and mypy on this file and expects no errors. Flax
annotates ``nnx.Optimizer``'s ``tx`` as ``optax.GradientTransformation``.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from flax.training import train_state

import optix


class Regression(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.dense = nnx.Linear(3, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dense(x)


def initial_state(tx: optax.GradientTransformation) -> optax.OptState:
    return tx.init({"w": jnp.zeros(3)})


def nnx_optimizer() -> nnx.Optimizer:
    model = Regression(nnx.Rngs(0))
    return nnx.Optimizer(model, optix.adam(1e-3), wrt=nnx.Param)


def linen_train_state() -> train_state.TrainState:
    return train_state.TrainState.create(
        apply_fn=lambda variables, x: x @ variables["params"]["w"],
        params={"w": jnp.zeros(3)},
        tx=optix.adamw(1e-3, weight_decay=1e-4),
    )


def optax_chain_with_optix_members() -> optax.GradientTransformationExtraArgs:
    tx: optax.GradientTransformation = optix.chain(optix.clip_by_global_norm(1.0), optix.sgd(0.1))
    initial_state(tx)
    line_search: optax.GradientTransformationExtraArgs = optix.to_optax(optix.lbfgs())
    return optax.chain(optax.scale(0.5), optix.lion(1e-4), line_search)
