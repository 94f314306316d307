"""Registry entries of the Kronecker-factored preconditioners (Shampoo, SOAP)."""

from optix.optimizers.shampoo import shampoo
from optix.optimizers.soap import soap
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "shampoo",
        lambda: shampoo(0.05, eps=1e-2, grafting="adam", weight_decay=0.01, target_order=2),
        "Distributed Shampoo (NumPy), pytorch_optimizer.Shampoo",
        1e-3,
    ),
    Entry(
        "soap",
        lambda: soap(0.05, precondition_frequency=2),
        "SOAP soap.py (NumPy), pytorch_optimizer.SOAP",
        3e-5,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
