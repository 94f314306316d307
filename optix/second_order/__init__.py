"""Curvature of a loss ``loss(params, inputs, targets)``: Hessian-vector products and
Hessian and Fisher diagonals (Optax's ``optax.second_order``).

Hutchinson's estimator of the Hessian diagonal lives in ``optix.second_order.hutchinson``
and is public as ``optix.contrib.hutchinson_estimator_diag_hessian``, where Optax has it.
"""

from optix.second_order.derivatives import fisher_diag, hessian_diag, hvp

__all__ = ["fisher_diag", "hessian_diag", "hvp"]
