"""Decision columns for a chunk: the RECORDS.md fields, `findings` and `reasons`, and the
households that could not be decided (a value they need is missing).

Each slice of households is decided by the kernel on its own thread. Statuses are codes,
reasons and findings are bit words (one bit per reported rule or table row, member rules
OR-reduced over each household's explained members in one pass); every text column is
made once per distinct value and gathered (a caseload has a few thousand distinct
reason lists and amounts), never per row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.evaluator import Evaluator
from engine.plan import Finding, Table, Traced
from engine.vector.kernel import Chunk
from engine.vector.kernel_text import fen_texts, joined_texts, pack
from engine.vector.kernel_values import V, full, recode
from engine.vector.plan import ColumnRun, round_half_up

__all__ = ["decide_frames"]

Array = np.ndarray[Any, Any]
_FEW = 8  # a member reason held by at most 1 in this many members is read where it holds


@dataclass(frozen=True)
class _Token:
    """One reason: a traced definition (or one row of a traced table)."""

    id: str
    sym: Traced
    row: int | None


def _tokens(evaluator: Evaluator) -> list[_Token]:
    """The reasons that can be reported, in the scalar backend's order."""
    out: list[_Token] = []
    for sym in evaluator.traced():
        if not sym.reported_on:
            continue
        if isinstance(sym, Table):
            out.extend(_Token(r.id, sym, i) for i, r in enumerate(sym.all_rows))
        else:
            out.append(_Token(sym.name, sym, None))
    return out


def _reported(sym: Traced, v: V, na: Array | None, n: int) -> Array:
    """Where the definition has an outcome (``engine.plan.OUTCOMES``) for which it is a
    reason (``Traced.reported_on``, the scalar backend's rule)."""
    if isinstance(sym, Table):  # it holds where a row is chosen
        done = np.ones(n, dtype=bool) if v.valid is None else full(v.valid, n)
    else:
        done = full(v.filled(), n)
    yes, no = sym.outcomes
    want = sym.reported_on
    applicable = None if na is None else ~full(na, n)
    parts = []
    if yes in want:
        parts.append(done if applicable is None else done & applicable)
    if no in want:
        parts.append(~done if applicable is None else ~done & applicable)
    if na is not None and "not_applicable" in want:
        parts.append(full(na, n))
    if not parts:
        return np.zeros(n, dtype=bool)
    return parts[0] if len(parts) == 1 else np.logical_or.reduce(parts)


def _flag(ch: Chunk, tok: _Token) -> Array:
    """Whether a reason is reported, in its own scope."""
    sym = tok.sym
    v = ch.value(sym.name, sym.scope)
    flag = _reported(sym, v, ch.na.get((sym.scope, sym.name)), ch.n(sym.scope))
    if tok.row is not None:
        flag = flag & (v.data == tok.row) if v.valid is None else flag & (v.data == tok.row) & v.valid
    return flag


@dataclass
class _Slice:
    fields: dict[str, V]
    findings: Array
    reasons: Array


def _decide_slice(ch: Chunk, fields: list[str], findings: list[Finding], tokens: list[_Token]) -> _Slice:
    out: dict[str, V] = {}
    for f in fields:
        v = ch.value(f, "household")
        data = full(v.data, ch.nh)
        valid = None if v.valid is None else full(v.valid, ch.nh)
        if v.type.kind == "money":
            data = round_half_up(data, v.scale, 2)
        out[f] = V(data, v.type, 2 if v.type.kind == "money" else v.scale, valid, v.cats, v.raw)
    finding_flags = [full(ch.value(s.name, "household").filled(), ch.nh) for s in findings]
    explain = ch.value(ch.rs.explain_members, "household").filled()
    house = [_flag(ch, t) for t in tokens if t.sym.scope == "household"]
    member = _member_reasons(ch, [t for t in tokens if t.sym.scope != "household"], explain)
    return _Slice(out, pack(finding_flags, ch.nh), pack(house + member, ch.nh))


def _member_reasons(ch: Chunk, tokens: list[_Token], explain: Array) -> list[Array]:
    """Per household, whether an explained member has each member reason. A definition
    reported for few members (a program about some of them) is read at those members
    alone, a table's rows all at once; the others are OR-reduced together, one bit each."""
    out: list[Array | None] = [None] * len(tokens)
    dense: list[tuple[int, Array]] = []
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        groups.setdefault(t.sym.name, []).append(i)
    for at in groups.values():
        sym = tokens[at[0]].sym
        v = ch.value(sym.name, sym.scope)
        base = explain & _reported(sym, v, ch.na.get((sym.scope, sym.name)), ch.nm)
        rows = isinstance(sym, Table)
        if rows and v.valid is not None:
            base &= full(v.valid, ch.nm)
        chosen = full(v.data, ch.nm)
        where = np.flatnonzero(base)
        if where.size * _FEW > ch.nm:  # many members: bits OR-reduced with the others
            dense += [(i, base & (chosen == tokens[i].row) if rows else base) for i in at]
            continue
        households, picked = ch.hm[where], chosen[where]
        for i in at:
            flag = np.zeros(ch.nh, dtype=bool)
            flag[households[picked == tokens[i].row] if rows else households] = True
            out[i] = flag
    for (i, _), reduced in zip(dense, ch.reduce_flags([f for _, f in dense]), strict=True):
        out[i] = reduced
    return [f for f in out if f is not None]


def _column(name: str, parts: list[V], kind: str) -> pl.Series:
    """One decision field from its per-slice values."""
    valid: Array | None = None
    if any(p.valid is not None for p in parts):
        valid = np.concatenate(
            [np.ones(len(p.data), bool) if p.valid is None else full(p.valid, len(p.data)) for p in parts]
        )
    if kind == "money":
        s = fen_texts(np.concatenate([p.data for p in parts]), name)
    elif kind in ("enum", "str") or parts[0].is_text:
        cats = tuple(dict.fromkeys(c for p in parts for c in p.cats))
        codes = np.concatenate([recode(p, cats) for p in parts])
        if valid is not None:
            codes = np.where(valid, codes, -1)
        codes = np.where(codes < 0, len(cats), codes)  # the slot after the categories is null
        s = pl.Series(name, [*cats, None], dtype=pl.Utf8).gather(pl.Series(codes))
        valid = None
    elif kind == "date":
        s = pl.Series(name, np.concatenate([p.data for p in parts]).astype(np.int32)).cast(pl.Date)
    elif kind == "bool":
        s = pl.Series(name, np.concatenate([p.data for p in parts]).astype(bool))
    else:
        s = pl.Series(name, np.concatenate([p.data for p in parts]).astype(np.int64))
    if valid is not None and not valid.all():
        s = pl.select(pl.when(pl.lit(pl.Series(valid))).then(pl.lit(s))).to_series()
    return s.alias(name)


def _each(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` threads, the calling one among them: a thread
    handed work and waited for costs a scheduling delay, which on a busy machine adds up."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    results: list[Any] = [None] * len(items)
    todo = iter(range(len(items)))
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            results[i] = fn(items[i])

    with ThreadPoolExecutor(workers - 1) as pool:
        others = [pool.submit(drain) for _ in range(workers - 1)]
        drain()
        for f in others:
            f.result()
    return results


def decide_frames(
    evaluator: Evaluator, run: ColumnRun, *, threads: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(decisions, undecided) for the households of one run."""
    rs = run.rs
    fields = [f.name for f in rs.plan.fields]
    findings = rs.findings()
    tokens = _tokens(evaluator)
    order = [t for t in tokens if t.sym.scope == "household"] + [t for t in tokens if t.sym.scope != "household"]
    spans = run.slices(threads)

    def work(span: tuple[int, int, int, int]) -> _Slice:
        # the slice's values are dropped once its decision columns are out: memory stays
        # that of one slice per thread, and freed buffers are reused while they are warm
        return _decide_slice(run.chunk(*span), fields, findings, tokens)

    kinds = {f.name: f.type.kind for f in rs.plan.fields}
    required = [f.name for f in rs.plan.fields if not f.type.nullable]
    ids = {"findings": [s.code for s in findings], "reasons": [t.id for t in order]}
    slices: list[_Slice] = []

    def column(name: str) -> pl.Series:
        if name in ids:
            return joined_texts(np.concatenate([getattr(s, name) for s in slices]), ids[name], name)
        return _column(name, [s.fields[name] for s in slices], kinds[name])

    def columns_of(names: list[str]) -> list[pl.Series]:
        return [column(n) for n in names]

    names = [*fields, "findings", "reasons"]
    workers = min(run.workers(threads), len(spans))
    slices.extend(_each(work, spans, workers))
    # each text column is made once per distinct value; the columns are built side by side
    built = {
        s.name: s for group in _each(columns_of, [names[i::workers] for i in range(workers)], workers) for s in group
    }
    hh = run.households
    columns: list[pl.Series] = [hh.get_column("household_id"), hh.get_column("decision_date")]
    columns.append(pl.repeat(rs.ruleset_version, hh.height, dtype=pl.Utf8, eager=True).alias("ruleset_version"))
    columns += [built[n] for n in names]
    frame = pl.DataFrame(columns)
    frame = frame.select([c for c in rs.decision_fields if c in frame.columns])
    if not required or not any(frame.get_column(f).null_count() for f in required):
        empty = pl.DataFrame(schema={"household_id": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8})
        return frame, empty
    missing: Any = pl.any_horizontal([pl.col(f).is_null() for f in required])
    first_missing = pl.coalesce([pl.when(pl.col(f).is_null()).then(pl.lit(f)) for f in required])
    undecided = frame.filter(missing).select(
        pl.col("household_id"),
        first_missing.alias("field"),
        pl.format("could not be decided: a value `{}` needs is missing", first_missing).alias("reason"),
    )
    return frame.filter(~missing), undecided
