"""torch.optim.RAdam as an optix transformation, with torch's names and numbers."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule
from optix.optimizers.radam import scale_by_radam
from optix.torch.optim import Betas, adam_like, check_adam_args


def radam(
    lr: ScalarOrSchedule = 1e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.RAdam: ``scale_by_radam`` in torch's form, with its decay and maximize.

    The preconditioner is ``scale_by_radam(b1, b2, eps, threshold=5.0,
    eps_placement="raw", strict_threshold=True, degenerate="sgd")``: rectified when
    rho_t > 5, eps added to the raw root sqrt(nu), bias-corrected momentum SGD before.
    Weight decay is L2 (added to g first) or, with ``decoupled_weight_decay``,
    ``p -= lr * weight_decay * p`` with the pre-update p; both on every step.
    ``mu_dtype`` and ``nu_dtype`` set the dtypes of the moments (``None``: the params').

    References:
        Checked against torch.optim.RAdam in tests/torch/test_radam.py.
    """
    del foreach, capturable, differentiable
    check_adam_args("optix.torch.radam", lr, betas, eps, weight_decay)
    _checks.floating_dtype("optix.torch.radam", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    preconditioner = scale_by_radam(
        betas[0],
        betas[1],
        eps,
        threshold=5.0,
        eps_placement="raw",
        strict_threshold=True,
        degenerate="sgd",
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )
    return adam_like(preconditioner, lr, weight_decay, decoupled_weight_decay, maximize)
