"""Jitted training steps whose donated inputs are reused for their outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.sharding import NamedSharding


def _normalized(sharding: Any) -> Any:
    """A sharding in a form where equal layouts compare equal (trailing Nones dropped)."""
    if not isinstance(sharding, NamedSharding):
        return sharding
    entries = list(sharding.spec)
    while entries and entries[-1] is None:
        entries.pop()
    return sharding.mesh, tuple(entries), sharding.memory_kind


def _check_donation(in_shardings: Sequence[Any], out_shardings: Any, donate: Sequence[int]):
    outputs = out_shardings if isinstance(out_shardings, tuple) else (out_shardings,)
    for i in donate:
        if i >= len(outputs):
            raise ValueError(
                f"jit_step: argument {i} is donated but the step has {len(outputs)} outputs; "
                "a donated argument i is reused for output i."
            )
        ins = jax.tree_util.tree_flatten_with_path(in_shardings[i])[0]
        outs = jax.tree_util.tree_flatten_with_path(outputs[i])[0]
        if [p for p, _ in ins] != [p for p, _ in outs]:
            raise ValueError(f"jit_step: argument {i} and output {i} have different structures.")
        for (path, a), (_, b) in zip(ins, outs, strict=True):
            if _normalized(a) != _normalized(b):
                raise ValueError(
                    f"jit_step: argument {i} is donated, but at {jax.tree_util.keystr(path)} "
                    f"it comes in as {a} and goes out as {b}: its buffer cannot be reused. "
                    f"Give output {i} the shardings of argument {i}."
                )


def jit_step(
    step: Callable[..., Any],
    in_shardings: Sequence[Any],
    out_shardings: Any,
    *,
    donate_argnums: Sequence[int] = (0, 1),
    **jit_kwargs: Any,
) -> Callable[..., Any]:
    """``jax.jit(step, in_shardings, out_shardings, donate_argnums)``, checked for donation.

    The convention is ``step(params, state, batch, ...) -> (params, state, ...)``:
    donated argument i is reused for output i, which is only possible when both have
    the same shardings; this is checked here, where XLA would only warn that the
    donated buffers were not usable. Donated arrays are deleted by the call: keep
    using the returned ones.

    Args:
        step: The training step.
        in_shardings: One sharding tree per positional argument.
        out_shardings: One sharding tree per output (a tuple), or one for a single output.
        donate_argnums: The arguments whose buffers the outputs reuse.
        **jit_kwargs: Passed on to ``jax.jit`` (``static_argnums``, ...).

    Returns:
        The jitted step.
    """
    in_shardings = tuple(in_shardings)
    donate_argnums = tuple(donate_argnums)
    _check_donation(in_shardings, out_shardings, donate_argnums)
    return jax.jit(
        step,
        in_shardings=in_shardings,
        out_shardings=out_shardings,
        donate_argnums=donate_argnums,
        **jit_kwargs,
    )
