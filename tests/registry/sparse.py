"""Registry entries of LazyAdam and optix.torch.sparse_adam."""

from optix.optimizers.lazy_adam import lazy_adam
from optix.torch.sparse_adam import sparse_adam
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "lazy_adam",
        lambda: lazy_adam(0.05),
        "TF-Addons LazyAdam (NumPy transliteration)",
        2e-5,
    ),
    Entry(
        "torch.sparse_adam",
        lambda: sparse_adam(0.05, betas=(0.8, 0.99)),
        "torch.optim.SparseAdam",
        2e-5,
    ),
]
