"""SAM: sharpness-aware minimization, as Optax's periodic wrapper and as the two-pass step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    apply_updates,
    chain,
    identity,
    init_empty_state,
)
from optix.transforms.clipping import wide_global_norm
from optix.transforms.momentum import momentum_buffer
from optix.transforms.normalize import normalize
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import compute_dtype
from optix.tree.structure import check_same_structure

__all__ = ["SAMState", "normalize", "sam", "sam_gradient", "sam_sgd", "scale_by_sam"]


class SAMState(NamedTuple):
    """State of ``sam``."""

    steps_since_sync: jax.Array  # int32 scalar: adversarial steps since the last outer step
    opt_state: Any  # state of the outer optimizer
    adv_state: Any  # state of the adversarial (inner) optimizer
    cache: Any  # params at the last outer step (None in opaque mode)


def _pick(cond, if_true, if_false):
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), if_true, if_false)


def sam(
    optimizer: GradientTransformation,
    adv_optimizer: GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> GradientTransformation:
    """SAM as Optax writes it: ``sync_period - 1`` adversarial steps, then one outer step.

    Transparent mode (``opaque_mode=False``), one call per step, with k = steps_since_sync
    and cache the params at the start of the period:

        k == 0:                cache = params
        k <  sync_period - 1:  u = -adv_optimizer(g, params)        (climb)
        k == sync_period - 1:  u = cache - params + optimizer(g, cache)
                               (back to cache, then the outer step with the gradient g
                               taken at the adversarial point)
        k = (k + 1) % sync_period

    After the outer step the adversarial state is reset to ``adv_optimizer.init(params)``
    (``reset_state``) or kept as it was before that step. Opaque mode runs the whole
    period inside one ``update``: ``update(g, state, params, grad_fn=f)`` climbs
    ``sync_period - 1`` times with ``g_i = f(adv_params, i)`` and returns
    ``optimizer(g_last, params)``; the rest of the program only sees outer steps.

    The paper's SAM is ``sam(sgd(lr), chain(normalize(), sgd(rho)))``; ``sam_sgd`` /
    ``scale_by_sam`` give its two-pass form (davda54/sam), ASAM included.
    With ``sync_period=1`` Optax hands the outer optimizer the cache of the previous
    step (it moves the params back by one update); here the cache is refreshed before
    it is read, so ``sync_period=1`` is the plain outer optimizer. For ``sync_period >= 2``
    the numbers are Optax's.

    Args:
        optimizer: The outer optimizer (its updates are applied at ``cache``).
        adv_optimizer: The adversarial optimizer; its update is subtracted (an ascent).
        sync_period: Steps per period, an int >= 1 (the last one is the outer step).
        reset_state: Re-initialise the adversarial state after each outer step.
        opaque_mode: Run the adversarial steps inside ``update`` (needs ``grad_fn``).
        batch_axis_name: Opaque mode: ``pmean`` the adversarial gradients over this axis.

    Returns:
        A GradientTransformation whose state is ``SAMState``.

    References:
        Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
        Generalization", ICLR 2021, arXiv:2010.01412.
        Checked against optax.contrib.sam in tests/optimizers/test_sam.py.
    """
    _checks.integer_at_least("sam", "sync_period", sync_period, 1)

    def init(params):
        return SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=optimizer.init(params),
            adv_state=adv_optimizer.init(params),
            cache=None if opaque_mode else params,
        )

    def transparent_update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("sam: update needs params (the adversarial point): pass params")
        extra_args.pop("grad_fn", None)
        check_same_structure("sam", updates=updates, cache=state.cache)
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        cache = _pick(first, params, state.cache)
        adv_updates, adv_state = adv_optimizer.update(
            updates, state.adv_state, params, **extra_args
        )
        opt_updates, opt_state = optimizer.update(updates, state.opt_state, cache, **extra_args)
        opt_updates = jax.tree.map(lambda c, p, u: c - p + u, cache, params, opt_updates)
        updates = _pick(last, opt_updates, jax.tree.map(jnp.negative, adv_updates))
        if reset_state:
            adv_state = _pick(last, adv_optimizer.init(params), adv_state)
        else:
            adv_state = _pick(last, state.adv_state, adv_state)
        return updates, SAMState(
            steps_since_sync=(state.steps_since_sync + 1) % sync_period,
            opt_state=_pick(last, opt_state, state.opt_state),
            adv_state=adv_state,
            cache=cache,
        )

    def opaque_update(updates, state, params=None, *, grad_fn=None, **extra_args):
        if grad_fn is None:
            raise ValueError(
                "sam: opaque_mode=True needs the keyword argument grad_fn: call "
                "update(grads, state, params, grad_fn=lambda p, i: jax.grad(loss)(p))"
            )
        if params is None:
            raise ValueError("sam: update needs params (the adversarial point): pass params")
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(
                adv_updates, adv_state, adv_params, **extra_args
            )
            adv_params = apply_updates(adv_params, jax.tree.map(jnp.negative, adv_updates))
            adv_updates = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_updates = jax.lax.pmean(adv_updates, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        updates, opt_state = optimizer.update(adv_updates, state.opt_state, params, **extra_args)
        return updates, SAMState(jnp.zeros([], jnp.int32), opt_state, adv_state, None)

    return GradientTransformation(init, opaque_update if opaque_mode else transparent_update)


def _perturbation(grads, params, rho, adaptive: bool):
    """e = rho * T**2 g / (||T g|| + 1e-12), T = |params| (ASAM) or 1."""
    if adaptive:
        scaled = jax.tree.map(lambda g, p: jnp.abs(p).astype(g.dtype) * g, grads, params)
    else:
        scaled = grads
    n = wide_global_norm(scaled)
    factor = jnp.asarray(rho, n.dtype) / (n + jnp.asarray(1e-12, n.dtype))

    def leaf(g, p):
        dt = compute_dtype(g, p)
        e = g.astype(dt) * factor.astype(dt)
        return jnp.square(p.astype(dt)) * e if adaptive else e

    return jax.tree.map(leaf, grads, params)


def sam_gradient(
    grad_fn: Callable[[Any], Any],
    params: Any,
    rho: jax.typing.ArrayLike = 0.05,
    adaptive: bool = False,
    grads: Any = None,
) -> Any:
    """The SAM gradient: the gradient at the worst nearby point, ``grad_fn(params + e)``.

    With g = ``grads`` (default ``grad_fn(params)``, the first pass) and T = |params|
    if ``adaptive`` (ASAM) else 1, per leaf:

        n = global L2 norm of T * g
        e = rho * T**2 * g / (n + 1e-12)
        sam_grad = grad_fn(params + e)        (the second pass)

    Feed ``sam_grad`` to any optimizer at ``params`` (not at ``params + e``).

    Args:
        grad_fn: params -> gradients of the loss (one batch for both passes).
        params: The current params.
        rho: Radius of the neighbourhood, >= 0 (0 gives the plain gradient).
        adaptive: ASAM's scale-invariant neighbourhood (``rho`` is then usually ~10x larger).
        grads: The gradient at ``params`` if already computed.

    References:
        Foret et al., arXiv:2010.01412; Kwon et al., "ASAM: Adaptive Sharpness-Aware
        Minimization for Scale-Invariant Learning of Deep Neural Networks", ICML 2021,
        arXiv:2102.11600. Checked against a NumPy transliteration of davda54/sam's
        ``SAM`` (tests/references/sam.py) in tests/optimizers/test_sam.py.
    """
    grads = grad_fn(params) if grads is None else grads
    return grad_fn(apply_updates(params, _perturbation(grads, params, rho, adaptive)))


def scale_by_sam(
    rho: jax.typing.ArrayLike = 0.05, adaptive: bool = False
) -> GradientTransformation:
    """Replace the gradient by the two-pass SAM gradient ``sam_gradient``.

    ``update(g, state, params, grad_fn=f)`` returns ``f(params + e)`` with e from g as in
    ``sam_gradient``; ``value_fn=loss`` may stand for ``grad_fn=jax.grad(loss)``. Chain it
    before any optimizer: ``chain(scale_by_sam(0.05), adamw(1e-3))``. Stateless.

    Args:
        rho: Radius of the neighbourhood, >= 0.
        adaptive: ASAM (element-wise scaling by |params|).

    References:
        Foret et al., arXiv:2010.01412; Kwon et al., arXiv:2102.11600.
        Checked against a NumPy transliteration of davda54/sam in tests/optimizers/test_sam.py.
    """
    _checks.non_negative("scale_by_sam", rho=rho)

    def update(updates, state, params=None, *, grad_fn=None, value_fn=None, **extra_args):
        del extra_args
        if params is not None and grad_fn is None and value_fn is not None:
            grad_fn = jax.grad(value_fn)
        _checks.real_params("scale_by_sam", updates, "the ascent step is a real direction")
        if params is None or grad_fn is None:
            raise _checks.MissingExtraArgumentError(
                "scale_by_sam: update needs params and the keyword argument grad_fn (or "
                "value_fn): call update(grads, state, params, grad_fn=jax.grad(loss))"
            )
        return sam_gradient(grad_fn, params, rho, adaptive, grads=updates), state

    return GradientTransformation(init_empty_state, update)


def sam_sgd(
    learning_rate: ScalarOrSchedule,
    rho: jax.typing.ArrayLike = 0.05,
    adaptive: bool = False,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: ScalarOrSchedule = 0.0,
) -> GradientTransformation:
    """Two-pass SAM (or ASAM) over torch.optim.SGD, davda54/sam's usual recipe.

    ``chain(scale_by_sam(rho, adaptive), add_decayed_weights(weight_decay),
    momentum_buffer(momentum, nesterov=nesterov), scale_by_learning_rate(learning_rate))``:
    with s the SAM gradient (see ``sam_gradient``), per leaf

        d = s + weight_decay * p
        buf = d on the first step, momentum * buf + d afterwards
        p = p - learning_rate * (d + momentum * buf if nesterov else buf)

    ``update`` needs ``grad_fn`` (or ``value_fn``) as ``scale_by_sam`` does.

    Args:
        learning_rate: SGD's learning rate.
        rho: SAM's radius, >= 0 (davda54's default 0.05; ~2.0 for ASAM).
        adaptive: ASAM.
        momentum: torch SGD's momentum, >= 0 (0: none).
        nesterov: Nesterov momentum (needs momentum > 0).
        weight_decay: torch SGD's coupled L2 decay, >= 0.

    References:
        Foret et al., arXiv:2010.01412; Kwon et al., arXiv:2102.11600.
        Checked against a NumPy transliteration of davda54/sam's ``SAM`` over SGD
        (tests/references/sam.py) in tests/optimizers/test_sam.py.
    """
    _checks.finite("sam_sgd", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("sam_sgd", rho=rho, momentum=momentum)
    _checks.non_negative("sam_sgd", allow_schedule=True, weight_decay=weight_decay)
    if nesterov and not momentum:
        raise ValueError(f"sam_sgd: nesterov=True requires momentum > 0, got momentum={momentum}")
    return chain(
        scale_by_sam(rho, adaptive),
        add_decayed_weights(weight_decay),
        momentum_buffer(momentum, nesterov=nesterov) if momentum else identity(),
        scale_by_learning_rate(learning_rate),
    )
