"""Registry entries of the learning-rate-free optimizers: Prodigy and D-Adaptation.

Their initial distance estimates are 1e-2 or 0.1 rather than the default 1e-6: from 1e-6
the first steps are too small to change bfloat16 params, which the common suite checks,
and the dual-averaging forms (SGD, AdaGrad) recompute the params from params0 at every
step, so their updates carry the rounding of the params (~1e-7 of them): the complex
phase test needs updates well above that."""

from optix.optimizers.dadaptation import dadapt_adamw
from optix.optimizers.dadaptation_adagrad import dadapt_adagrad
from optix.optimizers.dadaptation_sgd import dadapt_sgd
from optix.optimizers.prodigy import prodigy
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "prodigy",
        lambda: prodigy(1.0, estim_lr0=1e-2, weight_decay=0.1),
        "prodigyopt.Prodigy, optax.contrib.prodigy",
        3e-5,
    ),
    Entry(
        "dadapt_adamw",
        lambda: dadapt_adamw(1.0, estim_lr0=1e-2, weight_decay=0.1),
        "dadaptation.DAdaptAdam, optax.contrib.dadapt_adamw",
        1e-6,
    ),
    Entry(
        "dadapt_sgd", lambda: dadapt_sgd(1.0, momentum=0.5, d0=0.1), "dadaptation.DAdaptSGD", 2e-6
    ),
    Entry(
        "dadapt_adagrad",
        lambda: dadapt_adagrad(1.0, momentum=0.5, d0=0.1),
        "dadaptation.DAdaptAdaGrad",
        5e-7,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
