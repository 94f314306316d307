"""An update called without the extra argument it needs raises what Optax raises there."""

import jax.numpy as jnp
import optax
import pytest

import optix
from optix.optimizers.damped_newton import newton

PARAMS = {"w": jnp.ones(3)}

# name: (optix's transformation, Optax's, or None where Optax has no such name)
CASES = {
    "polyak_sgd": (optix.polyak_sgd(), optax.polyak_sgd()),
    "reduce_on_plateau": (
        optix.contrib.reduce_on_plateau(),
        optax.contrib.reduce_on_plateau(),
    ),
    "zoom_linesearch": (
        optix.scale_by_zoom_linesearch(max_linesearch_steps=3),
        optax.scale_by_zoom_linesearch(max_linesearch_steps=3),
    ),
    "newton": (newton(), None),
}


@pytest.mark.parametrize("name", CASES)
def test_a_missing_extra_argument_is_a_type_error_as_in_optax(name):
    ours, theirs = CASES[name]
    if theirs is not None:
        with pytest.raises(TypeError):
            theirs.update(PARAMS, theirs.init(PARAMS), PARAMS)
    with pytest.raises(TypeError, match=r"needs .*update\(") as caught:
        ours.update(PARAMS, ours.init(PARAMS), PARAMS)
    # Code written against optix's earlier ValueError still catches it.
    assert isinstance(caught.value, ValueError)
