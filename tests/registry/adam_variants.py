"""Registry entries of the Adam variants from Optax's contrib: ADOPT, AdEMAMix, simplified
AdEMAMix, MADGRAD and ACProp."""

from optix.optimizers.acprop import acprop
from optix.optimizers.ademamix import ademamix
from optix.optimizers.adopt import adopt
from optix.optimizers.madgrad import madgrad
from optix.optimizers.simplified_ademamix import simplified_ademamix
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "adopt",
        lambda: adopt(0.05),
        "optax.contrib.adopt, official ADOPT (NumPy), pytorch_optimizer.ADOPT",
        1.5e-5,
    ),
    Entry(
        "ademamix",
        lambda: ademamix(0.05, b3=0.99, weight_decay=0.1),
        "optax.contrib.ademamix, official AdEMAMix (NumPy), pytorch_optimizer.AdEMAMix",
        2e-5,
    ),
    Entry(
        "simplified_ademamix",
        lambda: simplified_ademamix(0.005, alpha=2.0),
        "optax.contrib.simplified_ademamix, official SimAdEMAMix (NumPy)",
        3e-5,
    ),
    Entry(
        "madgrad",
        lambda: madgrad(0.05, weight_decay=0.01),
        "official madgrad.MADGRAD, optax.contrib.madgrad",
        2e-5,
    ),
    Entry(
        "acprop",
        lambda: acprop(0.01, eps=1e-8, eps_root=1e-8, weight_decay=0.1),
        "optax.contrib.acprop, official ACProp (NumPy)",
        6e-6,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
