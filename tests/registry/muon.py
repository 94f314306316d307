"""Registry entries of the Muon family: Optax's muon, Jordan's, Muon with AdamW, torch's.

Jordan's and torch's Muon take matrices only; their entries route the other leaves to
AdamW, as their documentation asks (``partition`` by rank).
"""

import jax

import optix
from optix.optimizers.adam import adamw
from optix.optimizers.muon import muon
from optix.optimizers.muon_jordan import muon_jordan, muon_with_adamw
from optix.torch.muon import muon as torch_muon
from optix.transforms.partition import partition
from tests.registry.entry import Entry


def by_rank(matrices, others, rank=lambda x: x.ndim >= 2):
    """``partition`` of matrices (to ``matrices``) and every other leaf (to ``others``)."""

    def labels(tree):
        return jax.tree.map(lambda x: "m" if rank(x) else "o", tree)

    return partition({"m": matrices, "o": others}, labels, allow_unused=True)


ENTRIES = [
    Entry("muon", lambda: muon(0.05, weight_decay=0.1), "optax.contrib.muon", 3e-5),
    Entry(
        "muon_jordan",
        lambda: by_rank(muon_jordan(0.05, weight_decay=0.1, ns_dtype=None), adamw(0.05)),
        "KellerJordan/Muon muon.py (NumPy)",
        1e-4,
    ),
    Entry(
        "muon_with_adamw",
        lambda: muon_with_adamw(
            0.05, 0.1, adam_learning_rate=0.05, adam_weight_decay=0.1, ns_dtype=None
        ),
        "KellerJordan/Muon muon.py SingleDeviceMuonWithAuxAdam (NumPy)",
        3e-5,
    ),
    Entry(
        "torch.muon",
        lambda: by_rank(
            torch_muon(0.05, ns_dtype=None), optix.torch.adamw(0.05), lambda x: x.ndim == 2
        ),
        "torch.optim.Muon",
        3e-5,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}

# The registry's hyperparameters as functions of ``mu_dtype`` (for the state-dtype suite,
# tests/optimizers/test_state_dtypes.py): every Muon momentum and AdamW first moment is a
# field named ``mu``.
MU_DTYPE_MAKERS = {
    "muon": lambda **kw: muon(0.05, weight_decay=0.1, **kw),
    "muon_jordan": lambda **kw: by_rank(
        muon_jordan(0.05, weight_decay=0.1, ns_dtype=None, **kw), adamw(0.05, **kw)
    ),
    "muon_with_adamw": lambda **kw: muon_with_adamw(
        0.05, 0.1, adam_learning_rate=0.05, adam_weight_decay=0.1, ns_dtype=None, **kw
    ),
    "torch.muon": lambda **kw: by_rank(
        torch_muon(0.05, ns_dtype=None, **kw), optix.torch.adamw(0.05, **kw), lambda x: x.ndim == 2
    ),
}
