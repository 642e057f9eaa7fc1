"""A lean screening pipeline: the reference `jiuzhu screen` is measured against.

Read both Parquet tables whole, run the same checks (`validate_frames`), find the persons
in two households with one group-by, decide with the hand-written kernel
(`baseline_polars.decide`) and write the decisions once, text columns as dictionaries. No
chunks, no resume, no summary: what the work costs when nothing else is asked of it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from benchmarks import baseline_polars
from engine.record import RecordSchema
from engine.vector import validate_frames


def screen(
    schema: RecordSchema,
    folder: Path,
    out: Path,
    today: dt.date,
    relatives: frozenset[str] = frozenset(),
    filings: frozenset[str] = frozenset(),
) -> int:
    """Decide ``folder``'s households into ``out`` (decisions and rejects); returns rows decided."""
    households = pl.read_parquet(folder / "households.parquet")
    members = pl.read_parquet(folder / "members.parquet")
    h, m, rejects = validate_frames(schema, households, members, today)
    shared = (
        m.group_by("person_id").agg(pl.col("_h").n_unique().alias("n")).filter(pl.col("n") > 1).get_column("person_id")
    )
    decisions = baseline_polars.decide(h, m, relatives, filings, frozenset(shared.to_list()))
    text = [c for c, t in decisions.schema.items() if t == pl.Utf8 and c != "household_id"]
    out.mkdir(parents=True, exist_ok=True)
    decisions.with_columns(pl.col(text).cast(pl.Categorical)).write_parquet(out / "decisions.parquet")
    rejects.write_parquet(out / "rejects.parquet")
    return decisions.height
