"""galore-torch (jiaweizzhao/GaLore) in NumPy: ``GaLoreProjector`` and ``AdamW.step``.

Written from galore_torch/galore_projector.py (proj_type "std", "reverse_std", "left",
"right") and galore_torch/adamw.py: the gradient of a projected parameter is projected
(the projector is recomputed when ``step % update_proj_gap == 0``, ``step`` counted
before the increment), Adam runs on the low-rank gradient with
``denom = sqrt(exp_avg_sq) + eps`` and ``step_size = lr * sqrt(1 - b2**t) / (1 - b1**t)``,
the normalized gradient is projected back and multiplied by ``scale``, the parameter
moves by ``-step_size`` times it, and then decays by ``p -= lr * weight_decay * p``.
Unprojected parameters take the same AdamW step.

Differences from the original, both for the comparison: the SVD runs in the arrays'
dtype (galore-torch casts non-float32 matrices to float32), and ``svd`` may be replaced
(singular vectors are defined up to sign; a test can align the signs with another
implementation's, which leaves the algorithm unchanged).
"""

from __future__ import annotations

import numpy as np


class Projector:
    def __init__(self, rank, update_proj_gap, scale, proj_type, svd):
        self.rank, self.gap, self.scale, self.proj_type, self.svd = (
            rank,
            update_proj_gap,
            scale,
            proj_type,
            svd,
        )
        self.ortho = None

    def _orthogonal(self, matrix, side):
        u, _, vh = self.svd(matrix)
        return vh[: self.rank, :] if side == "right" else u[:, : self.rank]

    def _side(self, shape):
        if self.proj_type in ("left", "right"):
            return self.proj_type
        tall = shape[0] >= shape[1]
        if self.proj_type == "std":
            return "right" if tall else "left"
        return "left" if tall else "right"  # reverse_std

    def project(self, grad, step):
        self.side = self._side(grad.shape)
        if self.ortho is None or step % self.gap == 0:
            self.ortho = self._orthogonal(grad, self.side)
        return grad @ self.ortho.T if self.side == "right" else self.ortho.T @ grad

    def project_back(self, low):
        full = low @ self.ortho if self.side == "right" else self.ortho @ low
        return full * self.scale


def numpy_svd(matrix):
    return np.linalg.svd(matrix, full_matrices=False)


def run_galore_adamw(
    params: dict,
    grads: list[dict],
    *,
    lr,
    rank: int,
    update_proj_gap: int,
    scale: float = 1.0,
    betas=(0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    correct_bias: bool = True,
    proj_type: str = "std",
    svd=numpy_svd,
):
    """Params after every step; 2-D params are projected. ``lr`` may be a list per step."""
    params = {k: np.array(v) for k, v in params.items()}
    state: dict[str, dict] = {k: {"step": 0} for k in params}
    beta1, beta2 = betas
    trajectory = []
    for t, g in enumerate(grads):
        group_lr = lr[t] if isinstance(lr, list) else lr
        for k, p in params.items():
            s, grad = state[k], g[k]
            if p.ndim == 2:
                if "projector" not in s:
                    s["projector"] = Projector(rank, update_proj_gap, scale, proj_type, svd)
                grad = s["projector"].project(grad, s["step"])
            if "exp_avg" not in s:
                s["exp_avg"], s["exp_avg_sq"] = np.zeros_like(grad), np.zeros_like(grad)
            s["step"] += 1
            s["exp_avg"] = s["exp_avg"] * beta1 + grad * (1.0 - beta1)
            s["exp_avg_sq"] = s["exp_avg_sq"] * beta2 + grad * grad * (1.0 - beta2)
            denom = np.sqrt(s["exp_avg_sq"]) + eps
            step_size = group_lr
            if correct_bias:
                step_size = (
                    step_size * np.sqrt(1.0 - beta2 ** s["step"]) / (1.0 - beta1 ** s["step"])
                )
            norm_grad = s["exp_avg"] / denom
            if p.ndim == 2:
                norm_grad = s["projector"].project_back(norm_grad)
            p = p + (-step_size) * norm_grad
            if weight_decay > 0.0:
                p = p + p * (-group_lr * weight_decay)
            params[k] = p
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
