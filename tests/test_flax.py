"""A standard Flax training loop written for Optax runs unchanged on optix."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.training import train_state

import optix as optax  # the point of the test: Optax code, optix underneath


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x))
        return nn.Dense(1)(x)


def regression_data():
    x = jax.random.normal(jax.random.key(0), (64, 3))
    y = jnp.sum(x * jnp.asarray([[1.0, -2.0, 0.5]]), axis=1, keepdims=True)
    return x, y


def test_linen_train_state_loop_with_optax_names():
    x, y = regression_data()
    model = MLP()
    params = model.init(jax.random.key(1), x)["params"]
    decay_mask = jax.tree.map(lambda p: p.ndim >= 2, params)
    tx = optax.chain(
        optax.add_decayed_weights(1e-4, mask=decay_mask),
        optax.sgd(learning_rate=0.05, momentum=0.9, nesterov=True),
    )
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    @jax.jit
    def train_step(state):
        def loss_fn(params):
            return jnp.mean((state.apply_fn({"params": params}, x) - y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    first = None
    for _ in range(200):
        state, loss = train_step(state)
        first = loss if first is None else first
    assert float(loss) < 0.05 * float(first)
    assert isinstance(state.opt_state[0], optax.MaskedState)


def test_nnx_optimizer_loop_with_optax_names():
    x, y = regression_data()

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(3, 16, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(nnx.relu(self.hidden(x)))

    model = Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-2, weight_decay=1e-4), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer):
        def loss_fn(model):
            return jnp.mean((model(x) - y) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(train_step(model, optimizer)) for _ in range(200)]
    assert losses[-1] < 0.05 * losses[0]
    assert int(optimizer.step[...]) == 200
    np.testing.assert_equal(int(optimizer.opt_state[0].count[...]), 200)
