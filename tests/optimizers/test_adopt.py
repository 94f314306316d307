"""ADOPT against the official code (NumPy), optax.contrib.adopt and pytorch_optimizer.ADOPT."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import ADOPT

from optix.optimizers.adopt import _fourth_root, adopt, scale_by_adopt
from tests.optax_layout import assert_same_layout
from tests.reference import DTYPES, compare, optax_reference, torch_reference
from tests.references.adopt import run_official_adopt
from tests.registry.adam_variants import F32_RTOL

F32 = F32_RTOL["adopt"]
# Without clipping the x1000 gradient step is normalised by the small previous nu, and
# float32 carries the resulting ~1e3 momentum's rounding into the params.
F32_NO_CLIP = 6e-5

OFFICIAL = {
    "default": ({}, {}),
    "no_clip": ({"use_clipping": False}, {"clip_lambda": None}),
    "l2": ({"weight_decay": 0.3}, {"weight_decay": 0.3}),
    "decoupled": (
        {"weight_decay": 0.3, "decouple": True, "b1": 0.5, "b2": 0.9},
        {"weight_decay": 0.3, "decouple": True, "betas": (0.5, 0.9)},
    ),
}


@DTYPES
@pytest.mark.parametrize(("kwargs", "official"), OFFICIAL.values(), ids=OFFICIAL)
def test_trajectory_matches_the_official_adopt(kwargs, official, dtype):
    compare(
        lambda lr: adopt(lr, **kwargs),
        lambda dt, schedule: run_official_adopt(dt, schedule, **official),
        dtype,
        False,
        F32_NO_CLIP if official.get("clip_lambda", 0) is None else F32,
    )


@DTYPES
def test_learning_rate_schedule_matches_the_official_adopt(dtype):
    compare(
        lambda lr: adopt(lr, weight_decay=0.1, decouple=True),
        lambda dt, sched: run_official_adopt(dt, sched, weight_decay=0.1, decouple=True),
        dtype,
        True,
        F32,
    )


OPTAX = {
    "default": {},
    "nesterov": {"nesterov": True, "b1": 0.8},
    "no_clip": {"use_clipping": False, "eps": 1e-3},
    "clip_fn": {"clip_value_fn": lambda k: 0.5 + 0.1 * k.astype(jnp.float32)},
}


@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX.values(), ids=OPTAX)
def test_trajectory_matches_optax_adopt(kwargs, dtype, schedule=False):
    compare(
        lambda lr: adopt(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.adopt(lr, **kwargs)),
        dtype,
        schedule,
        F32_NO_CLIP if kwargs.get("use_clipping") is False else F32,
        same_dtype_reference=False,
    )


@DTYPES
def test_l2_decay_matches_pytorch_optimizer(dtype):
    """pytorch_optimizer evaluates clip_lambda at the count after the increment."""
    compare(
        lambda lr: adopt(lr, weight_decay=0.2, clip_value_fn=lambda k: _fourth_root(k + 1)),
        torch_reference(lambda params, lr: ADOPT(params, lr=lr, weight_decay=0.2)),
        dtype,
        False,
        F32,
    )


def test_a_constant_clip_value_is_a_constant_bound():
    """inject_hyperparams turns clip_value_fn into its value at the count: a number."""
    tx = scale_by_adopt(b1=0.0, clip_value_fn=0.5)
    state = tx.init(jnp.ones(2))
    _, state = tx.update(jnp.ones(2), state)
    u, _ = tx.update(jnp.asarray([10.0, -0.2]), state)
    np.testing.assert_allclose(u, [0.5, -0.2], rtol=1e-6)


def test_first_step_fills_nu_only_and_the_next_normalises_by_it():
    tx = scale_by_adopt(b1=0.5, b2=0.75, use_clipping=False)
    state = tx.init(jnp.zeros(1))
    u, state = tx.update(jnp.asarray([2.0]), state)
    np.testing.assert_allclose(u, [0.0])
    np.testing.assert_allclose(state.nu, [4.0])
    u, state = tx.update(jnp.asarray([6.0]), state)
    np.testing.assert_allclose(u, [1.5], rtol=1e-6)  # 0.5 * 6 / sqrt(4), the old nu
    np.testing.assert_allclose(state.nu, [0.75 * 4 + 0.25 * 36], rtol=1e-6)
    tx = scale_by_adopt(b1=0.0, b2=0.75)  # clipped to 1**0.25 on the 2nd step
    state = tx.init(jnp.zeros(1))
    _, state = tx.update(jnp.asarray([2.0]), state)
    u, _ = tx.update(jnp.asarray([6.0]), state)
    np.testing.assert_allclose(u, [1.0])


def _state_after_one_step(tx, params):
    def run():
        return tx.update(params, tx.init(params), params)[1]

    with jax.numpy_dtype_promotion("standard"):  # Optax's code mixes dtypes
        return jax.eval_shape(run)


@pytest.mark.parametrize("kwargs", [{}, {"nesterov": True, "mu_dtype": jnp.bfloat16}])
def test_state_layout_is_optax_s(kwargs):
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    for ours, theirs in [
        (adopt(0.1, **kwargs), optax.contrib.adopt(0.1, **kwargs)),
        (scale_by_adopt(**kwargs), optax.contrib.scale_by_adopt(**kwargs)),
    ]:
        assert_same_layout(
            _state_after_one_step(ours, params), _state_after_one_step(theirs, params)
        )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: adopt(0.1, b1=1.0), ValueError, "adopt: b1 must be in (-1, 1), got b1=1.0"),
        (lambda: adopt(0.1, eps=-1.0), ValueError, "adopt: eps must be finite and >= 0"),
        (lambda: adopt("0.1"), TypeError, "adopt: learning_rate must be"),
        (lambda: adopt(0.1, weight_decay=-1.0), ValueError, "adopt: weight_decay must be"),
        (lambda: scale_by_adopt(clip_value_fn="2"), TypeError, "clip_value_fn must be a"),
        (lambda: scale_by_adopt(clip_value_fn=-1.0), ValueError, "clip_value_fn must be finite"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
