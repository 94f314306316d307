"""torch.optim's optimizers as optix transformations, with torch's names and numbers.

Each constructor takes torch.optim's arguments and defaults (without ``params``) and
reproduces its parameter trajectory. ``lr`` may be a schedule of the step count, which
matches setting ``param_group["lr"]`` before each torch step. Arguments that only
steer torch's kernels (``foreach``, ``fused``, ``capturable``, ``differentiable``) are
accepted and ignored: XLA compiles one fused program either way. The keyword-only
``mu_dtype`` (first moment, momentum buffer) and ``nu_dtype`` (second moment and its
maximum) set the state's dtypes; ``None`` keeps the params' dtype, as torch does.
"""

from __future__ import annotations

from typing import Any

import jax

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, identity
from optix.optimizers.adam import scale_by_adam
from optix.optimizers.adamax import scale_by_adamax
from optix.optimizers.amsgrad import scale_by_amsgrad
from optix.optimizers.nadam_schedule import scale_by_nadam
from optix.transforms.momentum import momentum_buffer
from optix.transforms.scaling import scale, scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights

Betas = tuple[float, float]


def maximize_direction(maximize: bool) -> GradientTransformation:
    """torch negates the gradient first when maximizing."""
    return scale(-1.0) if maximize else identity()


def check_adam_args(fn: str, lr: Any, betas: Betas, eps: Any, weight_decay: Any) -> None:
    _checks.non_negative(fn, allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative(fn, eps=eps)
    check_betas(fn, betas)


def check_betas(fn: str, betas: Betas) -> None:
    """Both betas in [0, 1), named as torch's users write them: ``betas[0]``, ``betas[1]``."""
    named: dict[str, Any] = {"betas[0]": betas[0], "betas[1]": betas[1]}
    _checks.in_unit_interval(fn, closed_right=False, **named)


def adam_like(
    preconditioner: GradientTransformation,
    lr: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule,
    decoupled: bool,
    maximize: bool,
) -> GradientTransformation:
    """torch's order: maximize, L2 decay, preconditioner, decoupled decay, -lr.

    Both decay slots are always present (one holds zero), so the state's structure
    does not depend on which kind of decay is used.
    """
    return chain(
        maximize_direction(maximize),
        add_decayed_weights(0.0 if decoupled else weight_decay),
        preconditioner,
        add_decayed_weights(weight_decay if decoupled else 0.0),
        scale_by_learning_rate(lr),
    )


def sgd(
    lr: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.SGD: coupled weight decay, dampened momentum, lr outside the buffer.

    For each leaf: g = -g if maximize; g = g + weight_decay * p; then the momentum
    buffer of ``momentum_buffer`` (skipped when momentum == 0); p = p - lr * u.

    References:
        Checked against torch.optim.SGD in tests/torch/test_optim.py.
    """
    del foreach, differentiable, fused
    _checks.non_negative("optix.torch.sgd", allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative("optix.torch.sgd", momentum=momentum)
    _checks.in_unit_interval("optix.torch.sgd", closed_right=True, dampening=dampening)
    _checks.floating_dtype("optix.torch.sgd", mu_dtype=mu_dtype)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            "optix.torch.sgd: nesterov=True requires momentum > 0 and dampening == 0, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    if momentum:
        buffer = momentum_buffer(momentum, dampening, nesterov, accumulator_dtype=mu_dtype)
    else:
        buffer = identity()
    return chain(
        maximize_direction(maximize),
        add_decayed_weights(weight_decay),
        buffer,
        scale_by_learning_rate(lr),
    )


def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    amsgrad: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    decoupled_weight_decay: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.Adam: L2 (or decoupled) weight decay, torch's AMSGrad order.

    The preconditioner is ``scale_by_adam`` or, with ``amsgrad``,
    ``scale_by_amsgrad(nu_max_of="raw")``: torch keeps the maximum of the raw second
    moment and divides it by the current bias correction.

    References:
        Checked against torch.optim.Adam in tests/torch/test_optim.py.
    """
    del foreach, capturable, differentiable, fused
    check_adam_args("optix.torch.adam", lr, betas, eps, weight_decay)
    _checks.floating_dtype("optix.torch.adam", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    b1, b2 = betas
    if amsgrad:
        preconditioner = scale_by_amsgrad(
            b1, b2, eps, mu_dtype=mu_dtype, nu_max_of="raw", nu_dtype=nu_dtype
        )
    else:
        preconditioner = scale_by_adam(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return adam_like(preconditioner, lr, weight_decay, decoupled_weight_decay, maximize)


def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.AdamW: ``adam(..., decoupled_weight_decay=True)``, weight_decay 1e-2.

    References:
        Checked against torch.optim.AdamW in tests/torch/test_optim.py.
    """
    del foreach, capturable, differentiable, fused
    check_adam_args("optix.torch.adamw", lr, betas, eps, weight_decay)
    _checks.floating_dtype("optix.torch.adamw", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return adam(
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        decoupled_weight_decay=True,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )


def nadam(
    lr: ScalarOrSchedule = 2e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.NAdam: ``scale_by_nadam`` with torch's weight decay and maximize.

    References:
        Checked against torch.optim.NAdam in tests/torch/test_optim.py.
    """
    del foreach, capturable, differentiable
    check_adam_args("optix.torch.nadam", lr, betas, eps, weight_decay)
    _checks.floating_dtype("optix.torch.nadam", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    preconditioner = scale_by_nadam(
        betas[0], betas[1], eps, momentum_decay, mu_dtype, nu_dtype=nu_dtype
    )
    return adam_like(preconditioner, lr, weight_decay, decoupled_weight_decay, maximize)


def adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.Adamax: ``scale_by_adamax`` with L2 weight decay and maximize.

    References:
        Checked against torch.optim.Adamax in tests/torch/test_optim.py.
    """
    del foreach, differentiable, capturable
    check_adam_args("optix.torch.adamax", lr, betas, eps, weight_decay)
    _checks.floating_dtype("optix.torch.adamax", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    preconditioner = scale_by_adamax(betas[0], betas[1], eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return adam_like(preconditioner, lr, weight_decay, False, maximize)
