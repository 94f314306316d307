"""torch.optim's Adagrad, Adadelta and RMSprop as optix transformations.

Same conventions as ``optix.torch.optim``: torch's argument names and defaults
(without ``params``), ``lr`` may be a schedule (as setting ``param_group["lr"]`` before
each step), and kernel switches (``foreach``, ``fused``, ``capturable``,
``differentiable``) are accepted and ignored. The keyword-only ``mu_dtype`` (first-order
state) and ``nu_dtype`` (averages and sums of squares) set the state's dtypes; ``None``
keeps the params' dtype, as torch does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, identity
from optix.optimizers.adadelta import scale_by_adadelta
from optix.optimizers.adagrad import scale_by_rss
from optix.optimizers.rmsprop import scale_by_rms, scale_by_stddev
from optix.torch.optim import maximize_direction
from optix.transforms.momentum import trace
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights


def _with_lr_decay(lr: ScalarOrSchedule, lr_decay: float) -> ScalarOrSchedule:
    """torch.optim.Adagrad's ``clr = lr / (1 + (t - 1) * lr_decay)``; count is t - 1."""
    if isinstance(lr_decay, int | float) and lr_decay == 0:
        return lr

    def schedule(count):
        base = lr(count) if callable(lr) else lr
        return base / (1.0 + jnp.asarray(count, jnp.result_type(float)) * lr_decay)

    return schedule


def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0,
    weight_decay: ScalarOrSchedule = 0,
    initial_accumulator_value: float = 0,
    eps: float = 1e-10,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.Adagrad: eps outside the root, ``lr_decay``, L2 decay, maximize.

    For each leaf, with g the gradient, p the parameter and t = count + 1:

        g = -g if maximize;  g = g + weight_decay * p
        sum_of_squares = sum_of_squares + g**2          (starts at initial_accumulator_value)
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum_of_squares) + eps)

    Built as ``scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=False)`` between
    the decay and a learning rate that carries ``lr_decay``. Sparse gradients are not
    supported (JAX gradients are dense).

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, 2011.
        Checked against torch.optim.Adagrad in tests/torch/test_adaptive.py.
    """
    del foreach, differentiable, fused
    fn = "optix.torch.adagrad"
    _checks.non_negative(fn, allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative(
        "optix.torch.adagrad",
        lr_decay=lr_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    _checks.floating_dtype("optix.torch.adagrad", nu_dtype=nu_dtype)
    return chain(
        maximize_direction(maximize),
        add_decayed_weights(weight_decay),
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=False, nu_dtype=nu_dtype),
        scale_by_learning_rate(_with_lr_decay(lr, lr_decay)),
    )


def adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule = 0,
    foreach: bool | None = None,
    *,
    capturable: bool = False,
    maximize: bool = False,
    differentiable: bool = False,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.Adadelta: ``scale_by_adadelta`` with L2 decay, maximize and lr.

    For each leaf: g = -g if maximize; g = g + weight_decay * p; u from
    ``scale_by_adadelta(rho, eps)``; p = p - lr * u.

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
        Checked against torch.optim.Adadelta in tests/torch/test_adaptive.py.
    """
    del foreach, capturable, differentiable
    fn = "optix.torch.adadelta"
    _checks.non_negative(fn, allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative("optix.torch.adadelta", eps=eps)
    _checks.in_unit_interval("optix.torch.adadelta", closed_right=True, rho=rho)
    _checks.floating_dtype("optix.torch.adadelta", nu_dtype=nu_dtype)
    return chain(
        maximize_direction(maximize),
        add_decayed_weights(weight_decay),
        scale_by_adadelta(rho, eps, nu_dtype=nu_dtype),
        scale_by_learning_rate(lr),
    )


def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0,
    momentum: float = 0,
    centered: bool = False,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.RMSprop: eps outside the root, momentum on g / d, lr applied last.

    For each leaf, with g the gradient and p the parameter:

        g = -g if maximize;  g = g + weight_decay * p
        d = sqrt(nu) + eps                   (centered: sqrt(nu - mu**2) + eps)
        buf = momentum * buf + g / d         (buf starts at 0; skipped if momentum == 0)
        p = p - lr * buf

    with nu, mu the averages of ``scale_by_rms`` / ``scale_by_stddev(decay=alpha,
    eps_in_sqrt=False)``. The buffer holds unscaled steps and the current lr multiplies
    it, so this matches torch also when lr changes every step; ``optix.rmsprop`` puts
    the lr inside the buffer instead (Optax's order). ``mu_dtype`` is the dtype of mu
    and buf, ``nu_dtype`` that of nu.

    References:
        Hinton, "Neural Networks for Machine Learning", lecture 6e, 2012. Graves,
        "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850, 2013.
        Checked against torch.optim.RMSprop in tests/torch/test_adaptive.py.
    """
    del capturable, foreach, differentiable
    fn = "optix.torch.rmsprop"
    _checks.non_negative(fn, allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative(fn, eps=eps, momentum=momentum)
    _checks.in_unit_interval(fn, closed_right=True, alpha=alpha)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    if centered:
        scaler = scale_by_stddev(
            alpha, eps, eps_in_sqrt=False, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        )
    else:
        scaler = scale_by_rms(alpha, eps, eps_in_sqrt=False, nu_dtype=nu_dtype)
    return chain(
        maximize_direction(maximize),
        add_decayed_weights(weight_decay),
        scaler,
        trace(momentum, accumulator_dtype=mu_dtype) if momentum else identity(),
        scale_by_learning_rate(lr),
    )
