"""Decision columns for a chunk: the RECORDS.md fields, `findings` and `reasons`, and the
households that could not be decided (a value they need is missing)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.evaluator import Evaluator
from engine.loader import BUILTIN_FIELDS
from engine.ruleset import Symbol
from engine.vector.plan import ColumnRun, fen_to_text, round_half_up

__all__ = ["decide_frames"]


def _reported(sym: Symbol, run: ColumnRun, frame: str) -> tuple[pl.Expr, pl.Expr | None]:
    """(is reported, row index for tables) for one traced definition, in its frame."""
    cols = (run.H if frame == "household" else run.M).columns
    na = pl.col("#na:" + sym.name) if ("#na:" + sym.name) in cols else pl.lit(False)
    row = None
    if sym.kind == "rule":
        value = pl.col(sym.name).fill_null(False)
        passed, failed = value & ~na, ~value & ~na
    elif sym.kind == "table":
        row = pl.col("#row:" + sym.name)
        passed, failed = row.is_not_null() & ~na, pl.lit(False)
    else:
        passed, failed = pl.col(sym.name).fill_null(False) & ~na, pl.lit(False)
    report = sym.report
    if report == "always":
        return pl.lit(True), row
    if report == "fail":
        return failed, row
    if report in ("fire", "pass"):
        return passed, row
    return pl.lit(False), row


def _table_rows(sym: Symbol) -> list[str]:
    t = sym.table
    assert t is not None
    return [r.id for r in [*t.rows, *([t.otherwise] if t.otherwise else [])]]


def decide_frames(evaluator: Evaluator, run: ColumnRun) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(decisions, undecided) for the households of one run."""
    rs = run.rs
    fields = [f for f in rs.decision_fields if f not in BUILTIN_FIELDS]
    for f in fields:
        run.ensure(f, "household")
    traced = evaluator.traced()
    findings = [s for s in rs.findings()]
    for s in traced:
        run.ensure(s.name, s.scope)
    for s in findings:
        run.ensure(s.name, "household")
    explain = run.ensure(rs.explain_members, "household")
    # reasons: household tokens, then per-member tokens aggregated to the household
    tokens: list[pl.Expr] = []
    member_flags: list[tuple[str, pl.Expr]] = []
    for sym in traced:
        rep, row = _reported(sym, run, sym.scope)
        if sym.scope == "household":
            tokens.append(pl.when(rep).then(pl.col(sym.name) if sym.kind == "table" else pl.lit(sym.name)))
            continue
        mask = pl.col(explain) & rep
        if sym.kind == "table":
            assert row is not None
            for i, rid in enumerate(_table_rows(sym)):
                member_flags.append((rid, mask & (row == i)))
        else:
            member_flags.append((sym.name, mask))
    if member_flags:
        flags = run.M.select([f.fill_null(False).alias(f"f{i}") for i, (_, f) in enumerate(member_flags)])
        agg = {}
        for i in range(len(member_flags)):
            values = flags.get_column(f"f{i}").to_numpy().astype(bool)
            agg[f"~r{i}"] = np.logical_or.reduceat(values, run.starts) if len(values) else np.zeros(0, dtype=bool)
        run.H = run.H.with_columns([pl.Series(k, v, dtype=pl.Boolean) for k, v in agg.items()])
        for i, (rid, _) in enumerate(member_flags):
            tokens.append(pl.when(pl.col(f"~r{i}")).then(pl.lit(rid)))
    code_tokens = [pl.when(pl.col(s.name).fill_null(False)).then(pl.lit(s.code)) for s in findings]
    out: list[pl.Expr] = [
        pl.col("household_id"),
        pl.col("decision_date"),
        pl.lit(rs.ruleset_version).alias("ruleset_version"),
    ]
    required: list[str] = []
    for f in fields:
        sym = rs.symbol(f)
        t = sym.type
        assert t is not None
        col = pl.col(f)
        if t.kind == "money":
            col = fen_to_text(round_half_up(col, run.scales[("household", f)], 2))
        elif t.kind == "int":
            col = col.cast(pl.Int64)
        out.append(col.alias(f))
        if not t.nullable:
            required.append(f)
    out.append(pl.concat_str(code_tokens, separator=";", ignore_nulls=True).fill_null("").alias("findings"))
    out.append(pl.concat_str(tokens, separator=";", ignore_nulls=True).fill_null("").alias("reasons"))
    frame = run.H.select(out)
    order = [c for c in rs.decision_fields if c in frame.columns]
    frame = frame.select(order)
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
