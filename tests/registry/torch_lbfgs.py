"""Registry entry of optix.torch.lbfgs (torch.optim.LBFGS, driven by value, grad and value_fn)."""

from optix.torch.quasi_newton import lbfgs
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "torch.lbfgs",
        lambda: lbfgs(max_iter=5, history_size=3, line_search_fn="strong_wolfe"),
        "torch.optim.LBFGS",
        3e-5,
        objective=True,
    ),
]
