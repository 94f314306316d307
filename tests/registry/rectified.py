"""Registry entries of RAdam, AdaBound/AMSBound, Padam and optix.torch.radam."""

from optix.optimizers.adabound import adabound, amsbound
from optix.optimizers.padam import padam
from optix.optimizers.radam import radam
from optix.torch.radam import radam as torch_radam
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "radam",
        lambda: radam(0.05),
        "optax.radam, torch.optim.RAdam, official RAdam (NumPy)",
        7e-6,
    ),
    Entry(
        "adabound",
        lambda: adabound(0.05, final_lr=0.02, gamma=0.1, weight_decay=0.1),
        "official AdaBound (NumPy)",
        8e-5,
    ),
    Entry(
        "amsbound",
        lambda: amsbound(0.05, b2=0.8, final_lr=0.02, gamma=0.1),
        "official AdaBound amsbound=True (NumPy)",
        8e-5,
    ),
    Entry("padam", lambda: padam(0.05, weight_decay=0.1), "official Padam (NumPy)", 5e-5),
    Entry(
        "torch.radam",
        lambda: torch_radam(0.05, betas=(0.9, 0.8), weight_decay=0.1),
        "torch.optim.RAdam",
        6e-6,
    ),
]
