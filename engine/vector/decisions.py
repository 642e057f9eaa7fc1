"""Decision columns for a chunk: the RECORDS.md fields, `findings` and `reasons`, and the
households that could not be decided (a value they need is missing).

`reasons` and `findings` are texts joined with `;`. Building a text per household would
dominate the run, so each reported rule (or table row) is one bit; the bits are packed
into int64 words, the texts are built once per distinct combination (a caseload has a
few thousand) and joined back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.evaluator import Evaluator
from engine.loader import BUILTIN_FIELDS
from engine.ruleset import Symbol
from engine.vector.plan import ColumnRun, fen_to_text, round_half_up

__all__ = ["decide_frames"]

_BITS = 62


def _reported(sym: Symbol, cols: set[str]) -> pl.Expr:
    """Whether a traced definition is a reason, in its own frame (the scalar rules)."""
    na = pl.col("#na:" + sym.name) if ("#na:" + sym.name) in cols else pl.lit(False)
    if sym.kind == "rule":
        value = pl.col(sym.name).fill_null(False)
        passed, failed = value & ~na, ~value & ~na
    elif sym.kind == "table":
        passed, failed = pl.col("#row:" + sym.name).is_not_null() & ~na, pl.lit(False)
    else:
        passed, failed = pl.col(sym.name).fill_null(False) & ~na, pl.lit(False)
    if sym.report == "always":
        return pl.lit(True)
    if sym.report == "fail":
        return failed
    if sym.report in ("fire", "pass"):
        return passed
    return pl.lit(False)


def _row_ids(sym: Symbol) -> list[str]:
    t = sym.table
    assert t is not None
    return [r.id for r in [*t.rows, *([t.otherwise] if t.otherwise else [])]]


def _tokens(evaluator: Evaluator, run: ColumnRun) -> list[tuple[str, pl.Expr]]:
    """(reason id, flag on H) in the canonical order of the scalar backend."""
    explain = run.ensure(run.rs.explain_members, "household")
    out: list[tuple[str, pl.Expr]] = []
    member: list[tuple[str, pl.Expr]] = []
    for sym in evaluator.traced():
        cols = run.h_columns if sym.scope == "household" else run.m_columns
        rep = _reported(sym, cols)
        pieces: list[tuple[str, pl.Expr]]
        if sym.kind == "table":
            row = pl.col("#row:" + sym.name)
            pieces = [(rid, rep & (row == i)) for i, rid in enumerate(_row_ids(sym))]
        else:
            pieces = [(sym.name, rep)]
        if sym.scope == "household":
            out.extend((rid, flag.fill_null(False)) for rid, flag in pieces)
        else:
            member.extend((rid, (pl.col(explain) & flag).fill_null(False)) for rid, flag in pieces)
    if member:
        flags = run.mm.select([f.alias(f"f{i}") for i, (_, f) in enumerate(member)])
        columns = []
        for i in range(len(member)):
            values = flags.get_column(f"f{i}").to_numpy().astype(bool)
            reduced = np.logical_or.reduceat(values, run.starts) if len(values) else np.zeros(0, dtype=bool)
            columns.append(pl.Series(f"~r{i}", reduced, dtype=pl.Boolean))
        run.add_columns("household", [pl.lit(c) for c in columns], [c.name for c in columns])
        out.extend((rid, pl.col(f"~r{i}")) for i, (rid, _) in enumerate(member))
    return out


def _packed(frame: pl.DataFrame, flags: list[tuple[str, pl.Expr]], name: str) -> pl.Series:
    """One text column joining the ids whose flag is set, built once per distinct combination."""
    if not flags or frame.height == 0:
        return pl.Series(name, [""] * frame.height, dtype=pl.Utf8)
    values = frame.select([f.alias(f"b{i}") for i, (_, f) in enumerate(flags)])
    words = np.zeros((frame.height, -(-len(flags) // _BITS)), dtype=np.int64)
    for i in range(len(flags)):
        bit = values.get_column(f"b{i}").to_numpy().astype(np.int64)
        words[:, i // _BITS] |= bit << (i % _BITS)
    keys = pl.DataFrame({f"w{j}": words[:, j] for j in range(words.shape[1])})
    combos = keys.unique(maintain_order=True)
    texts = [
        ";".join(flags[w * _BITS + i][0] for w, word in enumerate(row) for i in range(_BITS) if int(word) >> i & 1)
        for row in combos.iter_rows()
    ]
    lookup = combos.with_columns(pl.Series(name, texts, dtype=pl.Utf8))
    return keys.join(lookup, on=keys.columns, how="left", maintain_order="left").get_column(name)


def decide_frames(evaluator: Evaluator, run: ColumnRun) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(decisions, undecided) for the households of one run."""
    rs = run.rs
    fields = [f for f in rs.decision_fields if f not in BUILTIN_FIELDS]
    run.prefetch_aggregates()
    for f in fields:
        run.ensure(f, "household")
    findings = rs.findings()
    for s in evaluator.traced():
        run.ensure(s.name, s.scope)
    for s in findings:
        run.ensure(s.name, "household")
    tokens = _tokens(evaluator, run)
    out: list[pl.Expr] = [
        pl.col("household_id"),
        pl.col("decision_date"),
        pl.lit(rs.ruleset_version).alias("ruleset_version"),
    ]
    required: list[str] = []
    for f in fields:
        t = rs.symbol(f).type
        assert t is not None
        col = pl.col(f)
        if t.kind == "money":
            col = fen_to_text(round_half_up(col, run.scales[("household", f)], 2))
        elif t.kind == "int":
            col = col.cast(pl.Int64)
        elif t.kind in ("enum", "str"):
            col = col.cast(pl.Utf8)
        out.append(col.alias(f))
        if not t.nullable:
            required.append(f)
    frame = run.hh.select(out)
    code_flags = [(s.code, pl.col(s.name).fill_null(False)) for s in findings]
    frame = frame.with_columns(_packed(run.hh, code_flags, "findings"), _packed(run.hh, tokens, "reasons"))
    frame = frame.select([c for c in rs.decision_fields if c in frame.columns])
    missing: Any = pl.any_horizontal([pl.col(f).is_null() for f in required]) if required else pl.lit(False)
    undecided = frame.filter(missing)
    if undecided.height:
        first_missing = pl.coalesce([pl.when(pl.col(f).is_null()).then(pl.lit(f)) for f in required])
        undecided = undecided.select(
            pl.col("household_id"),
            first_missing.alias("field"),
            pl.format("could not be decided: a value `{}` needs is missing", first_missing).alias("reason"),
        )
    else:
        undecided = pl.DataFrame(schema={"household_id": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8})
    return frame.filter(~missing), undecided
