"""Registry entries of SAM (Optax's periodic form and the two-pass form), GaLore and Sophia."""

import optix
from optix.core import GradientTransformation
from optix.optimizers.galore import galore
from optix.optimizers.galore_adamw import galore_adamw
from optix.optimizers.sam import sam, sam_sgd
from optix.optimizers.sophia import sophia
from optix.optimizers.sophia_g import sophia_g
from optix.second_order.hutchinson import hutchinson_estimator_diag_hessian
from tests.registry.entry import Entry


def hutchinson_of_value_fn() -> GradientTransformation:
    """Hutchinson's estimator reading the objective from ``value_fn`` (not ``obj_fn``)."""
    inner = hutchinson_estimator_diag_hessian()

    def update(updates, state, params=None, *, value_fn=None, **extra_args):
        del extra_args
        if value_fn is None:
            raise ValueError("sophia (registry entry): update needs the objective as value_fn")
        return inner.update(updates, state, params, obj_fn=value_fn)

    return GradientTransformation(inner.init, update)


ENTRIES = [
    Entry(
        "sam",
        lambda: sam(
            optix.adam(0.05), optix.chain(optix.normalize_by_update_norm(), optix.sgd(0.05))
        ),
        "optax.contrib.sam",
        2e-5,
    ),
    # Two gradients per step: the second at the climbed point, from `grad_fn`, or from
    # `value_fn` as the suites pass it to objective entries.
    Entry(
        "sam_sgd",
        lambda: sam_sgd(0.05, rho=0.05, momentum=0.9),
        "davda54/sam (NumPy)",
        3e-5,
        objective=True,
    ),
    Entry(
        "galore",
        lambda: galore(0.05, rank=2, update_proj_gap=5, weight_decay=0.1),
        "optax.contrib.galore",
        5e-6,
    ),
    Entry(
        "galore_adamw",
        lambda: galore_adamw(0.05, rank=2, update_proj_gap=5, weight_decay=0.1),
        "galore-torch GaLoreAdamW (NumPy)",
        3e-5,
    ),
    # Sophia's Hessian estimates need the objective: the suites' `value_fn`, handed to
    # Hutchinson's estimator (exact on their quadratic, whose Hessian is the identity).
    Entry(
        "sophia",
        lambda: sophia(0.05, update_interval=3, hessian_diagonal_fn=hutchinson_of_value_fn()),
        "optax.contrib.sophia",
        1e-5,
        objective=True,
    ),
    Entry(
        "sophia_g",
        lambda: sophia_g(0.05, update_interval=3, hessian_diagonal_fn=hutchinson_of_value_fn()),
        "Liuhong99/Sophia SophiaG (sophia_opt)",
        1e-5,
        objective=True,
    ),
]

F32_RTOL = {entry.name: entry.f32_rtol for entry in ENTRIES}
