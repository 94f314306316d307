"""Registry entries of the parameter-free optimizers of ``optax.contrib``: DoG, DoWG,
COCOB, MoMo, MoMo-Adam and the Mechanic wrapper."""

from optix.optimizers.adam import adam
from optix.optimizers.cocob import cocob
from optix.optimizers.dog import dog, dowg
from optix.optimizers.mechanic import mechanize
from optix.optimizers.momo import momo, momo_adam
from tests.registry.entry import Entry
from tests.registry.large_batch_sign import with_default_value

# MoMo and MoMo-Adam need the loss ``value``: the common suite, which passes none, gets
# value=1.0 (as for polyak_sgd); tests/optimizers/test_momo.py feeds a value per step.
ENTRIES = [
    Entry(
        "dog",
        lambda: dog(1.0, ("heuristic", 1e-2), weight_decay=1e-3),
        "optax.contrib.dog, dog.DoG (dog-optimizer)",
        2e-6,
    ),
    Entry(
        "dowg",
        lambda: dowg(1.0, init_estim_sq_dist=1e-2),
        "optax.contrib.dowg, DoWG Algorithm 1 (NumPy)",
        5e-7,
    ),
    Entry(
        "cocob",
        lambda: cocob(1.0, weight_decay=1e-3),
        "optax.contrib.cocob, COCOB-Backprop Algorithm 2 (NumPy)",
        3e-6,
    ),
    Entry(
        "momo",
        lambda: with_default_value(momo(0.1, weight_decay=1e-3)),
        "optax.contrib.momo, momo.Momo (momo-opt)",
        1e-5,
    ),
    Entry(
        "momo_adam",
        lambda: with_default_value(momo_adam(0.1, weight_decay=1e-3)),
        "optax.contrib.momo_adam, momo.MomoAdam (momo-opt)",
        2e-5,
    ),
    Entry(
        "mechanize",
        # Base learning rate 1, as the paper advises; s_init large enough for bf16 params
        # to move in the common suite's 3 steps.
        lambda: mechanize(adam(1.0), s_init=1e-2),
        "optax.contrib.mechanize, mechanic_pytorch.mechanize",
        1e-5,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
