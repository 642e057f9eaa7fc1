"""Deciding a caseload held in memory, and the persons found in two households."""

from __future__ import annotations

import datetime as dt

import polars as pl

from engine.evaluator import Evaluator
from engine.vector.caseload import validate_frames
from engine.vector.decisions import decide_frames
from engine.vector.plan import ColumnRun

__all__ = ["decide_caseload", "duplicate_persons"]


def duplicate_persons(members: pl.DataFrame) -> frozenset[str]:
    """Person IDs that appear in more than one household."""
    if members.height == 0:
        return frozenset()
    counts = members.group_by("person_id").agg(pl.col("household_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    return frozenset(counts.get_column("person_id").drop_nulls().to_list())


def decide_caseload(
    evaluator: Evaluator,
    households: pl.DataFrame,
    members: pl.DataFrame,
    *,
    today: dt.date | None = None,
    decision_date: dt.date | None = None,
    duplicates: frozenset[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate and decide a caseload held in memory; returns (decisions, rejects).

    ``duplicates`` are person IDs found in other households of the whole caseload; by
    default they are computed from ``members``.
    """
    rs = evaluator.ruleset
    h, m, rejects = validate_frames(rs.record, households, members, today or dt.date.today(), decision_date)
    registries = {n: r.keys for n, r in evaluator.registries.by_name.items()}
    dup = (
        duplicate_persons(m.select("person_id", pl.col("_h").alias("household_id")))
        if duplicates is None
        else duplicates
    )
    for name, spec in rs.registries.items():
        if spec.computed:
            registries[name] = registries.get(name, frozenset()) | dup
    run = ColumnRun(rs, evaluator.params, h, m, registries)
    decisions, undecided = decide_frames(evaluator, run)
    return decisions, pl.concat([rejects, undecided], how="vertical")
