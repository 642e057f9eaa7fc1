"""One function per IR node: an expression over a chunk's rows, as NumPy arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine import ir
from engine.vector.kernel_values import (
    NUMERIC,
    V,
    both_valid,
    const,
    full,
    recode,
    rescale,
    scaled,
    text_codes,
)

if TYPE_CHECKING:
    from engine.vector.kernel import Chunk

__all__ = ["NODES", "add_months", "date_key", "kleene"]

Array = np.ndarray[Any, Any]


def _ymd_direct(days: Array) -> tuple[Array, Array, Array]:
    d = days.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = month.astype(np.int64) % 12 + 1
    dd = (d - month.astype("datetime64[D]")).astype(np.int64) + 1
    return y, m, dd


def _ymd(days: Array) -> tuple[Array, Array, Array]:
    """Year, month, day; over many rows, looked up in a table of the days in their range
    (a caseload has a few distinct decision dates and a century of birth dates)."""
    if days.size > 4096:
        lo, hi = int(days.min()), int(days.max())
        if hi - lo < days.size:
            y, m, d = _ymd_direct(np.arange(lo, hi + 1))
            at = days - lo
            return y[at], m[at], d[at]
    return _ymd_direct(days)


def date_key(days: Array) -> Array:
    """yyyymmdd as an integer: ``(key(end) - key(start)) // 10000`` is whole years between.
    Over many rows, one lookup in a table of the days in their range."""
    if days.size > 4096:
        lo, hi = int(days.min()), int(days.max())
        if hi - lo < days.size:
            y, m, d = _ymd_direct(np.arange(lo, hi + 1))
            table: Array = y * 10000 + m * 100 + d
            keyed: Array = table[days - lo]
            return keyed
    y, m, d = _ymd_direct(days)
    out: Array = y * 10000 + m * 100 + d
    return out


def add_months(days: Array, months: Array) -> Array:
    """Calendar months later, the day clamped to the month's last (as Polars ``offset_by``)."""
    y, m, d = _ymd(days)
    index = (y - 1970) * 12 + (m - 1) + months
    lo = int(index.min()) if index.size else 0
    hi = int(index.max()) if index.size else 0
    starts = np.arange(lo, hi + 2).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    at = index - lo
    start = starts[at]
    length = starts[at + 1] - start
    out: Array = (start + np.minimum(d, length) - 1).astype(np.int32)
    return out


def kleene(a: V, b: V, op: str) -> tuple[Array, Array | None]:
    """``and``/``or`` with Polars' three-valued logic."""
    if op == "and":
        data = a.data & b.data
        if a.valid is None and b.valid is None:
            return data, None
        av = np.ones((), bool) if a.valid is None else a.valid
        bv = np.ones((), bool) if b.valid is None else b.valid
        return data, (av & bv) | (av & ~a.data) | (bv & ~b.data)
    data = a.data | b.data
    if a.valid is None and b.valid is None:
        return data, None
    av = np.ones((), bool) if a.valid is None else a.valid
    bv = np.ones((), bool) if b.valid is None else b.valid
    return data, (av & bv) | (av & a.data) | (bv & b.data)


def _c_const(ch: Chunk, e: ir.Const, scope: str) -> V:
    return const(e.value, e.type)


def _c_ref(ch: Chunk, e: ir.Ref, scope: str) -> V:
    return ch.ref(e, scope)


def _c_not(ch: Chunk, e: ir.Not, scope: str) -> V:
    a = ch.compile(e.operand, scope)
    return V(~a.data, e.type, 0, a.valid)


def _c_boolop(ch: Chunk, e: ir.BoolOp, scope: str) -> V:
    out = ch.compile(e.operands[0], scope)
    for x in e.operands[1:]:
        if scope == "member":  # computed only where the operands so far leave the answer open
            settled = ~out.data if e.op == "and" else out.data
            open_ = ~settled if out.valid is None else ~settled | ~out.valid
            v = ch.sparse(x, open_, e.op == "or")
        else:
            v = ch.compile(x, scope)
        data, valid = kleene(out, v, e.op)
        out = V(data, e.type, 0, valid)
    return V(out.data, e.type, 0, out.valid)


def _c_binop(ch: Chunk, e: ir.BinOp, scope: str) -> V:
    a, b = ch.compile(e.left, scope), ch.compile(e.right, scope)
    valid = both_valid(a, b)
    if e.op in "+-":
        s = max(a.scale, b.scale)
        x, y = rescale(a, s), rescale(b, s)
        return V(x + y if e.op == "+" else x - y, e.type, s, valid)
    if e.op == "*":
        return V(a.data * b.data, e.type, a.scale + b.scale, valid)
    # division: money / number -> money rounded half up to the fen; otherwise 6 decimals
    target = 2 if e.type.kind == "money" else 6
    shift = target + 1 + b.scale - a.scale
    num = a.data * np.int64(10**shift) if shift >= 0 else a.data
    zero = b.data == 0
    q = num // np.where(zero, 1, b.data)
    if zero.any():
        valid = ~zero if valid is None else valid & ~zero
    half = np.where(q >= 0, (q + 5) // 10, -((-q + 5) // 10))
    return V(half, e.type, target, valid)


def _text_compare(a: V, b: V) -> Array:
    if a.raw is not None or b.raw is not None:
        x: Any = a.raw if a.raw is not None else _side(a)
        y: Any = b.raw if b.raw is not None else _side(b)
        if isinstance(x, str):
            x, y = y, x
        out: Array = (x == y).fill_null(False).to_numpy()
        return out
    if b.data.ndim == 0 and len(b.cats) == 1:
        code = a.cats.index(b.cats[0]) if b.cats[0] in a.cats else -2
        same: Array = a.data == code
        return same
    cats = tuple(dict.fromkeys([*a.cats, *b.cats]))
    equal: Array = recode(a, cats) == recode(b, cats)
    return equal


def _side(v: V) -> Any:
    return v.cats[0] if v.data.ndim == 0 and len(v.cats) == 1 else _as_series(v)


def _as_series(v: V) -> pl.Series:
    codes, cats = text_codes(v)
    slot = np.where(codes < 0, len(cats), codes)  # the slot after the categories is null
    return pl.Series([*cats, None], dtype=pl.Utf8).gather(pl.Series(slot))


def _c_compare(ch: Chunk, e: ir.Compare, scope: str) -> V:
    a, b = ch.compile(e.left, scope), ch.compile(e.right, scope)
    valid = both_valid(a, b)
    op = e.op
    if a.is_text or b.is_text:
        if op not in ("==", "!="):
            raise NotImplementedError(f"text {op}")
        eq = _text_compare(a, b)
        data = eq if op == "==" else ~eq
    else:
        if a.type.kind in NUMERIC and b.type.kind in NUMERIC:
            s = max(a.scale, b.scale)
            x, y = rescale(a, s), rescale(b, s)
        else:
            x, y = a.data, b.data
        data = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}.get(op, np.equal)(x, y)
        if op == "!=":
            data = ~data
    if valid is not None and op in ("==", "!=") and (a.type.nullable or b.type.nullable):
        data = data & valid if op == "==" else data | ~valid
        valid = None
    return V(data, e.type, 0, valid)


def _c_inset(ch: Chunk, e: ir.InSet, scope: str) -> V:
    item = ch.compile(e.item, scope)
    keys: frozenset[Any]
    if e.values is not None:
        keys = e.values
    else:
        keys = ch.registry(e.registry.removeprefix("registry.") if e.registry else "")
    if item.raw is not None:
        out = item.raw.is_in(ch.key_series(keys).implode()).fill_null(False).to_numpy()
    elif item.is_text:
        lut = np.array([c in keys for c in item.cats] + [False], dtype=bool)
        out = lut[item.data]
    else:
        wanted = np.array([scaled(k, item.scale) for k in keys if not isinstance(k, str)], dtype=np.int64)
        out = np.isin(item.data, wanted)
        if item.valid is not None:
            out &= item.valid
    return V(~out if e.negate else out, e.type)


def _c_isnone(ch: Chunk, e: ir.IsNone, scope: str) -> V:
    x = ch.compile(e.operand, scope)
    valid = np.ones((), bool) if x.valid is None else x.valid
    return V(valid.copy() if e.negate else ~valid, e.type)


def _c_ifelse(ch: Chunk, e: ir.IfElse, scope: str) -> V:
    c = ch.compile(e.cond, scope).filled()
    if scope == "member":  # each branch computed only for the members it is chosen for
        t, o = ch.sparse(e.then, c, None), ch.sparse(e.other, ~c, None)
    else:
        t, o = ch.compile(e.then, scope), ch.compile(e.other, scope)
    valid: Array | None = None
    if t.valid is not None or o.valid is not None:
        valid = np.where(c, np.ones((), bool) if t.valid is None else t.valid, True if o.valid is None else o.valid)
    if t.is_text or o.is_text:
        cats = tuple(dict.fromkeys([*text_codes(t)[1], *text_codes(o)[1]]))
        tc = recode(t, cats) if t.is_text else np.int32(-1)
        oc = recode(o, cats) if o.is_text else np.int32(-1)
        return V(np.where(c, tc, oc).astype(np.int32), e.type, 0, valid, cats)
    if e.type.kind in NUMERIC:
        s = max(t.scale if t.type.kind in NUMERIC else 0, o.scale if o.type.kind in NUMERIC else 0)
        te = rescale(t, s) if t.type.kind in NUMERIC else t.data
        oe = rescale(o, s) if o.type.kind in NUMERIC else o.data
        return V(np.where(c, te, oe), e.type, s, valid)
    return V(np.where(c, t.data, o.data), e.type, 0, valid)


def _c_call(ch: Chunk, e: ir.Call, scope: str) -> V:
    args = [ch.compile(a, scope) for a in e.args]
    fn = e.fn
    valid = both_valid(*args)
    if fn in ("min", "max"):
        scale = 0 if e.type.kind == "date" else max(a.scale for a in args)
        datas = [a.data if e.type.kind == "date" else rescale(a, scale) for a in args]
        pick = np.minimum if fn == "min" else np.maximum
        out = datas[0]
        for d in datas[1:]:
            out = pick(out, d)
        return V(out, e.type, scale, valid)
    (a, *rest) = args
    if fn in ("roundup", "rounddown"):
        if a.scale == 0:
            return a
        div = np.int64(10**a.scale)
        whole = -((-a.data) // div) if fn == "roundup" else a.data // div
        return V(whole * div, e.type, a.scale, a.valid)
    if fn == "abs":
        return V(np.abs(a.data), e.type, a.scale, a.valid)
    if fn == "years_between":
        return V((_date_key(ch, e.args[1], scope) - _date_key(ch, e.args[0], scope)) // 10000, e.type, 0, valid)
    if fn == "add_months":
        n = ch.n(scope)
        return V(add_months(full(a.data, n), full(rest[0].data, n)), e.type, 0, valid)
    raise NotImplementedError(fn)  # pragma: no cover - the checker only admits known functions


def _date_key(ch: Chunk, e: ir.Expr, scope: str) -> Array:
    """yyyymmdd of a date; a household date read per member is keyed per household, then
    gathered (a decision date is looked up once per household, not once per member)."""
    if scope == "member" and ch.plan.household_only(e):
        v = ch.compile(e, "household")
        return ch.gather(V(date_key(full(v.data, ch.nh)), v.type)).data
    v = ch.compile(e, scope)
    return date_key(full(v.data, ch.n(scope)))


def _c_filter(ch: Chunk, e: ir.Filter, scope: str) -> V:
    src = ch.compile(e.source, "member")
    if e.cond is None:
        return src
    return V(src.filled() & ch.compile(e.cond, "member").filled(), e.type)


def _c_agg(ch: Chunk, e: ir.Agg, scope: str) -> V:
    return ch.agg(e)


NODES: dict[type, Callable[[Chunk, Any, str], V]] = {
    ir.Const: _c_const,
    ir.Ref: _c_ref,
    ir.Not: _c_not,
    ir.BoolOp: _c_boolop,
    ir.BinOp: _c_binop,
    ir.Compare: _c_compare,
    ir.InSet: _c_inset,
    ir.IsNone: _c_isnone,
    ir.IfElse: _c_ifelse,
    ir.Call: _c_call,
    ir.Filter: _c_filter,
    ir.Agg: _c_agg,
}
