"""Registry entries of the SGD and Adam families and their optix.torch constructors."""

import optix
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "sgd",
        lambda: optix.sgd(0.05, momentum=0.9, nesterov=True),
        "torch.optim.SGD, optax.sgd",
        3e-6,
    ),
    Entry("adam", lambda: optix.adam(0.05), "torch.optim.Adam, optax.adam", 2e-5),
    Entry(
        "adamw",
        lambda: optix.adamw(0.05, weight_decay=0.1),
        "torch.optim.AdamW, optax.adamw",
        1e-4,
    ),
    Entry("nadam", lambda: optix.nadam(0.05), "optax.nadam", 2e-5),
    Entry("nadamw", lambda: optix.nadamw(0.05, weight_decay=0.1), "optax.nadamw", 1e-4),
    Entry(
        "amsgrad",
        lambda: optix.amsgrad(0.05, b2=0.8),
        "optax.amsgrad, torch.optim.Adam(amsgrad=True)",
        5e-5,
    ),
    Entry("adamax", lambda: optix.adamax(0.05), "torch.optim.Adamax, optax.adamax", 1e-5),
    Entry("adamaxw", lambda: optix.adamaxw(0.05, weight_decay=0.1), "optax.adamaxw", 1e-5),
    Entry(
        "torch.sgd",
        lambda: optix.torch.sgd(0.05, momentum=0.9, dampening=0.1, weight_decay=0.1),
        "torch.optim.SGD",
        3e-6,
    ),
    Entry(
        "torch.adam",
        lambda: optix.torch.adam(0.05, betas=(0.9, 0.8), weight_decay=0.1, amsgrad=True),
        "torch.optim.Adam",
        2e-5,
    ),
    Entry("torch.adamw", lambda: optix.torch.adamw(0.05), "torch.optim.AdamW", 2e-5),
    Entry(
        "torch.nadam",
        lambda: optix.torch.nadam(0.05, weight_decay=0.1),
        "torch.optim.NAdam",
        1e-5,
    ),
    Entry(
        "torch.adamax",
        lambda: optix.torch.adamax(0.05, weight_decay=0.1),
        "torch.optim.Adamax",
        1e-5,
    ),
]
