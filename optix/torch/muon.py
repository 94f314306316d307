"""torch.optim.Muon: Muon for 2-D parameters, with torch's names, defaults and numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.optimizers.muon import scale_by_muon
from optix.optimizers.muon_axes import MuonDimensionNumbers
from optix.optimizers.muon_jordan import AdjustLr, scale_by_rows_over_cols
from optix.optimizers.newton_schulz import JORDAN_NS_COEFFS, check_ns_steps
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights

FN = "optix.torch.muon"


def _matrix_dims(leaf: jax.Array) -> MuonDimensionNumbers:
    if leaf.ndim != 2:
        raise ValueError(
            f"{FN}: Muon only supports 2-D parameters, found one of shape {leaf.shape}. As "
            "with torch.optim.Muon, train the others with another optimizer: "
            "optix.partition({'muon': optix.torch.muon(...), 'adamw': optix.torch.adamw(...)}, "
            "labels), or use optix.muon_with_adamw."
        )
    return MuonDimensionNumbers(0, 1)


def muon(
    lr: ScalarOrSchedule = 1e-3,
    weight_decay: ScalarOrSchedule = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = JORDAN_NS_COEFFS,
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: AdjustLr = None,
    *,
    ns_dtype: jax.typing.DTypeLike | None = jnp.bfloat16,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.Muon: orthogonalized momentum for 2-D parameters (others are an error).

    For each (rows, cols) leaf, with g the gradient and B the momentum buffer:

        B = momentum * B + (1 - momentum) * g          (B.lerp_(g, 1 - momentum))
        m = (1 - momentum) * g + momentum * B          if nesterov, else m = B
        o = NS(m)      (bfloat16; m / max(||m||_F, eps), then ns_steps quintic steps)
        p = p - lr * (s * o + weight_decay * p)

    with s = sqrt(max(1, rows / cols)) for ``adjust_lr_fn`` None or "original" and
    s = 0.2 * sqrt(max(rows, cols)) for "match_rms_adamw". It is Jordan's Muon with
    torch's eps (a floor of the norm, not an addend) and torch's defaults:
    ``chain(scale_by_muon(..., bias_correction=False, eps_clamp=True),
    scale_by_rows_over_cols(adjust_lr_fn), add_decayed_weights(weight_decay),
    scale_by_learning_rate(lr))``.

    Args:
        lr: Learning rate, >= 0, or a schedule of the step count.
        weight_decay: Decoupled decay, >= 0 (``p *= 1 - lr * weight_decay``).
        momentum: Momentum factor, >= 0 (torch's range; above 1 diverges).
        nesterov: Use the Nesterov mix.
        ns_coefficients: The quintic's (a, b, c).
        eps: Floor of the Frobenius norm before dividing, >= 0.
        ns_steps: Newton-Schulz steps, an int in [0, 100).
        adjust_lr_fn: None, "original" or "match_rms_adamw" (see above).
        ns_dtype: Dtype of the iteration; torch always uses bfloat16, ``None`` iterates
            in the params' precision (at least float32).
        mu_dtype: Dtype of the momentum buffer; ``None`` keeps the params' dtype.

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
        Liu et al., "Muon is Scalable for LLM Training", arXiv:2502.16982.
        Checked against torch.optim.Muon in tests/torch/test_muon.py.
    """
    check_ns_steps(FN, ns_steps)
    if ns_steps >= 100:
        raise ValueError(f"{FN}: ns_steps must be < 100 (as in torch), got ns_steps={ns_steps}")
    _checks.non_negative(FN, allow_schedule=True, lr=lr, weight_decay=weight_decay)
    _checks.non_negative(FN, momentum=momentum, eps=eps)
    _checks.floating_dtype(FN, ns_dtype=ns_dtype, mu_dtype=mu_dtype)
    if len(ns_coefficients) != 3:
        raise ValueError(f"{FN}: ns_coefficients must be 3 numbers, got {ns_coefficients!r}")
    a, b, c = ns_coefficients
    _checks.one_of(FN, "adjust_lr_fn", adjust_lr_fn, (None, "original", "match_rms_adamw"))

    def dims(tree):
        return jax.tree.map(_matrix_dims, tree)

    return chain(
        scale_by_muon(
            (a, b, c),
            ns_steps,
            momentum,
            eps,
            mu_dtype,
            nesterov=nesterov,
            weight_dimension_numbers=dims,
            bias_correction=False,
            ns_dtype=ns_dtype,
            eps_clamp=True,
        ),
        scale_by_rows_over_cols(adjust_lr_fn),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(lr),
    )
