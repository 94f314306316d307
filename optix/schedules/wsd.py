"""Warmup-stable-decay: warm up, hold the peak for as long as training runs, then decay."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.schedules._common import (
    Schedule,
    as_float,
    blend,
    clipped_position,
    cosine_weights,
    linear_weights,
)
from optix.schedules.basic import constant_schedule
from optix.schedules.cosine import warmup_constant_schedule
from optix.schedules.join import join_schedules


def _sqrt_weights(k, length):
    """``(1 - sqrt(x), sqrt(x))``, the first as ``(1 - x) / (1 + sqrt(x))`` (no cancellation)."""
    rest, done = linear_weights(k, length)
    root = jnp.sqrt(done)
    return rest / (1 + root), root


def _square_weights(k, length):
    """``(1 - x**2, x**2)``, the first as ``(1 - x) * (1 + x)``."""
    rest, done = linear_weights(k, length)
    return rest * (1 + done), done * done


# Each maps (steps into the decay, its length) to (weight of peak_value, weight of end_value).
DECAY_WEIGHTS = {
    "linear": linear_weights,
    "cosine": cosine_weights,
    "1-sqrt": _sqrt_weights,
    "1-square": _square_weights,
}


def warmup_stable_decay_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    end_value: jax.typing.ArrayLike = 0.0,
    decay_type: str = "1-sqrt",
) -> Schedule:
    """Linear warmup, a constant ``peak_value``, then a decay to ``end_value`` (WSD).

    At step count, with W = warmup_steps, S = stable_steps, D = decay_steps:

        count < W:              init_value + (peak_value - init_value) * count / W
        W <= count < W + S:     peak_value
        W + S <= count < W+S+D: x = (count - W - S) / D
                                value = end_value + (peak_value - end_value) * f(x)
        count >= W + S + D:     end_value

    with f(x) = 1 - x ("linear"), (1 + cos(pi x)) / 2 ("cosine"), 1 - sqrt(x)
    ("1-sqrt") or 1 - x**2 ("1-square"). Each argument is the length of its own
    phase (unlike ``warmup_cosine_decay_schedule``'s ``decay_steps``, which counts
    the warmup): the stable phase can be extended without touching the others.

    pytorch_optimizer's ``get_wsd_schedule`` gives the same values for
    ``init_value=0`` and ``end_value=0`` (its ``min_lr_ratio=0``), and for "cosine"
    with any end value; its other shapes ignore ``min_lr_ratio`` during the decay
    (falling towards 0, then jumping to ``min_lr_ratio`` at the end), which this
    schedule does not copy. Its ``num_cycles`` option is not offered.

    Args:
        init_value: Value at step 0.
        peak_value: Value of the stable phase.
        warmup_steps: Length of the warmup, >= 0.
        stable_steps: Length of the stable phase, >= 0.
        decay_steps: Length of the decay, >= 0.
        end_value: Value at the end of the decay and after it.
        decay_type: Shape of the decay: "1-sqrt", "linear", "cosine" or "1-square".

    Returns:
        A function of the step count.

    References:
        Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with
        Scalable Training Strategies", 2024, arXiv:2404.06395.
        Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond Fixed
        Training Durations", NeurIPS 2024, arXiv:2405.18392 (the "1-sqrt" cooldown).
        Checked against pytorch_optimizer.get_wsd_schedule in tests/schedules/test_wsd.py.
    """
    fn = "warmup_stable_decay_schedule"
    _checks.number(fn, init_value=init_value, peak_value=peak_value, end_value=end_value)
    _checks.non_negative(
        fn, warmup_steps=warmup_steps, stable_steps=stable_steps, decay_steps=decay_steps
    )
    _checks.one_of(fn, "decay_type", decay_type, tuple(DECAY_WEIGHTS))
    weights = DECAY_WEIGHTS[decay_type]

    def decay(count):
        # A decay of length 0 is never selected by the join below; length 1 keeps
        # its unused values finite.
        d = as_float(decay_steps)
        d = jnp.where(d > 0, d, 1)
        return blend(peak_value, end_value, weights(clipped_position(count, 0, d), d))

    decay_begin = warmup_steps + stable_steps
    return join_schedules(
        [
            warmup_constant_schedule(init_value, peak_value, warmup_steps),
            decay,
            constant_schedule(end_value),
        ],
        [decay_begin, decay_begin + decay_steps],
    )
