"""The contract: a gradient transformation is a pure ``(init, update)`` pair.

``init(params) -> state`` and ``update(updates, state, params=None, **extra_args) ->
(updates, state)``. Both are pure functions; the transformation object holds no
arrays, so Flax can store it as static data. Every ``update`` accepts and ignores
keyword arguments it does not use, and combinators forward them to every member.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optix.schedules._common import Schedule
from optix.tree.leafwise import compute_dtype
from optix.tree.structure import check_same_structure

ArrayTree = jax.typing.ArrayLike | Iterable["ArrayTree"] | Mapping[Any, "ArrayTree"]
"""An array, or lists, tuples and mappings nesting arrays."""
PyTree = Any
"""Any pytree: JAX containers and registered nodes, with any leaves."""
Params = ArrayTree
"""The parameters being optimized: a pytree of arrays."""
Updates = Params
"""Gradients coming in, updates going out: a pytree with the params' structure."""
OptState = ArrayTree
"""The state of a transformation: a pytree of arrays, usually NamedTuples."""
ScalarOrSchedule = float | jax.Array | Schedule
"""A hyperparameter given as a number or as a ``Schedule`` of the step count."""
MaskOrFn = Any | Callable[[Params], Any] | None
"""A mask: a tree of bools with the params' structure (or a prefix of it), or a function
of the params that returns one.
"""


class TransformInitFn(Protocol):
    """``init(params) -> state``."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """``update(updates, state, params=None, **extra_args) -> (updates, state)``."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


TransformUpdateExtraArgsFn = TransformUpdateFn
"""Optax's name for ``TransformUpdateFn``: every optix ``update`` takes extra arguments."""

if TYPE_CHECKING:
    # Type checkers see Optax's class as the base, so an optix transformation passes where
    # code annotates optax.GradientTransformation (Flax's nnx.Optimizer). At run time the
    # class is a plain NamedTuple and optix never imports optax; without optax installed,
    # type checkers see an unknown (Any) base.
    from optax import GradientTransformationExtraArgs as _NamedPair
else:
    _NamedPair = NamedTuple


class GradientTransformation(_NamedPair):
    """A pure pair of functions ``(init, update)``.

    ``update`` always accepts extra keyword arguments, so there is a single type;
    ``GradientTransformationExtraArgs`` is the same class under Optax's second name.
    """

    init: TransformInitFn
    update: TransformUpdateFn


GradientTransformationExtraArgs = GradientTransformation
"""Optax's second name for ``GradientTransformation``: the same class."""


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    """``init`` of a stateless transformation."""
    del params
    return EmptyState()


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the largest value of its dtype (integer or float);
    a ValueError for a dtype that does not count (bool, complex)."""
    count = jnp.asarray(count)
    one = jnp.ones([], count.dtype)
    if jnp.issubdtype(count.dtype, jnp.floating):
        return count + one  # rounds back to the largest float at the top
    if not jnp.issubdtype(count.dtype, jnp.integer):
        dtype = count.dtype
        raise ValueError(f"safe_increment: count must have an integer or floating dtype, {dtype=}")
    limit = jnp.asarray(jnp.iinfo(count.dtype).max, count.dtype)  # uint32's exceeds int32's
    return jnp.where(count < limit, count + one, limit)


safe_int32_increment = safe_increment
"""Optax's name for ``safe_increment``."""


# ``count`` state fields shadow tuple.count (python/mypy#3950): they carry type: ignore.
def zero_count() -> jax.Array:
    """A fresh step counter: an int32 scalar zero."""
    return jnp.zeros([], jnp.int32)


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformation:
    """Make ``tx.update`` ignore keyword arguments it does not declare.

    Transformations built by optix already do; this adapts foreign ones. An Optax
    transformation whose ``update`` takes ``**extra_args`` receives every extra argument,
    one that names them (``update(updates, state, params, *, value)``) receives those,
    and a plain one (``update(updates, state, params=None)``) none, as in ``optax.chain``.
    """
    declared = _declared_extra_args(tx.update)
    if declared is None:
        # Any object with init/update qualifies (MultiSteps is a class, as in Optax).
        return (
            tx
            if isinstance(tx, GradientTransformation)
            else GradientTransformation(tx.init, tx.update)
        )

    def update(updates, state, params=None, **extra_args):
        passed = {name: value for name, value in extra_args.items() if name in declared}
        return tx.update(updates, state, params, **passed)

    return GradientTransformation(tx.init, update)


def _declared_extra_args(fn: Callable) -> frozenset[str] | None:
    """Names of the extra keyword arguments ``fn`` declares after updates, state and
    params; ``None`` when it takes any (``**extra_args``, or a signature unknown)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(
        p.name
        for i, p in enumerate(parameters)
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        or (i >= 3 and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def identity() -> GradientTransformation:
    """Pass updates through unchanged."""

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return GradientTransformation(init_empty_state, update)


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros (freezes the parameters it is applied to)."""

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update)


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformation:
    """A stateless transformation from ``f(updates, params) -> updates``."""

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return f(updates, params), state

    return GradientTransformation(init_empty_state, update)


def stateless_with_tree_map(
    f: Callable[[jax.Array, jax.Array | None], jax.Array],
) -> GradientTransformation:
    """A stateless transformation applying ``f(update, param)`` to every leaf."""

    def apply(updates, params):
        if params is None:
            return jax.tree.map(lambda u: f(u, None), updates)
        return jax.tree.map(f, updates, params)

    return stateless(apply)


def chain(*args: GradientTransformation) -> GradientTransformation:
    """Apply transformations in sequence; the state is the tuple of their states.

    Extra keyword arguments given to ``update`` reach every member.
    """
    transforms = tuple(with_extra_args_support(tx) for tx in args)

    def init(params):
        return tuple(tx.init(params) for tx in transforms)

    def update(updates, state, params=None, **extra_args):
        _check_state_length("chain", state, len(transforms))
        new_state = []
        for tx, s in zip(transforms, state, strict=True):
            updates, s = tx.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def named_chain(*args: tuple[str, GradientTransformation]) -> GradientTransformation:
    """Like ``chain``, with the state a dict keyed by the given names."""
    names = [name for name, _ in args]
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: names must be unique, got names={names!r}")
    transforms = {name: with_extra_args_support(tx) for name, tx in args}

    def init(params):
        return {name: tx.init(params) for name, tx in transforms.items()}

    def update(updates, state, params=None, **extra_args):
        if set(state) != set(transforms):
            raise ValueError(
                f"named_chain: the state has entries {sorted(state)} but the chain has "
                f"{sorted(transforms)}; was the state made by a different chain?"
            )
        new_state = {}
        for name, tx in transforms.items():
            updates, new_state[name] = tx.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return GradientTransformation(init, update)


def _check_state_length(fn: str, state: Any, expected: int) -> None:
    if not isinstance(state, tuple) or len(state) != expected:
        got = f"{len(state)} entries" if isinstance(state, tuple) else type(state).__name__
        raise ValueError(
            f"{fn}: the state does not belong to this transformation: expected a tuple of "
            f"{expected} member states, got {got}. Build the state with this "
            "transformation's init."
        )


def _is_none(x: Any) -> bool:
    return x is None


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates``, each leaf cast back to its parameter's dtype.

    ``None`` leaves of ``params`` stay ``None``.
    """
    check_same_structure("apply_updates", params=params, updates=updates)

    def add(p, u):
        if p is None:
            return None
        p, u = jnp.asarray(p), jnp.asarray(u)
        wide = compute_dtype(p, u)
        return (p.astype(wide) + u.astype(wide)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=_is_none)


def incremental_update(
    new_tensors: Params, old_tensors: Params, step_size: jax.typing.ArrayLike
) -> Params:
    """Polyak averaging: ``step_size * new + (1 - step_size) * old`` per leaf."""

    def average(new, old):
        if new is None:
            return None
        return step_size * new + (1.0 - step_size) * old

    return jax.tree.map(average, new_tensors, old_tensors, is_leaf=_is_none)


def periodic_update(
    new_tensors: Params,
    old_tensors: Params,
    steps: jax.typing.ArrayLike,
    update_period: jax.typing.ArrayLike,
) -> Params:
    """Return ``new_tensors`` every ``update_period`` steps, ``old_tensors`` otherwise."""
    return jax.lax.cond(
        jnp.mod(steps, update_period) == 0, lambda: new_tensors, lambda: old_tensors
    )
