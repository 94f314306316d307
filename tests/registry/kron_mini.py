"""Registry entries of PSGD Kron, Adam-mini and torch.optim.Adafactor."""

from optix.optimizers.adam_mini import adam_mini
from optix.optimizers.kron import kron
from optix.torch.adafactor import adafactor as torch_adafactor
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "kron",
        lambda: kron(0.05, weight_decay=1e-3),
        "official kron_torch Kron (NumPy, same random numbers)",
        1e-4,
    ),
    Entry(
        "adam_mini",
        lambda: adam_mini(0.05, weight_decay=1e-3),
        "adam_mini.Adam_mini (official, 1.1.1)",
        5e-5,
    ),
    Entry(
        "torch.adafactor",
        lambda: torch_adafactor(0.05, weight_decay=1e-3),
        "torch.optim.Adafactor",
        1e-5,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
