"""SOAP (nikhilvyas/SOAP ``soap.py``) in NumPy float64.

Written from ``SOAP.step``, ``init_preconditioner``, ``update_preconditioner``,
``project``, ``project_back``, ``merge_dims``, ``get_orthogonal_matrix`` and
``get_orthogonal_matrix_QR`` (channels_first). The official code casts the factors to
float32 for eigh and QR; here everything stays float64.
"""

from __future__ import annotations

import numpy as np


def merge_dims(shape, max_precond_dim):
    new_shape, curr = [], 1
    for sh in shape:
        temp = curr * sh
        if temp > max_precond_dim:
            if curr > 1:
                new_shape.append(curr)
                curr = sh
            else:
                new_shape.append(sh)
                curr = 1
        else:
            curr = temp
    if curr > 1 or len(new_shape) == 0:
        new_shape.append(curr)
    return tuple(new_shape)


class _Soap:
    def __init__(
        self,
        betas,
        shampoo_beta,
        eps,
        weight_decay,
        precondition_frequency,
        max_precond_dim,
        merge,
        precondition_1d,
        normalize_grads,
        correct_bias,
    ):
        self.betas, self.eps, self.wd = betas, eps, weight_decay
        self.shampoo_beta = shampoo_beta if shampoo_beta >= 0 else betas[1]
        self.freq, self.max_dim, self.merge = precondition_frequency, max_precond_dim, merge
        self.p1d, self.normalize, self.correct_bias = precondition_1d, normalize_grads, correct_bias

    def _work(self, x):
        return x.reshape(merge_dims(x.shape, self.max_dim)) if self.merge else x

    def project(self, grad, st, back=False):
        shape = grad.shape
        grad = self._work(grad)
        for mat in st["Q"]:
            if mat is not None:
                grad = np.tensordot(grad, mat, axes=([0], [1 if back else 0]))
            else:
                grad = np.transpose(grad, [*list(range(1, grad.ndim)), 0])
        return grad.reshape(shape)

    def init_preconditioner(self, grad, st):
        st["GG"] = []
        if grad.ndim == 1:
            ok = self.p1d and grad.shape[0] <= self.max_dim
            st["GG"].append(np.zeros((grad.shape[0],) * 2) if ok else None)
        else:
            for sh in self._work(grad).shape:
                st["GG"].append(np.zeros((sh, sh)) if sh <= self.max_dim else None)
        st["Q"] = None

    def update_preconditioner(self, grad, st):
        if st["Q"] is not None:
            st["exp_avg"] = self.project(st["exp_avg"], st, back=True)
        w = 1 - self.shampoo_beta
        if grad.ndim == 1:
            if self.p1d and grad.shape[0] <= self.max_dim:
                st["GG"][0] += w * (np.outer(grad, grad) - st["GG"][0])
        else:
            g = self._work(grad)
            for idx, sh in enumerate(g.shape):
                if sh <= self.max_dim:
                    others = [i for i in range(g.ndim) if i != idx]
                    outer = np.tensordot(g, g, axes=(others, others))
                    st["GG"][idx] += w * (outer - st["GG"][idx])
        if st["Q"] is None:
            st["Q"] = [
                None if m is None else np.flip(np.linalg.eigh(m + 1e-30 * np.eye(len(m)))[1], 1)
                for m in st["GG"]
            ]
        if st["step"] > 0 and st["step"] % self.freq == 0:
            st["Q"] = self.orthogonal_matrix_qr(st)
        if st["step"] > 0:
            st["exp_avg"] = self.project(st["exp_avg"], st)

    def orthogonal_matrix_qr(self, st):
        shape = st["exp_avg_sq"].shape
        exp_avg_sq = self._work(st["exp_avg_sq"])
        final = []
        for ind, (m, o) in enumerate(zip(st["GG"], st["Q"], strict=True)):
            if m is None:
                final.append(None)
                continue
            est_eig = np.diag(o.T @ m @ o)
            sort_idx = np.argsort(-est_eig, kind="stable")
            exp_avg_sq = np.take(exp_avg_sq, sort_idx, axis=ind)
            o = o[:, sort_idx]
            q, _ = np.linalg.qr(m @ o)
            final.append(q)
        st["exp_avg_sq"] = exp_avg_sq.reshape(shape)
        return final

    def step(self, p, grad, st, lr):
        if "exp_avg" not in st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(grad)
            st["exp_avg_sq"] = np.zeros_like(grad)
            self.init_preconditioner(grad, st)
            self.update_preconditioner(grad, st)
            return p
        gp = self.project(grad, st)
        beta1, beta2 = self.betas
        st["step"] += 1
        st["exp_avg"] = st["exp_avg"] * beta1 + (1.0 - beta1) * gp
        st["exp_avg_sq"] = st["exp_avg_sq"] * beta2 + (1.0 - beta2) * gp * gp
        denom = np.sqrt(st["exp_avg_sq"]) + self.eps
        step_size = lr
        if self.correct_bias:
            step_size = step_size * (1.0 - beta2 ** st["step"]) ** 0.5 / (1.0 - beta1 ** st["step"])
        norm_grad = self.project(st["exp_avg"] / denom, st, back=True)
        if self.normalize:
            norm_grad = norm_grad / (1e-30 + np.mean(norm_grad**2) ** 0.5)
        p = p - step_size * norm_grad
        if self.wd > 0.0:
            p = p + p * (-lr * self.wd)
        self.update_preconditioner(grad, st)
        return p


def run(
    params,
    grads,
    lrs,
    *,
    betas=(0.95, 0.95),
    shampoo_beta=-1,
    eps=1e-8,
    weight_decay=0.01,
    precondition_frequency=10,
    max_precond_dim=10000,
    merge_dims=False,
    precondition_1d=False,
    normalize_grads=False,
    correct_bias=True,
):
    """Params after every step, float64."""
    opt = _Soap(
        betas,
        shampoo_beta,
        eps,
        weight_decay,
        precondition_frequency,
        max_precond_dim,
        merge_dims,
        precondition_1d,
        normalize_grads,
        correct_bias,
    )
    params = {k: np.array(v, np.float64) for k, v in params.items()}
    states = {k: {} for k in params}
    trajectory = []
    for lr, g in zip(lrs, grads, strict=True):
        params = {
            k: opt.step(p, np.array(g[k], np.float64), states[k], lr) for k, p in params.items()
        }
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
