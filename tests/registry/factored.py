"""Registry entries of AdaBelief, Adafactor, SM3 and NovoGrad."""

from optix.optimizers.adabelief import adabelief
from optix.optimizers.adafactor import adafactor
from optix.optimizers.novograd import novograd
from optix.optimizers.sm3 import sm3
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "adabelief",
        lambda: adabelief(0.05, rectify=True, weight_decay=1e-3),
        "optax.adabelief, official AdaBelief (NumPy)",
        5e-5,
    ),
    Entry(
        "adafactor",
        # dtype_momentum=None keeps the momentum in the params' dtype (Optax: float32).
        lambda: adafactor(
            0.05,
            min_dim_size_to_factor=2,
            momentum=0.9,
            dtype_momentum=None,
            weight_decay_rate=1e-3,
        ),
        "optax.adafactor chain (float64 decay)",
        1e-5,
    ),
    Entry("sm3", lambda: sm3(0.5), "optax.sm3", 4e-5),
    Entry(
        "novograd",
        lambda: novograd(0.05, weight_decay=1e-3),
        "optax.novograd, pytorch_optimizer.NovoGrad",
        2e-5,
    ),
]
