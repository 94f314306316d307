"""Registry entries of AdaGrad, AdaDelta, RMSProp, Yogi and their optix.torch constructors."""

from optix.optimizers.adadelta import adadelta
from optix.optimizers.adagrad import adagrad
from optix.optimizers.rmsprop import rmsprop
from optix.optimizers.yogi import yogi
from optix.torch import adaptive
from tests.registry.entry import Entry

ENTRIES = [
    Entry("adagrad", lambda: adagrad(0.5), "optax.adagrad, torch.optim.Adagrad", 5e-6),
    Entry(
        "adadelta",
        lambda: adadelta(2.0, weight_decay=1e-3),
        "optax.adadelta, torch.optim.Adadelta",
        5e-7,
    ),
    Entry(
        "rmsprop",
        lambda: rmsprop(0.01, centered=True, momentum=0.9),
        "optax.rmsprop, torch.optim.RMSprop",
        # centered: var = nu - mu**2 cancels, so float32 rounding grows with the momentum
        6e-5,
    ),
    Entry(
        "yogi",
        lambda: yogi(0.1),
        "optax.yogi, pytorch_optimizer.Yogi, TF-Addons Yogi (NumPy)",
        2e-5,
    ),
    Entry(
        "torch.adagrad",
        lambda: adaptive.adagrad(0.5, lr_decay=1e-3, weight_decay=1e-2),
        "torch.optim.Adagrad",
        3e-6,
    ),
    Entry(
        "torch.adadelta",
        lambda: adaptive.adadelta(2.0, weight_decay=1e-2),
        "torch.optim.Adadelta",
        5e-7,
    ),
    Entry(
        "torch.rmsprop",
        lambda: adaptive.rmsprop(0.01, momentum=0.9, centered=True, weight_decay=1e-2),
        "torch.optim.RMSprop",
        9e-5,
    ),
]
