"""Named values of the kernel, by the kind of definition: inputs, rules, outcomes, tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine.plan import (
    Case,
    CaseSet,
    CaseValue,
    Definition,
    Derived,
    Finding,
    InputField,
    Lookup,
    Outcome,
    Output,
    ParameterRef,
    Rule,
    Table,
    TableOutput,
    TableRow,
)
from engine.types import Type
from engine.vector.kernel_values import V, dec_scale, full, rescale, scaled, select, spread, take

if TYPE_CHECKING:
    from engine.vector.kernel import Chunk

__all__ = ["KINDS", "column", "row_ids"]

Array = np.ndarray[Any, Any]
_BOOL = Type("bool")
_INT = Type("int")


def _bits(buffer: Any, offset: int, n: int) -> Array:
    """``n`` bits of an Arrow bitmap from ``offset``, as booleans."""
    packed = np.frombuffer(buffer, dtype=np.uint8)
    out: Array = np.unpackbits(packed, bitorder="little", count=offset + n)[offset:].view(bool)
    return out


def _bits_at(buffer: Any, at: Array) -> Array:
    """The bits of an Arrow bitmap at some positions, as booleans."""
    packed = np.frombuffer(buffer, dtype=np.uint8)
    out: Array = ((packed[at >> 3] >> (at & 7).astype(np.uint8)) & 1).astype(bool)
    return out


def _with_nulls(s: pl.Series, rows: Array | None = None) -> tuple[Array, Array] | None:
    """(values with nulls as 0, valid) of a numeric, boolean or date column read from its
    Arrow buffers (at ``rows`` only, when given): a column of mostly nulls (an object few
    members have) costs no expression; None for any other type."""
    if not (s.dtype.is_integer() or s.dtype.is_float() or s.dtype in (pl.Boolean, pl.Date)):
        return None
    a = s.rechunk().to_arrow()
    if a.buffers()[0] is None:
        return None
    n, off = len(a), a.offset
    valid = _bits(a.buffers()[0], off, n) if rows is None else _bits_at(a.buffers()[0], off + rows)
    if s.dtype == pl.Boolean:
        bits = _bits(a.buffers()[1], off, n) if rows is None else _bits_at(a.buffers()[1], off + rows)
        return bits & valid, valid
    dtype = np.dtype(np.int32) if s.dtype == pl.Date else np.dtype(type(s.dtype).__name__.lower())
    buffer = np.frombuffer(a.buffers()[1], dtype=dtype, count=off + n)[off:]
    data = buffer.copy() if rows is None else buffer[rows]
    data[~valid] = 0
    return data, valid


def column(s: pl.Series, t: Type, rows: Array | None = None) -> V:
    """An input column as a kernel value (without nulls, mostly without a copy), or its
    value at ``rows`` (ascending; a few members' object fields read from the buffers)."""
    nulls = s.null_count()
    if rows is not None:
        read = _with_nulls(s, rows) if nulls else None
        if read is not None:
            return V(read[0], t, 2 if t.kind == "money" else 0, read[1])
        return take(column(s, t), rows)
    if nulls and not (isinstance(s.dtype, pl.Enum | pl.Categorical) or s.dtype == pl.Utf8):
        read = _with_nulls(s)
        if read is not None:
            return V(read[0], t, 2 if t.kind == "money" else 0, read[1])
    valid = s.is_not_null().to_numpy() if nulls else None
    if s.dtype == pl.Utf8 or isinstance(s.dtype, pl.Categorical):
        return V(np.zeros(0, np.int32), t, 0, valid, (), s.cast(pl.Utf8) if s.dtype != pl.Utf8 else s)
    if isinstance(s.dtype, pl.Enum):
        cats = tuple(str(c) for c in s.dtype.categories)
        physical = s.to_physical()
        codes = (physical.cast(pl.Int32).fill_null(-1) if nulls else physical).to_numpy().astype(np.int32)
        return V(codes, t, 0, valid, cats)
    if s.dtype == pl.Date:
        days = s.to_physical().fill_null(0) if nulls else s
        return V(days.to_numpy().view(np.int64) if not nulls else days.to_numpy(), t, 0, valid)
    if nulls:
        s = s.fill_null(False) if s.dtype == pl.Boolean else s.fill_null(0)
    return V(s.to_numpy(), t, 2 if t.kind == "money" else 0, valid)


def _k_input(ch: Chunk, sym: InputField) -> V:
    frame = ch.hh if sym.scope == "household" else ch.mm
    return column(frame.get_column(sym.name), sym.type)


def _k_expr(ch: Chunk, sym: Derived | Output | Finding) -> V:
    return ch.compile(sym.expr, sym.scope)


def _applies(ch: Chunk, sym: Rule | Table) -> Array | None:
    if sym.applies is None:
        return None
    a = ch.compile(sym.applies, sym.scope).filled()
    ch.na[(sym.scope, sym.name)] = ~a
    return a


def _sparse(
    ch: Chunk, sym: Rule | Table, applies: Array | None, work: Callable[[Chunk], V], outside: bool | None
) -> V | None:
    """A member rule or table computed for the members it applies to alone (``Chunk.subset``)
    and spread over the chunk; None where that would not pay."""
    if applies is None or sym.scope != "member":
        return None
    sub = ch.subset(applies)
    if sub is None:
        return None
    return spread(work(sub), sub.rows, ch.nm, outside)


def _k_rule(ch: Chunk, sym: Rule) -> V:
    applies = _applies(ch, sym)
    few = _sparse(ch, sym, applies, lambda sub: sub.compile(sym.expr, sym.scope), False)
    if few is not None:  # not applicable elsewhere: false, never null
        return few
    v = ch.compile(sym.expr, sym.scope)
    if applies is None:
        return v
    valid = None if v.valid is None else v.valid | ~applies
    return V(v.data & applies, v.type, 0, valid)


def _first(ch: Chunk, conds: list[Array], scope: str, other: int | None) -> V:
    """The index of the first true condition, else ``other`` (None: null)."""
    n = ch.n(scope)
    idx = np.full(n, -1 if other is None else other, dtype=np.int32)
    for i in range(len(conds) - 1, -1, -1):
        idx = np.where(conds[i], np.int32(i), idx)
    return V(idx, _INT, 0, (idx >= 0) if other is None else None)


def _k_outcome(ch: Chunk, sym: Outcome) -> V:
    cases = sym.cases
    conds = [ch.compile(c.cond, sym.scope).filled() for c in cases if c.cond is not None]
    return _first(ch, [full(c, ch.n(sym.scope)) for c in conds], sym.scope, len(cases) - 1)


def _k_case(ch: Chunk, sym: Case) -> V:
    return V(ch.value(sym.outcome.name, sym.scope).data == sym.index, _BOOL)


def _k_case_value(ch: Chunk, sym: CaseValue) -> V:
    values = [str(c.value) for c in sym.outcome.cases]
    cats = tuple(dict.fromkeys(values))
    lut = np.array([cats.index(v) for v in values], dtype=np.int32)
    return V(lut[ch.value(sym.outcome.name, sym.scope).data], sym.type, 0, None, cats)


def _k_case_set(ch: Chunk, sym: CaseSet) -> V:
    branches = [ch.compile(c.sets[sym.column], sym.scope) for c in sym.outcome.cases]
    return select(ch.value(sym.outcome.name, sym.scope), branches, ch.n(sym.scope), _typed(sym, branches))


def _typed(sym: Definition, branches: list[V]) -> Type:
    """A column's type: the definition's, or its branches' where every case sets None."""
    return branches[0].type if sym.type.kind == "null" else sym.type


def _contains(ch: Chunk, inp: V, row: TableRow) -> Array:
    iv = row.interval
    assert iv is not None
    bounds = [b for b in (iv.lo, iv.hi) if b is not None]
    scale = max([inp.scale, *(dec_scale(b) for b in bounds)])
    x = rescale(inp, scale)
    cond = np.ones(x.shape, dtype=bool)
    if iv.lo is not None:
        lo = scaled(iv.lo, scale)
        cond &= (x >= lo) if iv.lo_closed else (x > lo)
    if iv.hi is not None:
        hi = scaled(iv.hi, scale)
        cond &= (x <= hi) if iv.hi_closed else (x < hi)
    return cond if inp.valid is None else cond & inp.valid


def _lookup(ch: Chunk, lookup: Lookup, scope: str, other: int | None) -> V:
    """A table over several inputs: each input's position in its domain (or the slot after
    it: null, or any other value), one index into the lookup, one gather."""
    n = ch.n(scope)
    index = np.zeros(n, dtype=np.int64)
    for expr, domain in zip(lookup.inputs, lookup.domains, strict=True):
        v = ch.compile(expr, scope)
        k = len(domain)
        data = full(v.data, n)
        if v.cats:  # an enumeration: its codes to the domain's positions
            to = np.array([domain.index(c) if c in domain else k for c in v.cats] + [k], dtype=np.int64)
            code = to[np.where(data >= 0, data, len(v.cats))]
        elif expr.type.kind == "bool":
            code = data.astype(np.int64)
        else:  # whole numbers: a domain is a run of them
            lo, hi = int(domain[0]), int(domain[-1])
            code = np.where((data >= lo) & (data <= hi), data - lo, k).astype(np.int64)
        if v.valid is not None:
            code = np.where(full(v.valid, n), code, k)
        index = index * (k + 1) + code
    found = np.asarray(lookup.rows, dtype=np.int32)[index]
    if other is not None:
        found = np.where(found < 0, np.int32(other), found)
    return V(found, _INT, 0, (found >= 0) if other is None else None)


def _k_table(ch: Chunk, sym: Table) -> V:
    applies = _applies(ch, sym)
    few = _sparse(ch, sym, applies, lambda sub: _rows(sub, sym, None), None)
    return few if few is not None else _rows(ch, sym, applies)


def _rows(ch: Chunk, sym: Table, applies: Array | None) -> V:
    """The row each household or member hits (null where none, or the table does not apply)."""
    table = sym
    n = ch.n(sym.scope)
    other = len(table.rows) if table.otherwise else None
    if table.lookup is not None:
        idx = _lookup(ch, table.lookup, sym.scope, other)
        if applies is not None:
            idx = V(idx.data, _INT, 0, applies if idx.valid is None else applies & idx.valid)
        return idx
    if table.hit_policy == "unique":
        assert table.input is not None
        inp = ch.compile(table.input, sym.scope)
        conds = [_contains(ch, inp, row) for row in table.rows]
    elif table.hit_policy == "first":
        conds = [full(ch.compile(r.cond, sym.scope).filled(), n) for r in table.rows if r.cond is not None]
    else:
        cells = [ch.compile(r.cells[table.max_by or ""], sym.scope) for r in table.rows]
        scale = max(c.scale for c in cells)
        when = [full(ch.compile(r.cond, sym.scope).filled(), n) for r in table.rows if r.cond is not None]
        if all(c.data.ndim == 0 and c.valid is None for c in cells):
            # constant cells: the rows in order of value (ties: the earlier row) and the
            # first that holds wins, one pass per row
            values = [int(rescale(c, scale)) for c in cells]
            order = sorted(range(len(when)), key=lambda i: (-values[i], i))
            index = np.full(n, -1 if other is None else other, dtype=np.int32)
            for i in reversed(order):
                index = np.where(when[i], np.int32(i), index)
            valid = (index >= 0) if other is None else None
            if applies is not None:
                valid = applies if valid is None else applies & valid
            return V(index, _INT, 0, valid)
        vals = [full(rescale(c, scale), n) for c in cells]
        best = np.full(n, np.iinfo(np.int64).min)
        for w, v in zip(when, vals, strict=True):
            np.maximum(best, np.where(w, v, best), out=best)
        conds = [w & (v == best) for w, v in zip(when, vals, strict=True)]
    idx = _first(ch, [full(c, n) for c in conds], sym.scope, other)
    if applies is not None:
        valid = applies if idx.valid is None else applies & idx.valid
        idx = V(idx.data, _INT, 0, valid)
    return idx


def _k_table_output(ch: Chunk, sym: TableOutput) -> V:
    branches = [ch.compile(r.cells[sym.column], sym.scope) for r in sym.table.all_rows]
    index = ch.value(sym.table.name, sym.scope)
    return select(index, branches, ch.n(sym.scope), _typed(sym, branches))


def _k_parameter(ch: Chunk, sym: ParameterRef) -> V:
    raise KeyError(sym.name)  # parameters are set when the chunk starts


def row_ids(sym: Table) -> tuple[str, ...]:
    return tuple(r.id for r in sym.all_rows)


# how each kind of definition is computed for a chunk
KINDS: dict[type[Definition], Callable[[Chunk, Any], V]] = {
    InputField: _k_input,
    ParameterRef: _k_parameter,
    Derived: _k_expr,
    Output: _k_expr,
    Finding: _k_expr,
    Rule: _k_rule,
    Outcome: _k_outcome,
    Case: _k_case,
    CaseValue: _k_case_value,
    CaseSet: _k_case_set,
    Table: _k_table,
    TableOutput: _k_table_output,
}
