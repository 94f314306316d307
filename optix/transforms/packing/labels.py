"""Which values of a traced update are the same elementwise function on every leaf.

``Labeler.run(jaxpr, in_labels)`` walks a jaxpr once and gives every value a label:

- ``G``: the same for every leaf: step counts, schedules, hyperparameters, and
  reductions that span all leaves (a global norm). ``scalar`` says it is constant over
  the elements of an array (a rank-0 value, or one broadcast from it).
- ``E``: an elementwise function of the values of one leaf (``leaf``), combined only
  with scalar ``G`` values.
- ``P``: a reduction over whole leaves (``leaf`` is the set), not yet combined over
  all of them.

``sig`` interns the computation that made a value, without its shapes; two leaves
whose outputs carry the same ``sig`` run the same elementwise function. Anything else
applied to leaf values (reshapes, partial reductions, matrix products, gathers, loops,
random draws shaped like a leaf, a per-leaf norm used before it is combined) raises
``NotElementwise`` with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from jax.extend.core import Literal

_ELEMENTWISE_NAMES = (
    "add sub mul div rem pow integer_pow max min neg sign floor ceil round is_finite exp "
    "exp2 log log1p expm1 tanh logistic sin cos tan asin acos atan atan2 sinh cosh asinh "
    "acosh atanh sqrt rsqrt cbrt abs square erf erfc erf_inv lgamma digamma igamma "
    "igammac polygamma zeta bessel_i0e bessel_i1e nextafter real imag conj complex eq ne "
    "lt le gt ge and or not xor shift_left shift_right_logical shift_right_arithmetic "
    "population_count clz select_n clamp convert_element_type reduce_precision copy "
    "copy_p"
)
ELEMENTWISE = frozenset(_ELEMENTWISE_NAMES.split())
# Ops that leave values as they are when the shape does not change.
SAME_SHAPE = frozenset(["reshape", "squeeze", "expand_dims", "broadcast_in_dim", "device_put"])
REDUCTIONS = {
    "reduce_sum": "add",
    "reduce_max": "max",
    "reduce_min": "min",
    "reduce_and": "and",
    "reduce_or": "or",
}
IDENTITY = {"add": 0, "max": -np.inf, "min": np.inf, "and": True, "or": False}
CALLS = ("jaxpr", "call_jaxpr", "fun_jaxpr")
SHARDING_KEYS = frozenset({"sharding", "out_sharding"})


class NotElementwise(Exception):
    """The computation is not one elementwise function applied to every leaf."""


@dataclasses.dataclass(frozen=True)
class Label:
    kind: str  # "G", "E" or "P"
    sig: Any  # interned id; for P: (op, cast, frozenset of (group, element sig))
    leaf: Any = None  # E: leaf index; P: frozenset of leaf indices
    scalar: bool = False  # G: constant over the elements of the array


class Labeler:
    """Labels the values of jaxprs over trees whose leaf ``i`` lives in ``groups[i]``."""

    def __init__(self, groups: tuple[str, ...]):
        self.groups = groups
        self.all_leaves = frozenset(range(len(groups)))
        self._ids: dict[Any, int] = {}
        self.reductions = 0  # reductions completed over all leaves

    def over(self, groups: tuple[str, ...]) -> Labeler:
        """A labeler for other leaves sharing this one's signatures, so the two compare."""
        other = Labeler(groups)
        other._ids = self._ids
        return other

    def intern(self, key: Any) -> int:
        return self._ids.setdefault(key, len(self._ids))

    def role(self, key: Any, leaf: int | None = None, scalar: bool = False) -> Label:
        """The label of an input: a leaf's value in a role, or a value shared by all."""
        sig = self.intern(("in", key))
        return Label("G", sig, scalar=scalar) if leaf is None else Label("E", sig, leaf)

    def run(self, closed: Any, in_labels: list[Label]) -> list[Label]:
        """The labels of the outputs of ``closed`` (a ClosedJaxpr or Jaxpr)."""
        jaxpr = getattr(closed, "jaxpr", closed)
        consts = getattr(closed, "consts", [])
        env: dict[Any, Label] = dict(zip(jaxpr.invars, in_labels, strict=True))
        env.update((v, self._const(c)) for v, c in zip(jaxpr.constvars, consts, strict=True))
        for eqn in jaxpr.eqns:
            outs = self._eqn(eqn, [self._read(env, v) for v in eqn.invars])
            env.update(zip(eqn.outvars, outs, strict=True))
        return [self._read(env, v) for v in jaxpr.outvars]

    def _read(self, env: dict, var: Any) -> Label:
        if isinstance(var, Literal):
            aval: Any = var.aval  # a ShapedArray; typed as its abstract base
            return Label("G", self._literal(var.val, aval.dtype), None, True)
        return env[var]

    def _literal(self, value: Any, dtype: Any) -> int:
        return self.intern(("lit", repr(np.asarray(value, dtype).item()), np.dtype(dtype).str))

    def _const(self, value: Any) -> Label:
        value = np.asarray(value)
        flat = value.reshape(-1)
        if 0 < flat.size <= 4096 and (flat == flat[0]).all():
            return Label("G", self._literal(flat[0], value.dtype), None, True)
        return Label("G", self.intern(("const", id(value))), None, value.ndim == 0)

    def _eqn(self, eqn: Any, ins: list[Label]) -> list[Label]:
        name = eqn.primitive.name
        sub = next((eqn.params[k] for k in CALLS if k in eqn.params), None)
        if sub is not None and name not in ("scan", "while"):
            return self.run(sub, ins)
        if all(x.kind == "G" for x in ins):
            return self._shared(eqn, ins)
        if name == "cond":
            return self._cond(eqn, ins)
        if name == "optimization_barrier":
            return ins
        if any(x.kind == "P" for x in ins):
            return [self._partial(eqn, ins)]
        if name in ELEMENTWISE:
            return [self._elementwise(eqn, ins)]
        if name == "dot_general":
            return [self._dot(eqn, ins)]
        x, shape = ins[0], tuple(eqn.invars[0].aval.shape)
        if len(ins) == 1 and name in SAME_SHAPE and eqn.outvars[0].aval.shape == shape:
            return [x]
        if len(ins) == 1 and name in REDUCTIONS and eqn.params["axes"] == tuple(range(len(shape))):
            group = self.groups[x.leaf]
            return [
                self._complete(
                    REDUCTIONS[name], (), frozenset({x.leaf}), frozenset({(group, x.sig)})
                )
            ]
        raise NotElementwise(f"{name} is applied to the values of a leaf")

    def _dot(self, eqn: Any, ins: list[Label]) -> Label:
        """``sum(a * b)`` over a whole leaf (a full contraction) is a reduction like others."""
        a, b = ins
        (ca, cb), batch = eqn.params["dimension_numbers"]
        full = tuple(range(len(eqn.invars[0].aval.shape)))
        if a.kind != "E" or b.kind != "E" or a.leaf != b.leaf or batch != ((), ()):
            raise NotElementwise("a matrix product involves the values of a leaf")
        if tuple(ca) != full or tuple(cb) != full:
            raise NotElementwise("a matrix product involves the values of a leaf")
        sig = self.intern((self._key(eqn, False), a.sig, b.sig))
        return self._complete(
            "add", (), frozenset({a.leaf}), frozenset({(self.groups[a.leaf], sig)})
        )

    def _key(self, eqn: Any, keep_shapes: bool) -> tuple:
        items = []
        for k, v in sorted(eqn.params.items()):
            if k in SHARDING_KEYS or (not keep_shapes and k in ("shape", "broadcast_dimensions")):
                continue
            try:
                hash(v)
            except TypeError:
                v = str(v)
            items.append((k, v))
        return (eqn.primitive.name, tuple(items))

    def _shared(self, eqn: Any, ins: list[Label]) -> list[Label]:
        """Outputs of an op on values shared by all leaves."""
        name = eqn.primitive.name
        scalar_in = all(x.scalar for x in ins)
        if name in IDENTITY and len(ins) == 2:
            # x + 0 is x: a sum started from 0 is the same value on the tree and the buffers.
            identity = self._literal(IDENTITY[name], eqn.outvars[0].aval.dtype)
            others = [(x, v) for x, v in zip(ins, eqn.invars, strict=True) if x.sig != identity]
            if len(others) == 1 and others[0][1].aval.shape == ():
                return [others[0][0]]
        if name in SAME_SHAPE and scalar_in:
            return [Label("G", ins[0].sig, None, True)]
        if name in ELEMENTWISE:
            sig = self.intern((self._key(eqn, False), tuple(x.sig for x in ins)))
            return [Label("G", sig, None, scalar_in)]
        shapes = tuple(tuple(v.aval.shape) for v in eqn.invars)
        base = (self._key(eqn, True), tuple(x.sig for x in ins), shapes)
        return [
            Label("G", self.intern((base, i)), None, len(v.aval.shape) == 0)
            for i, v in enumerate(eqn.outvars)
        ]

    def _elementwise(self, eqn: Any, ins: list[Label]) -> Label:
        out_shape = eqn.outvars[0].aval.shape
        leaves = {x.leaf for x in ins if x.kind == "E"}
        if len(leaves) > 1:
            raise NotElementwise(f"{eqn.primitive.name} combines the values of different leaves")
        for x, var in zip(ins, eqn.invars, strict=True):
            if x.kind == "E" and var.aval.shape != out_shape:
                raise NotElementwise(f"{eqn.primitive.name} broadcasts the values of a leaf")
            if x.kind == "G" and var.aval.shape != () and not x.scalar:
                raise NotElementwise(
                    f"{eqn.primitive.name} combines a leaf with an array that varies over its "
                    "elements (a per-leaf constant, mask or random draw)"
                )
        sig = self.intern((self._key(eqn, False), tuple(x.sig for x in ins)))
        return Label("E", sig, leaves.pop())

    def _partial(self, eqn: Any, ins: list[Label]) -> Label:
        """A per-leaf reduction may only be cast or combined with other leaves' ones."""
        name = eqn.primitive.name
        parts = [x for x in ins if x.kind == "P"]
        rest = [x for x in ins if x.kind != "P"]
        if name == "convert_element_type" and len(ins) == 1:
            op, cast, groups = parts[0].sig
            new_cast = (*cast, np.dtype(eqn.params["new_dtype"]).str)
            return self._complete(op, new_cast, parts[0].leaf, groups)
        op = parts[0].sig[0]
        identity = self._literal(IDENTITY[op], eqn.outvars[0].aval.dtype)
        if name != op or any(x.sig != identity for x in rest):
            raise NotElementwise(
                "a reduction over one leaf is used before it is combined over all leaves "
                "(a per-leaf norm, as in trust ratios)"
            )
        if len(parts) == 1:
            return parts[0]
        a, b = parts
        if a.sig[:2] != b.sig[:2] or a.leaf & b.leaf:
            raise NotElementwise("per-leaf reductions of different kinds are combined")
        return self._complete(op, a.sig[1], a.leaf | b.leaf, a.sig[2] | b.sig[2])

    def _complete(self, op: str, cast: tuple, leaves: frozenset, groups: frozenset) -> Label:
        if len({g for g, _ in groups}) != len(groups):
            raise NotElementwise("a reduction over all leaves sums different functions of them")
        if leaves != self.all_leaves:
            return Label("P", (op, cast, frozenset(groups)), frozenset(leaves))
        self.reductions += 1
        sig = self.intern(("global", op, cast, tuple(sorted(groups))))
        return Label("G", sig, None, True)

    def _cond(self, eqn: Any, ins: list[Label]) -> list[Label]:
        index, operands = ins[0], ins[1:]
        if index.kind != "G":
            raise NotElementwise("a branch is chosen per leaf")
        per_branch = [self.run(b, operands) for b in eqn.params["branches"]]
        outs = []
        for labels in zip(*per_branch, strict=True):
            if any(x.kind == "P" for x in labels):
                raise NotElementwise("a per-leaf reduction leaves a branch")
            leaves = {x.leaf for x in labels if x.kind == "E"}
            if len(leaves) > 1:
                raise NotElementwise("branches return values of different leaves")
            sig = self.intern(("cond", index.sig, tuple(x.sig for x in labels)))
            if leaves:
                outs.append(Label("E", sig, leaves.pop()))
            else:
                outs.append(Label("G", sig, None, all(x.scalar for x in labels)))
        return outs
