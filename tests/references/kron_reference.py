"""PSGD Kron in NumPy, transliterated from the official kron_torch/kron.py (kron-torch 0.3.3).

The official code draws its random numbers inside ``step``: a Python ``random.Random(42)``
draw decides whether the preconditioners are rebalanced, ``torch.randn_like`` gives the
probe vector of each preconditioner update. Here they are arguments of ``step``
(``balance_draw``, ``noises``), so a test can feed both sides the same numbers.

Two departures, both where the official code cannot run as it stands: a scalar
parameter is preconditioned as a one-entry vector (the official code fails on
0-d tensors), and in float64 the triangular solve stays in float64 (the official code
solves in float32 whatever the preconditioner's dtype). Everything else follows the
official file line by line, in the dtype of the run.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

EPS32 = np.finfo(np.float32).eps


def prob_schedule(max_prob=1.0, min_prob=0.03, decay=0.001, flat_start=500):
    """The official annealed update probability, computed in float32 as there."""
    f = np.float32

    def schedule(n):
        prob = f(max_prob) * np.exp(-f(decay) * (f(n) - f(flat_start)), dtype=f)
        return np.clip(prob, f(min_prob), f(max_prob)).astype(f)

    return schedule


def merged_shape(shape, merge_dims=True):
    if len(shape) > 2 and merge_dims:
        shape1 = [int(np.prod(shape[:-1])), shape[-1]]
        shape2 = [shape[0], int(np.prod(shape[1:]))]
        return tuple(shape1 if np.diff(shape1) <= np.diff(shape2) else shape2)
    return tuple(shape) if shape else (1,)


def diagonal_dims(shape, max_size, min_ndim_triangular, memory_save_mode):
    if memory_save_mode is None:
        diag = [False] * len(shape)
    elif memory_save_mode == "smart_one_diag":
        diag = [False] * len(shape)
        ordered = sorted(shape)
        if len(shape) > 1 and ordered[-1] > ordered[-2]:
            diag[np.argsort(shape)[::-1][0]] = True
    elif memory_save_mode == "one_diag":
        diag = [False] * len(shape)
        diag[np.argsort(shape)[::-1][0]] = True
    else:
        diag = [True] * len(shape)
    return [
        d or size == 1 or size > max_size or len(shape) < min_ndim_triangular
        for size, d in zip(shape, diag, strict=True)
    ]


def along(x, k, fn):
    """Apply ``fn`` (matrix from the left) to axis k of x."""
    moved = np.moveaxis(x, k, 0)
    return np.moveaxis(fn(moved.reshape(moved.shape[0], -1)).reshape(moved.shape), 0, k)


def lower_bound(a, max_abs):
    a = a / max_abs
    i = np.argmax(np.einsum("ij,ij->j", a, a))
    x = a[:, i] @ a
    x = x / np.linalg.norm(x)
    return np.linalg.norm(a @ x) * max_abs


class Kron:
    def __init__(
        self,
        shapes,
        dtype,
        b1=0.9,
        weight_decay=0.0,
        preconditioner_update_probability=None,
        max_size_triangular=8192,
        min_ndim_triangular=2,
        memory_save_mode=None,
        momentum_into_precond_update=True,
        precond_lr=0.1,
        precond_init_scale=1.0,
        merge_dims=True,
    ):
        self.dtype, self.b1, self.weight_decay = dtype, b1, weight_decay
        self.prob = preconditioner_update_probability
        if self.prob is None:
            self.prob = prob_schedule()
        self.momentum_into_precond_update = momentum_into_precond_update
        self.precond_lr = precond_lr
        self.prob_step, self.counter, self.step_count = 0, 0, 0
        self.shapes = [tuple(s) for s in shapes]
        self.merged = [merged_shape(s, merge_dims) for s in self.shapes]
        self.momentum = [np.zeros(s, dtype) for s in self.merged]
        self.diag, self.Q = [], []
        for shape in self.merged:
            scale = precond_init_scale ** (1 / len(shape))
            diag = diagonal_dims(shape, max_size_triangular, min_ndim_triangular, memory_save_mode)
            self.diag.append(diag)
            self.Q.append(
                [
                    (scale * np.ones(n) if d else scale * np.eye(n)).astype(dtype)
                    for n, d in zip(shape, diag, strict=True)
                ]
            )

    def step(self, params, grads, lr, balance_draw, noises):
        """One step: returns the new params. ``noises[i]`` has leaf i's merged shape."""
        f = self.dtype
        prob = self.prob(self.prob_step) if callable(self.prob) else self.prob
        self.counter += 1
        do_update = self.counter >= 1 / prob
        if do_update:
            self.counter = 0
        self.prob_step += 1
        balance = balance_draw < 0.01 and do_update
        self.step_count += 1
        new_params = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = np.asarray(g, f).reshape(self.merged[i])
            m = self.momentum[i] = self.b1 * self.momentum[i] + (1 - self.b1) * g
            debiased = (m / f(1 - self.b1**self.step_count)).astype(f)
            if len(self.shapes[i]) > 1 and balance:
                norms = np.array([np.max(np.abs(q)) for q in self.Q[i]])
                factors = np.exp(np.mean(np.log(norms))) / norms
                self.Q[i] = [q * s for q, s in zip(self.Q[i], factors, strict=True)]
            if do_update:
                G = debiased if self.momentum_into_precond_update else g.copy()
                G += np.sqrt(f(EPS32)) * np.mean(np.abs(G)) * np.asarray(noises[i], f)
                self._update(i, G, np.asarray(noises[i], f))
            pre = debiased
            for k, (q, d) in enumerate(zip(self.Q[i], self.diag[i], strict=True)):
                if d:
                    pre = along(pre, k, lambda x, q=q: (q * q)[:, None] * x)
                else:
                    pre = along(pre, k, lambda x, q=q: q.T @ (q @ x))
            pre = pre * min(f(1.0), f(1.1) / (np.sqrt(np.mean(pre * pre)) + f(1e-12)))
            pre = pre.reshape(self.shapes[i])
            if self.weight_decay != 0 and np.ndim(p) >= 2:
                pre = pre + f(self.weight_decay) * p
            new_params.append((p - f(lr) * pre).astype(f))
        return new_params

    def _update(self, i, G, V):
        f, Q, diag = self.dtype, self.Q[i], self.diag[i]
        A, conjB = G, V
        for k, (q, d) in enumerate(zip(Q, diag, strict=True)):
            if d:
                A = along(A, k, lambda x, q=q: q[:, None] * x)
                conjB = along(conjB, k, lambda x, q=q: x / q[:, None])
            else:
                A = along(A, k, lambda x, q=q: q @ x)
                solve_dtype = np.float64 if f == np.float64 else np.float32
                conjB = along(
                    conjB,
                    k,
                    lambda x, q=q, sd=solve_dtype: scipy.linalg.solve_triangular(
                        q.astype(sd), x.astype(sd), trans="T", lower=False
                    ).astype(f),
                )
        tiny = np.finfo(f).tiny
        for k, (q, d) in enumerate(zip(Q, diag, strict=True)):
            a = np.moveaxis(A, k, 0).reshape(A.shape[k], -1)
            b = np.moveaxis(conjB, k, 0).reshape(A.shape[k], -1)
            if d:
                term1, term2 = np.sum(a * a, axis=1), np.sum(b * b, axis=1)
            else:
                term1, term2 = a @ a.T, b @ b.T
            term1, term2 = term1 - term2, term1 + term2
            term1 = term1 * f(self.precond_lr)
            norm = np.max(np.abs(term2))
            if d:
                Q[k] = q - term1 * q / max(norm, tiny)
            else:
                bound = lower_bound(term2, norm) if norm > 0 else norm
                Q[k] = q - (np.triu(term1) / max(bound, tiny)) @ q
