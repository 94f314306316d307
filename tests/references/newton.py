"""Newton directions and trajectories in NumPy float64, written from the published algorithms.

``damped_newton_direction``: Nocedal & Wright, "Numerical Optimization" (2006),
Algorithm 3.3 (Cholesky with added multiple of the identity): tau_0 = 0 when the
smallest diagonal entry is positive, else -min(a_ii) + beta; retry with
tau = max(2 tau, beta) until the factorization succeeds. optix adds a floor ``damping``
to tau and a budget of factorizations; ``numpy.linalg.cholesky`` decides success.

``cg_direction``: the conjugate-gradient loop of SciPy's ``_minimize_newtoncg``
(scipy/optimize/_optimize.py), in its own variables (``b = -grad``, ``xsupi``, ``ri``,
``psupi``), returning ``-xsupi`` (optix's sign convention: the step is minus the
direction).

``run_newton``: iterates ``x <- x - lr_t * direction(x)`` on an objective given by
its NumPy gradient and Hessian.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def damped_newton_direction(
    hess: np.ndarray,
    g: np.ndarray,
    damping: float = 0.0,
    beta: float = 1e-3,
    factor: float = 2.0,
    max_factorizations: int = 50,
) -> tuple[np.ndarray, float, int, bool]:
    """``(u, tau, factorizations tried, failed)`` with ``(hess + tau I) u = g``."""
    min_diag = min(hess[i, i] for i in range(len(g)))
    if min_diag + damping > 0:
        tau = damping
    elif math.isfinite(min_diag):
        tau = beta - min_diag
    else:
        tau = beta
    tries = 0
    while True:
        tries += 1
        try:
            lower = np.linalg.cholesky(hess + tau * np.eye(len(g)))
            if not np.all(np.isfinite(lower)):
                raise np.linalg.LinAlgError("not finite")
            # Forward then back substitution with the factor.
            z = np.zeros_like(g)
            for i in range(len(g)):
                z[i] = (g[i] - lower[i, :i] @ z[:i]) / lower[i, i]
            u = np.zeros_like(g)
            for i in reversed(range(len(g))):
                u[i] = (z[i] - lower[i + 1 :, i] @ u[i + 1 :]) / lower[i, i]
            return u, tau, tries, False
        except np.linalg.LinAlgError:
            if tries >= max_factorizations:
                return g.copy(), tau, tries, True
            tau = max(factor * tau, beta)


def cg_direction(
    hessp: Callable[[np.ndarray], np.ndarray],
    grad: np.ndarray,
    cg_maxiter: int | None = None,
    cg_rtol: float | None = None,
    norm_ord: int = 1,
) -> tuple[np.ndarray, int, str]:
    """SciPy's Newton-CG inner loop: ``(-xsupi, Hessian-vector products, why it stopped)``.

    The reason is "converged", "curvature" (non-positive curvature after the first
    step), "steepest" (negative curvature at the first step) or "max_steps".
    """
    float64eps = np.finfo(np.float64).eps
    if cg_maxiter is None:
        cg_maxiter = 20 * len(grad)
    b = -grad
    maggrad = np.linalg.norm(b, ord=norm_ord)
    eta = min(0.5, math.sqrt(maggrad)) if cg_rtol is None else cg_rtol
    termcond = eta * maggrad
    xsupi = np.zeros(len(grad))
    ri = -b
    psupi = -ri
    hcalls = 0
    dri0 = np.dot(ri, ri)
    reason = "max_steps"
    # i counts the CG updates made, as SciPy's own counter does.
    for i in range(cg_maxiter):
        if np.linalg.norm(ri, ord=norm_ord) <= termcond:
            reason = "converged"
            break
        Ap = hessp(psupi)
        hcalls += 1
        curv = np.dot(psupi, Ap)
        if 0 <= curv <= 3 * float64eps:
            reason = "curvature"
            break
        elif curv < 0:
            if i > 0:
                reason = "curvature"
                break
            xsupi = dri0 / (-curv) * b
            reason = "steepest"
            break
        alphai = dri0 / curv
        xsupi = xsupi + alphai * psupi
        ri = ri + alphai * Ap
        dri1 = np.dot(ri, ri)
        betai = dri1 / dri0
        psupi = -ri + betai * psupi
        dri0 = dri1
    return -xsupi, hcalls, reason


def run_newton(
    direction: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    learning_rates: list[float],
) -> list[np.ndarray]:
    """Iterates of ``x <- x - lr * direction(x)``, one per learning rate."""
    x = np.asarray(x0, np.float64).copy()
    trajectory = []
    for lr in learning_rates:
        x = x - lr * direction(x)
        trajectory.append(x.copy())
    return trajectory
