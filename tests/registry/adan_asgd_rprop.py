"""Registry entries of Adan, ASGD and Rprop and their optix.torch constructors."""

from optix.optimizers.adan import adan
from optix.optimizers.asgd import asgd
from optix.optimizers.rprop import rprop
from optix.torch.asgd import asgd as torch_asgd
from optix.torch.rprop import rprop as torch_rprop
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "adan",
        lambda: adan(0.05, weight_decay=0.1, max_grad_norm=3.0),
        "pytorch_optimizer.Adan, official adan.py (NumPy transliteration), optax.adan (b2=0.5)",
        6e-6,
    ),
    Entry(
        "asgd",
        lambda: asgd(0.05, lambd=0.1, t0=5.0, weight_decay=0.1),
        "torch.optim.ASGD",
        2e-6,
    ),
    Entry("rprop", lambda: rprop(0.05), "torch.optim.Rprop, optax.rprop (state)", 4e-6),
    Entry(
        "torch.asgd",
        lambda: torch_asgd(0.05, lambd=0.1, t0=5.0, weight_decay=0.1),
        "torch.optim.ASGD",
        7e-6,
    ),
    Entry(
        "torch.rprop",
        lambda: torch_rprop(0.05, etas=(0.4, 1.3), step_sizes=(1e-4, 1.0)),
        "torch.optim.Rprop",
        4e-6,
    ),
]
