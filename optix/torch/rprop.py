"""torch.optim.Rprop as an optix transformation, with torch's names and defaults."""

from __future__ import annotations

from optix.core import GradientTransformation, chain
from optix.optimizers.rprop import check_rprop_args, scale_by_rprop
from optix.torch.optim import maximize_direction
from optix.transforms.scaling import scale


def rprop(
    lr: float = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50),
    *,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> GradientTransformation:
    """torch.optim.Rprop: ``scale_by_rprop(lr, *etas, *step_sizes)`` with maximize.

    For each leaf: g = -g if maximize; then ``scale_by_rprop``'s signed step with
    step sizes starting at ``lr``. torch reads ``lr`` only when it creates the step
    sizes, so it is a number here, not a schedule.

    References:
        Checked against torch.optim.Rprop in tests/torch/test_asgd_rprop.py.
    """
    del capturable, foreach, differentiable
    (eta_minus, eta_plus), (min_step, max_step) = etas, step_sizes
    check_rprop_args(
        "optix.torch.rprop",
        (lr, eta_minus, eta_plus, min_step, max_step),
        ("lr", "etas[0]", "etas[1]", "step_sizes[0]", "step_sizes[1]"),
    )
    return chain(
        maximize_direction(maximize),
        scale_by_rprop(lr, eta_minus, eta_plus, min_step, max_step),
        scale(-1.0),
    )
