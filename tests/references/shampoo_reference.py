"""Distributed Shampoo (facebookresearch/optimizers ``distributed_shampoo/``) on one device,
in NumPy float64.

Written from ``DistributedShampoo._group_step_body`` / ``_compute_search_directions``,
``utils/shampoo_utils.py`` (``merge_small_dims``, ``multi_dim_split``),
``preconditioner/shampoo_preconditioner_list.py`` (root-inverse Shampoo, factor update,
``_precondition_grad``), ``preconditioner/matrix_functions.py``
(``matrix_inverse_root`` with the default ``EigenConfig`` and ``PerturbationConfig``) and
``preconditioner/adagrad_preconditioner_list.py`` (grafting), for the options supported:
betas, beta3, epsilon, weight decay (L2 or decoupled), max_preconditioner_dim,
precondition_frequency, start_preconditioning_step, use_bias_correction, grafting (SGD,
AdaGrad, RMSprop, Adam), target_parameter_dimensionality, a uniform inverse exponent.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def merge_small_dims(shape, threshold, target):
    if 0 in shape:
        return (0,)
    if math.isinf(target):
        return tuple(shape)
    squeezed = [s for s in reversed(shape) if s != 1] or [1]
    new = [squeezed[0]]
    for n_done, nxt in enumerate(squeezed[1:], start=1):
        if len(new) + len(squeezed) - n_done > target and new[-1] * nxt <= threshold:
            new[-1] = new[-1] * nxt
        else:
            new.append(nxt)
    return tuple(reversed(new))


def multi_dim_split_slices(shape, split_size):
    """Index tuples of ``multi_dim_split`` (torch.split along dim 0, then dim 1, ...)."""
    if math.isinf(split_size):
        return [tuple(slice(0, s) for s in shape)]
    per_dim = [
        [slice(a, min(a + split_size, s)) for a in range(0, s, split_size)] or [slice(0, 0)]
        for s in shape
    ]
    return list(itertools.product(*per_dim))


def matrix_inverse_root(a, root, epsilon):
    a_ridge = a + epsilon * np.eye(a.shape[0])
    lam, q = np.linalg.eigh(a_ridge)
    lam_min = lam.min()
    if lam_min < epsilon:
        lam = lam + (-lam_min)
        lam = lam + epsilon
    return (q * (lam ** (-1.0 / root))[None, :]) @ q.T


def precondition_grad(grad, preconditioners):
    for p in preconditioners:
        grad = np.tensordot(grad, p, axes=([0], [0]))
    return grad


def run(
    params,
    grads,
    lrs,
    *,
    betas=(0.9, 1.0),
    beta3=-1.0,
    epsilon=1e-12,
    weight_decay=0.0,
    weight_decay_type="decoupled",
    max_preconditioner_dim=1024,
    precondition_frequency=1,
    start_preconditioning_step=-1,
    use_bias_correction=True,
    grafting=None,
    grafting_beta2=None,
    grafting_epsilon=1e-10,
    target_dimensionality=1,
    inverse_exponent=None,
):
    """Params after every step; ``grafting`` is None, "sgd", "adagrad", "rmsprop", "adam"."""
    beta1, beta2 = betas
    beta3 = beta1 if beta3 == -1.0 else beta3
    start = (
        precondition_frequency if start_preconditioning_step == -1 else start_preconditioning_step
    )
    g_beta2, g_weight, g_bias = {
        None: (1.0, 1.0, False),
        "sgd": (1.0, 1.0, False),
        "adagrad": (1.0, 1.0, False),
        "rmsprop": (grafting_beta2 or 0.99, 1 - (grafting_beta2 or 0.99), False),
        "adam": (grafting_beta2 or 0.999, 1 - (grafting_beta2 or 0.999), True),
    }[grafting]
    weighting = 1.0 if beta2 == 1.0 else 1 - beta2
    params = {k: np.array(v, np.float64) for k, v in params.items()}
    blocks = []  # (name, merged shape, slices, block state)
    for name, p in params.items():
        merged = merge_small_dims(p.shape, max_preconditioner_dim, target_dimensionality)
        for sl in multi_dim_split_slices(merged, max_preconditioner_dim):
            dims = tuple(s.stop - s.start for s in sl)
            order = len(dims)
            root = 1.0 / (inverse_exponent or 1 / (2 * max(order, 1)))
            blocks.append(
                (
                    name,
                    merged,
                    sl,
                    {
                        "factors": [np.zeros((d, d)) for d in dims],
                        "inv": [np.eye(d) for d in dims],
                        "root": root,
                        "filtered": np.zeros(dims),
                        "adagrad": np.zeros(dims),
                    },
                )
            )
    trajectory = []
    for step, g_all in enumerate(grads, start=1):
        lr = lrs[step - 1]
        compute = (step % precondition_frequency == 0 and step > start) or step == start
        use_graft_method = step < start and grafting is not None
        bc2 = 1.0 - beta2**step if use_bias_correction and beta2 < 1.0 else 1.0
        g_bc2 = 1.0 - g_beta2**step if g_bias and g_beta2 < 1.0 else 1.0
        new_params = {k: v.copy() for k, v in params.items()}
        for name, merged, sl, st in blocks:
            grad = np.array(g_all[name], np.float64).reshape(merged)[sl].copy()
            w = params[name].reshape(merged)[sl]
            if weight_decay != 0.0 and weight_decay_type == "l2":
                grad = grad + weight_decay * w
            # factor matrices
            for k, f in enumerate(st["factors"]):
                others = [i for i in range(grad.ndim) if i != k]
                outer = np.tensordot(grad, grad, axes=(others, others))
                if beta2 != 1.0:
                    f *= beta2
                f += weighting * outer
            if compute:
                st["inv"] = [
                    matrix_inverse_root(f / bc2, st["root"], epsilon) for f in st["factors"]
                ]
            if grafting in ("adagrad", "rmsprop", "adam"):
                if g_beta2 != 1.0:
                    st["adagrad"] *= g_beta2
                st["adagrad"] += g_weight * grad * grad
            # filtered gradient
            if beta1 != 0.0:
                gbar = (
                    st["filtered"] + (1 - beta3) * (grad - st["filtered"])
                    if beta3 != beta1
                    else None
                )
                st["filtered"] += (1 - beta1) * (grad - st["filtered"])
                gbar = st["filtered"].copy() if gbar is None else gbar
                if use_bias_correction:
                    gbar = gbar / (1.0 - beta3 * beta1 ** (step - 1))
            else:
                gbar = grad

            def graft(x, st=st, g_bc2=g_bc2):
                if grafting in (None, "sgd"):
                    return x
                return x / (np.sqrt(st["adagrad"] / g_bc2) + grafting_epsilon)

            if use_graft_method:
                direction = graft(gbar)
            else:
                direction = precondition_grad(gbar, st["inv"])
                if grafting is not None:
                    ratio = np.linalg.norm(graft(gbar)) / (np.linalg.norm(direction) + 1e-16)
                    direction = direction * ratio
            if weight_decay != 0.0 and weight_decay_type == "decoupled":
                direction = direction + weight_decay * w
            view = new_params[name].reshape(merged)
            view[sl] = view[sl] - lr * direction
        params = new_params
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
