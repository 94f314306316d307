"""Registry entry of L-BFGS (with its default zoom line search).

The entry is driven through the objective protocol (``objective=True``); its memory of
two pairs makes the ring buffer wrap within the common suite's short runs.
"""

from optix.optimizers.lbfgs import lbfgs
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "lbfgs",
        lambda: lbfgs(memory_size=2),
        "optax.lbfgs, NumPy two-loop recursion",
        1e-5,
        objective=True,
    ),
]
