"""Apply a transformation to part of the parameters only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from optix.core import GradientTransformation, MaskOrFn, Params, with_extra_args_support


class MaskedState(NamedTuple):
    """State of ``masked``: the inner state, built on the selected leaves only."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands where ``masked`` hides a leaf: a node with no children, skipped by tree maps."""


def _is_mask_fn(mask: Any) -> bool:
    # A function is a single callable leaf; a callable pytree (an Equinox module, say)
    # has leaves of its own and is used as a mask tree.
    return callable(mask) and jax.tree.leaves(mask) == [mask]


def resolve_mask(fn: str, mask: MaskOrFn, params: Params) -> Any:
    """The boolean mask tree for ``params``, from a mask tree or a function of params."""
    mask_tree = mask(params) if _is_mask_fn(mask) else mask
    try:
        jax.tree.map(lambda m, _: m, mask_tree, params)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{fn}: the mask must have the structure of the params, or be a prefix of it.\n"
            f"  mask: {jax.tree.structure(mask_tree)}\n"
            f"  params: {jax.tree.structure(params)}\n"
            "Build it with jax.tree.map(lambda p: ..., params), or pass a function of "
            "the params."
        ) from error
    return mask_tree


def hide(tree: Any, mask_tree: Any) -> Any:
    """Replace the subtrees of ``tree`` where the mask is False by ``MaskedNode()``."""
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


def masked(
    inner: GradientTransformation,
    mask: MaskOrFn | Callable[[Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformation:
    """Apply ``inner`` where ``mask`` is True; pass the other updates through unchanged.

    Args:
        inner: The transformation to apply to the selected leaves.
        mask: A tree of bools with the params' structure (or a prefix of it), or a
            function ``params -> such a tree``. The mask must be static under jit.
        mask_compatible_extra_args: Also hide the masked-out leaves of extra arguments
            that have the params' structure.

    Returns:
        A GradientTransformation whose state is ``MaskedState(inner_state)``; the inner
        state holds ``MaskedNode()`` in place of the masked-out leaves.
    """
    inner = with_extra_args_support(inner)

    def init(params):
        return MaskedState(
            inner_state=inner.init(hide(params, resolve_mask("masked", mask, params)))
        )

    def update(updates, state, params=None, **extra_args):
        mask_tree = resolve_mask("masked", mask, updates)
        structure = jax.tree.structure(updates)
        if mask_compatible_extra_args:
            extra_args = {
                k: hide(v, mask_tree) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        hidden_params = None if params is None else hide(params, mask_tree)
        new_hidden, inner_state = inner.update(
            hide(updates, mask_tree), state.inner_state, hidden_params, **extra_args
        )
        new_updates = jax.tree.map(
            lambda m, new, old: new if m else old, mask_tree, new_hidden, updates
        )
        return new_updates, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, update)
