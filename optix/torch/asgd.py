"""torch.optim.ASGD as an optix transformation, with torch's names and defaults."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.optimizers.asgd import scale_by_asgd
from optix.torch.optim import maximize_direction
from optix.transforms.scaling import scale
from optix.transforms.weight_decay import add_decayed_weights


def asgd(
    lr: ScalarOrSchedule = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: ScalarOrSchedule = 0,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.ASGD: maximize, L2 weight decay, then ``scale_by_asgd``.

    For each leaf: g = -g if maximize; g = g + weight_decay * p; then the step and the
    average of ``scale_by_asgd`` (read the average with
    ``optix.optimizers.asgd.asgd_averaged_params(state)``, torch's ``state["ax"]``).
    A changed ``lr`` reaches the step one update later, as in torch, where ``eta`` is
    computed at the end of the previous step. ``mu_dtype`` is the dtype of ``ax``
    (``None``: the params').

    References:
        Checked against torch.optim.ASGD in tests/torch/test_asgd_rprop.py.
    """
    del foreach, differentiable, capturable
    fn = "optix.torch.asgd"
    _checks.non_negative(fn, allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative(fn, lambd=lambd, alpha=alpha, t0=t0)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype)
    return chain(
        maximize_direction(maximize),
        add_decayed_weights(weight_decay),
        scale_by_asgd(lr, lambd, alpha, t0, mu_dtype=mu_dtype),
        scale(-1.0),
    )
