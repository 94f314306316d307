"""torch.optim.SparseAdam as an optix transformation, with torch's names and numbers."""

from __future__ import annotations

import jax

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, identity
from optix.optimizers.lazy_adam import scale_by_lazy_adam, with_sparse_rows
from optix.torch.optim import check_betas
from optix.transforms.scaling import scale, scale_by_learning_rate


def sparse_adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    maximize: bool = False,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.SparseAdam: Adam that updates only the rows present in the gradient.

    For each leaf, with t = count + 1: g = -g if maximize; then ``scale_by_lazy_adam``
    with ``b1, b2 = betas``; p = p - lr * u. torch's sparse gradient (its materialised
    rows, duplicates summed) is ``SparseRows`` here; a dense gradient reads as its
    nonzero rows, i.e. torch fed ``g.to_sparse(sparse_dim=1)``, where torch itself
    rejects dense gradients. Apply the updates with ``apply_sparse_updates``.

    Args:
        lr: Learning rate, > 0, or a schedule of the step count.
        betas: Decays of the EMAs of g and g**2, each in [0, 1).
        eps: Added to ``sqrt(nu)``, > 0.
        maximize: Ascend the objective instead of descending it.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype.

    Returns:
        A GradientTransformation whose state is
        ``(EmptyState(), ScaleByLazyAdamState, EmptyState())``
        (``ScaleByScheduleState`` last for a scheduled ``lr``).

    References:
        Checked against torch.optim.SparseAdam in tests/torch/test_sparse_adam.py.
    """
    fn = "optix.torch.sparse_adam"
    _checks.positive(fn, allow_schedule=True, lr=lr)
    _checks.positive(fn, eps=eps)
    check_betas(fn, betas)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    direction = scale(-1.0) if maximize else identity()
    return chain(
        with_sparse_rows(direction),
        scale_by_lazy_adam(betas[0], betas[1], eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        with_sparse_rows(scale_by_learning_rate(lr)),
    )
