"""The columnar kernel: a ruleset's definitions evaluated over one slice of a caseload.

A chunk is a run of households and their members (sorted by household, so each
household's members are one segment). Each named value is computed once, as NumPy arrays
(see ``kernel_values``); a member -> household aggregation is a segment reduction (sums
by ``np.add.reduceat``, every ``any``/``all`` one bit of a word, the words OR-reduced
together), and a household value read per member is one integer gather. The
aggregations that need no computed household value are found once per ruleset and run
together in one pass at the start of a chunk. A member rule, table or branch that applies
to few members (a program about some of them: an ability assessment, a child's record) is
computed for those members alone (``Chunk.subset``) and spread back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from engine import ir
from engine.parameters import ParameterResolver
from engine.plan import InputField, ParameterRef, RegistryRef, Table, expressions
from engine.ruleset import Ruleset
from engine.types import Type
from engine.vector.kernel_defs import KINDS, column, row_ids
from engine.vector.kernel_nodes import NODES
from engine.vector.kernel_text import pack_bits
from engine.vector.kernel_values import NUMERIC, V, dec_scale, epoch_days, full, scaled, spread, take

__all__ = ["Chunk", "KernelPlan", "Subset", "walk"]

Array = np.ndarray[Any, Any]
_BOOL = Type("bool")
_INT = Type("int")
_EPOCH = dt.date(1970, 1, 1)
# a member rule or table applying to at most this share of a chunk's members is computed
# on them alone (``Chunk.subset``): gathering their rows costs little beside every row
SPARSE_SHARE = 0.5


def walk(e: Any) -> Any:
    """Every node of an expression tree."""
    if isinstance(e, ir.Expr):
        yield e
        for v in vars(e).values():
            if isinstance(v, ir.Expr):
                yield from walk(v)
            elif isinstance(v, tuple):
                for x in v:
                    yield from walk(x)


def _per_member(ref: ir.Ref) -> bool:
    return ref.scope == "member" or ref.type.kind == "members"


class KernelPlan:
    """What a ruleset compiles to once: the aggregations to batch, parameter scales."""

    def __init__(self, ruleset: Ruleset, resolver: ParameterResolver) -> None:
        self.rs = ruleset
        self.resolver = resolver
        self._member_ready: dict[str, bool] = {}
        self._household_only: dict[int, bool] = {}
        aggs: dict[ir.Agg, None] = {}
        for sym in ruleset.symbols.values():
            if sym.scope != "household":
                continue
            for root in expressions(sym):
                for node in walk(root):
                    if isinstance(node, ir.Agg) and self._ready(node, "member"):
                        aggs[node] = None
        self.batched = list(aggs)
        self.resolved: dict[tuple[str, int], dict[str, Any]] = {}

    def _ready(self, e: ir.Expr, scope: str) -> bool:
        """Whether a member expression reads only inputs, parameters and member values."""
        for node in walk(e):
            if not isinstance(node, ir.Ref):
                continue
            sym = self.rs.symbols[(node.scope, node.name)]
            if isinstance(sym, InputField | ParameterRef | RegistryRef):
                continue
            if node.scope == "household" and node.type.kind != "members":
                return False
            key = f"{node.scope}:{node.name}"
            if key not in self._member_ready:
                self._member_ready[key] = True  # definitions are acyclic; this only guards recursion
                exprs = expressions(sym)  # a case or table column: with its table's or outcome's
                self._member_ready[key] = all(self._ready(x, "member") for x in exprs)
            if not self._member_ready[key]:
                return False
        return True

    def costly(self, e: ir.Expr) -> bool:
        """Whether computing ``e`` per member is worth taking a few members' rows first: it
        computes something, or reads a computed value (a bare input or constant is not)."""
        if isinstance(e, ir.Const):
            return False
        return not isinstance(e, ir.Ref) or not isinstance(
            self.rs.symbols[(e.scope, e.name)], InputField | ParameterRef
        )

    def household_only(self, e: ir.Expr) -> bool:
        """Whether an expression reads no member value (so it can be computed per household)."""
        found = self._household_only.get(id(e))
        if found is None:
            found = self._household_only[id(e)] = all(
                not isinstance(n, ir.Filter) and not (isinstance(n, ir.Ref) and _per_member(n)) for n in walk(e)
            )
        return found

    def values(self, region: str, on: int) -> dict[str, Any]:
        key = (region, on)
        if key not in self.resolved:
            self.resolved[key] = self.resolver.resolve(region, _EPOCH + dt.timedelta(days=on))[0]
        return self.resolved[key]


class Chunk:
    """One slice of households and their members, evaluated lazily, each value once."""

    def __init__(
        self,
        plan: KernelPlan,
        households: pl.DataFrame,
        members: pl.DataFrame,
        h_of_member: Array,
        registries: dict[str, frozenset[str]],
        keys: dict[int, pl.Series],
    ) -> None:
        self.plan = plan
        self.rs = plan.rs
        self.hh, self.mm = households, members
        self.nh, self.nm = households.height, members.height
        self.hm = h_of_member
        counts = np.bincount(h_of_member, minlength=self.nh)
        self.counts = counts
        self.starts = np.cumsum(counts) - counts
        self.nonempty = None if counts.all() else counts > 0
        self.registries = registries
        self._keys = keys
        self.values: dict[tuple[str, str], V] = {}
        self.na: dict[tuple[str, str], Array] = {}
        self._gathered: dict[str | int, V] = {}
        self._subsets: dict[bytes, Subset | None] = {}
        self._aggs: dict[ir.Agg, V] = {}
        self._parameters()
        self._batch(plan.batched)

    def n(self, scope: str) -> int:
        return self.nh if scope == "household" else self.nm

    def registry(self, name: str) -> frozenset[str]:
        return self.registries.get(name, frozenset())

    def key_series(self, keys: frozenset[Any]) -> pl.Series:
        s = self._keys.get(id(keys))
        if s is None:
            s = self._keys[id(keys)] = pl.Series(sorted(keys), dtype=pl.Utf8)
        return s

    def compile(self, e: ir.Expr, scope: str) -> V:
        if scope == "member" and not isinstance(e, ir.Ref | ir.Const) and self.plan.household_only(e):
            # read per member but made of household values: computed per household, gathered once
            g = self._gathered.get(id(e))
            if g is None:
                g = self._gathered[id(e)] = self.gather(NODES[type(e)](self, e, "household"))
            return g
        return NODES[type(e)](self, e, scope)

    def gather(self, v: V) -> V:
        """A household value per member: one gather by the member's household."""
        data = v.data[self.hm] if v.raw is None and v.data.ndim else v.data
        valid = v.valid[self.hm] if v.valid is not None and v.valid.ndim else v.valid
        raw = v.raw.gather(pl.Series(self.hm)) if v.raw is not None else None
        return V(data, v.type, v.scale, valid, v.cats, raw)

    # ------------------------------------------------------------ named values

    def value(self, name: str, scope: str) -> V:
        key = (scope, name)
        v = self.values.get(key)
        if v is None:
            sym = self.rs.symbols[key]
            v = self.values[key] = KINDS[type(sym)](self, sym)
        return v

    def ref(self, e: ir.Ref, scope: str) -> V:
        sym = self.rs.symbols[(e.scope, e.name)]
        if isinstance(sym, RegistryRef):
            raise TypeError("registries are only used with `in`")
        if isinstance(sym, Table) and e.scope == scope:
            row = self.value(e.name, scope)
            return V(row.data.astype(np.int32), e.type, 0, row.valid, row_ids(sym))
        if e.type.kind == "members":
            if isinstance(sym, InputField):  # `members` itself: every member
                return V(np.ones(self.nm, dtype=bool), e.type)
            return self.value(e.name, "household")
        if e.scope == scope:
            return self.value(e.name, scope)
        g = self._gathered.get(e.name)
        if g is None:
            g = self._gathered[e.name] = self.gather(self.value(e.name, "household"))
        return g

    def _parameters(self) -> None:
        rs = self.rs
        days = self.hh.get_column("decision_date").to_numpy().view(np.int64)
        regions = self.hh.get_column("region")
        # one region is the common case: a comparison tells, without hashing every row
        names = [regions[0]] if self.nh else []
        rcode = np.zeros(self.nh, np.int64)
        if self.nh and not (regions == names[0]).all():
            names = regions.unique().sort().to_list()
            rcode = regions.replace_strict(names, list(range(len(names))), return_dtype=pl.Int64).to_numpy()
        lo = int(days.min()) if self.nh else 0
        span = (int(days.max()) - lo + 1) if self.nh else 1
        key = rcode * span + (days.astype(np.int64) - lo)
        present = np.zeros(len(names) * span if names else 1, dtype=bool)
        present[key] = True
        distinct = np.flatnonzero(present)
        where = np.zeros(len(present), dtype=np.int64)
        where[distinct] = np.arange(len(distinct))
        pair = where[key]
        resolved = [self.plan.values(str(names[k // span]), lo + int(k % span)) for k in distinct]

        def per_household(table: Array) -> Array:
            # one region and date (the usual chunk): the parameter is a constant that broadcasts
            out: Array = table[0] if len(resolved) == 1 else table[pair]
            return out

        for name in rs.parameter_order:
            t = rs.parameters[name].type
            vals = [r[name] for r in resolved]
            if t.kind in NUMERIC:
                scale = max([2 if t.kind == "money" else 0, *(dec_scale(v) for v in vals)])
                table = np.array([scaled(v, scale) for v in vals], dtype=np.int64)
                self.values[("household", name)] = V(per_household(table), t, scale)
            elif t.kind == "date":
                table = np.array([epoch_days(v) for v in vals], dtype=np.int32)
                self.values[("household", name)] = V(per_household(table), t)
            elif t.kind == "bool":
                self.values[("household", name)] = V(per_household(np.array(vals, dtype=bool)), t)
            else:
                cats = tuple(dict.fromkeys(str(v) for v in vals))
                table = np.array([cats.index(str(v)) for v in vals], dtype=np.int32)
                self.values[("household", name)] = V(per_household(table), t, 0, None, cats)

    # ------------------------------------------------------------ aggregations

    def _reduce(self, ufunc: Any, arr: Array, identity: Any) -> Array:
        """A segment reduction of the last axis, one result per household."""
        shape = (*arr.shape[:-1], self.nh)
        if self.nm == 0:
            return np.full(shape, identity, dtype=arr.dtype)
        if self.nonempty is None:
            out: Array = ufunc.reduceat(arr, self.starts, axis=-1)
            return out
        out = np.full(shape, identity, dtype=arr.dtype)
        out[..., self.nonempty] = ufunc.reduceat(arr, self.starts[self.nonempty], axis=-1)
        return out

    def _sum(self, values: Array) -> Array:
        """Segment sums by one running sum (faster than ``reduceat`` here; empty households
        come out 0)."""
        if self.nm == 0:
            return np.zeros(self.nh, dtype=np.int64)
        run = np.cumsum(values, dtype=np.int32 if values.dtype == bool else np.int64)
        hi = run[self.starts + self.counts - 1]
        lo = run[self.starts - 1]
        if self.nonempty is not None:
            hi[~self.nonempty] = 0
        lo[self.starts == 0] = 0
        out: Array = (hi - lo).astype(np.int64)
        return out

    def _member_value(self, e: ir.Agg) -> tuple[str, Array, int, Array | None]:
        """The per-member value to reduce, how, its scale, and members whose value is null."""
        mask = self.compile(e.source, "member").filled()
        if e.cond is not None:
            mask = mask & self.compile(e.cond, "member").filled()
        if e.fn == "count":
            return "sum", mask, 0, None
        assert e.elt is not None
        elt = self.compile(e.elt, "member")
        if e.fn == "sum":
            bad = None if elt.valid is None else mask & ~elt.valid
            return "sum", np.where(mask, full(elt.data, self.nm), 0).astype(np.int64), elt.scale, bad
        if e.fn == "any":
            return "any", mask & elt.filled(), 0, None
        return "all", mask & ~elt.filled(), 0, None  # all(x) = not any(not x)

    def _batch(self, aggs: list[ir.Agg]) -> None:
        parts = [(a, *self._member_value(a)) for a in aggs if a not in self._aggs]
        sums = [p for p in parts if p[1] == "sum"]
        flags = [p for p in parts if p[1] != "sum"] + [(p[0], "null", p[4], 0, None) for p in sums if p[4] is not None]
        for p in sums:
            self._aggs[p[0]] = V(self._sum(p[2]), p[0].type, p[3])
        bits = self.reduce_flags([p[2] for p in flags])
        for i, p in enumerate(flags):
            if p[1] == "null":
                self._aggs[p[0]].valid = ~bits[i]
            else:
                self._aggs[p[0]] = V(bits[i] if p[1] == "any" else ~bits[i], p[0].type)

    def reduce_flags(self, flags: list[Array]) -> list[Array]:
        """Per-member flags -> per household "any member": the flags are bits of one word per
        member (as narrow as they allow), OR-reduced in one pass."""
        out: list[Array] = []
        for w in range(0, len(flags), 64):
            group = flags[w : w + 64]
            reduced = self._reduce(np.bitwise_or, pack_bits(group, self.nm), 0)
            out.extend((reduced & reduced.dtype.type(1 << i)) != 0 for i in range(len(group)))
        return out

    def agg(self, e: ir.Agg) -> V:
        if e not in self._aggs:
            self._batch([e])
        return self._aggs[e]

    def subset(self, applies: Array) -> Subset | None:
        """The members ``applies`` selects, as a chunk of their own (one per distinct
        selection, so the values read for it are read once); None where that would not pay
        (most members selected) or this is a subset already."""
        if self.nm == 0:
            return None
        mask = full(applies, self.nm)
        key = np.packbits(mask).tobytes()
        if key not in self._subsets:
            rows = np.flatnonzero(mask)
            self._subsets[key] = Subset(self, rows) if rows.size <= SPARSE_SHARE * self.nm else None
        return self._subsets[key]

    def sparse(self, e: ir.Expr, where: Array, outside: bool | None) -> V:
        """``e`` per member where ``where`` holds (computed for those members alone when
        they are few and ``e`` is worth it), ``outside`` elsewhere (None: null)."""
        sub = self.subset(where) if self.plan.costly(e) else None
        if sub is None:
            return self.compile(e, "member")
        v = sub.compile(e, "member")
        if v.raw is not None:  # raw text (IDs) is not spread: the whole column
            return self.compile(e, "member")
        return spread(v, sub.rows, self.nm, outside)


class Subset(Chunk):
    """Some members of a chunk (a program about a few of them: an ability assessment, a
    child's record), for the rules and tables that apply to them alone. Household values
    and member -> household aggregations are the chunk's; a member value is the chunk's
    at these rows, or computed for these rows only. Every kernel node is row-wise, so the
    values are those of the whole chunk at these rows."""

    def __init__(self, parent: Chunk, rows: Array) -> None:  # not Chunk's: nothing to batch
        self.parent, self.rows = parent, rows
        self.plan, self.rs = parent.plan, parent.rs
        self.hh, self.mm = parent.hh, parent.mm
        self.nh, self.nm = parent.nh, int(rows.size)
        self.hm = parent.hm[rows]
        self.counts, self.starts, self.nonempty = parent.counts, parent.starts, parent.nonempty
        self.registries, self._keys = parent.registries, parent._keys
        self.values, self.na, self._gathered, self._subsets = {}, {}, {}, {}
        self._aggs = parent._aggs

    def subset(self, applies: Array) -> Subset | None:
        return None  # a subset of a subset would not pay: its members are those selected already

    def value(self, name: str, scope: str) -> V:
        if scope == "household":
            return self.parent.value(name, scope)
        key = (scope, name)
        v = self.values.get(key)
        if v is None:
            known = self.parent.values.get(key)
            sym = self.rs.symbols[key]
            if known is not None:
                v = take(known, self.rows)
            elif isinstance(sym, InputField):  # these rows of the column only, from its buffers
                v = column(self.mm.get_column(name), sym.type, self.rows)
            else:
                v = KINDS[type(sym)](self, sym)
            self.values[key] = v
        return v

    def compile(self, e: ir.Expr, scope: str) -> V:
        if scope == "household":
            return self.parent.compile(e, scope)
        return super().compile(e, scope)

    def agg(self, e: ir.Agg) -> V:
        return self.parent.agg(e)
