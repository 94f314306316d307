"""``packed``: run any transformation on one contiguous buffer per dtype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from optix._checks import integer_at_least
from optix.core import GradientTransformation, apply_updates
from optix.transforms.conditional import as_transformation
from optix.transforms.packing.layout import Layout
from optix.transforms.packing.plan import PackingPlan, plan

# Measured side by side with the plain step (AdamW, 300 float32 leaves): on trees, packing
# halves the step at 1K entries per leaf and is 4x slower at 16K, where concatenating
# and splitting cost more than the per-leaf kernels it saves.
TREE_PACKING_MAX_MEAN_LEAF = 4096


def packed(
    inner: GradientTransformation,
    layout: Layout | None = None,
    *,
    extra_args: dict | None = None,
    max_mean_leaf: int | None = TREE_PACKING_MAX_MEAN_LEAF,
) -> GradientTransformation:
    """Run ``inner`` on the leaves of each dtype laid end to end in one buffer.

    With pack(x) the dict of 1-D buffers of ``Layout.of(params)`` (see ``Layout``):

        u_packed, state = inner.update(pack(g), state, pack(params))
        u = unpack(u_packed)

    and the state is ``inner``'s state for the buffers, kept packed from ``init`` on, so
    every elementwise pass over the moments is one loop over one array instead of one
    per leaf. The numbers are those of ``inner`` run leaf by leaf, up to the order in
    which reductions over all leaves (global norms) add their terms. That holds only
    when ``inner`` applies one elementwise function to every leaf of a dtype, so
    ``packed`` proves it first: it traces ``inner`` on the tree and on the buffers and
    compares what each computes (``packing_plan``). Where the proof fails (factored
    moments, per-leaf norms and trust ratios, per-row statistics, masks and per-leaf
    hyperparameters, leaf-shaped random draws, line searches that need an objective)
    ``inner`` runs leaf by leaf, unchanged, with its usual state.

    Two ways to use it:

    - ``packed(inner)``: the params and updates stay trees. Each step concatenates the
      updates and params into buffers and splits the result: the state is packed, but
      the step copies the updates and params once more than ``inner`` alone. That is a
      win only where the leaves are small (many kernels of a few thousand entries), so
      a tree whose leaves hold more than ``max_mean_leaf`` entries on average runs
      leaf by leaf, unchanged.
    - ``packed(inner, layout)``: the params, updates and returned updates are the
      buffers of ``layout`` (keep params as ``layout.pack(params)``, call
      ``layout.unpack`` inside the loss, so the gradient comes packed). The step then
      costs what ``inner`` costs on one leaf, whatever the number of leaves. In the
      fallback, the buffers are unpacked for ``inner`` and its updates packed again;
      extra arguments shaped like the buffers are unpacked and callable ones (an
      objective's ``value_fn``) receive the buffers of the tree they are given.

    The updates must have the params' dtypes. Extra keyword arguments of ``update`` are
    forwarded. ``init`` decides with the proof of ``update`` traced with ``extra_args``,
    so a transformation that cannot run without some (Polyak step sizes need the loss
    ``value``) packs only when examples of them are given here; a call with other extra
    arguments, or without params, is proved again for that call and raises a
    ``ValueError`` if its state is packed but the call cannot run packed.

    Args:
        inner: Any transformation.
        layout: ``None`` to take trees, or the ``Layout`` whose buffers are passed.
        extra_args: Example extra arguments of ``update`` (numbers or arrays, the same
            for every leaf, such as ``{"value": 1.0}``) to trace it with.
        max_mean_leaf: Without ``layout``, pack only trees whose leaves hold at most
            this many entries on average (an integer >= 1); ``None`` packs any tree.

    Returns:
        A GradientTransformation whose state is ``inner``'s state for the buffers (or,
        where ``inner`` cannot be packed, for the tree).

    References:
        Checked against the plain path of every registry optimizer in
        tests/transforms/test_packing.py.
    """
    inner = as_transformation(inner)
    if max_mean_leaf is not None:
        integer_at_least("packed", "max_mean_leaf", max_mean_leaf, 1)
    proofs = _Proofs(inner, extra_args)
    if layout is None:
        return _over_trees(inner, proofs, max_mean_leaf)
    return _over_buffers(inner, proofs, layout)


class _Proofs:
    """The plans of one wrapper, by layout, and the check of each call against them."""

    def __init__(self, inner: GradientTransformation, extra_args: dict | None):
        self.inner, self.extra_args = inner, dict(extra_args or {})
        self.plans: dict[Any, PackingPlan] = {}

    def plan(self, layout: Layout, extra_args: dict | None = None, with_params=True):
        extra_args = self.extra_args if extra_args is None else extra_args
        key = (layout, with_params, tuple(sorted((k, _key(v)) for k, v in extra_args.items())))
        if key not in self.plans:
            self.plans[key] = plan(self.inner, layout, extra_args, with_params)
        return self.plans[key]

    def packs(self, layout: Layout, params_given: bool, extra_args: dict) -> bool:
        """Whether this call runs packed; raises if the state is packed but the call is not."""
        if not self.plan(layout).packable:
            return False
        if params_given and set(extra_args) <= set(self.extra_args):
            return True
        probe = self.extra_args | {k: _abstract(v) for k, v in extra_args.items()}
        check = self.plan(layout, probe, params_given)
        if not check.packable:
            raise ValueError(
                "packed: the state is packed, but this call (with extra arguments "
                f"{sorted(extra_args)}{'' if params_given else ' and params=None'}) cannot "
                f"run packed: {check.reason}. Give packed(..., extra_args=...) examples of "
                "every extra argument, and params when the transformation reads them."
            )
        return True


def _abstract(value: Any) -> Any:
    if isinstance(value, jax.Array | np.ndarray | np.generic):
        return jax.ShapeDtypeStruct(np.shape(value), jnp.result_type(value))
    return value


def _key(value: Any) -> Any:
    if isinstance(value, jax.ShapeDtypeStruct):
        return (value.shape, str(value.dtype))
    if isinstance(value, bool | int | float | complex | str | None):
        return value
    return id(value)


def packing_plan(
    tx: GradientTransformation, params: Any, extra_args: dict | None = None
) -> PackingPlan:
    """Whether ``packed(tx)`` runs ``tx`` on buffers for params like ``params``, and why not.

    ``params`` may hold arrays or ``jax.ShapeDtypeStruct`` leaves; ``extra_args`` as in
    ``packed``.
    """
    return plan(as_transformation(tx), Layout.of(params), extra_args)


def _over_trees(
    inner: GradientTransformation, proofs: _Proofs, max_mean_leaf: int | None
) -> GradientTransformation:
    def small(layout: Layout) -> bool:
        return max_mean_leaf is None or layout.mean_leaf_size <= max_mean_leaf

    def init(params):
        layout = Layout.of(params)
        packs = small(layout) and proofs.plan(layout).packable
        return inner.init(layout.pack(params) if packs else params)

    def update(updates, state, params=None, **extra_args):
        layout = Layout.of(updates if params is None else params)
        if not small(layout) or not proofs.packs(layout, params is not None, extra_args):
            return inner.update(updates, state, params, **extra_args)
        flat_params = None if params is None else layout.pack(params)
        flat, state = inner.update(layout.pack(updates), state, flat_params, **extra_args)
        return layout.unpack(cast(dict[str, jax.Array], flat)), state

    return GradientTransformation(init, update)


def _over_buffers(
    inner: GradientTransformation, proofs: _Proofs, layout: Layout
) -> GradientTransformation:
    buffers = jax.tree.structure(layout.abstract_packed())

    def unpack_arg(value):
        if callable(value):
            return lambda tree, *args, **kwargs: value(layout.pack(tree), *args, **kwargs)
        if jax.tree.structure(value) == buffers:
            return layout.unpack(value)
        return value

    def init(params):
        return inner.init(params if proofs.plan(layout).packable else layout.unpack(params))

    def update(updates, state, params=None, **extra_args):
        if proofs.packs(layout, params is not None, extra_args):
            return inner.update(updates, state, params, **extra_args)
        tree_params = None if params is None else layout.unpack(params)
        extra_args = {k: unpack_arg(v) for k, v in extra_args.items()}
        tree, state = inner.update(layout.unpack(updates), state, tree_params, **extra_args)
        return layout.pack(tree), state

    return GradientTransformation(init, update)


def donating_step(
    tx: GradientTransformation, apply_fn: Callable[[Any, Any], Any] = apply_updates
) -> Callable:
    """``jit(step, donate_argnums=(0, 1))`` with ``step(params, state, grads, **extra_args)``.

    ``step`` runs ``tx.update`` and ``apply_fn`` and returns ``(params, state)``. The
    params and the state are donated, so XLA writes the new ones into their buffers and
    the step needs no memory beyond params, gradients and state (check with
    ``donating_step(tx).lower(...).compile().memory_analysis()``). The arrays passed
    as params and state are invalid after the call: keep only the returned ones. One
    buffer cannot be donated twice, and a fresh ``init`` may put one constant array in
    several places of the state (and a state may hold the params themselves): start
    from ``jax.tree.map(jnp.copy, (params, state))``; every step returns distinct buffers.
    """

    def step(params, state, grads, **extra_args):
        updates, state = tx.update(grads, state, params, **extra_args)
        return apply_fn(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))
