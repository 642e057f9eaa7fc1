"""The screening summary, added up from per-chunk counts so the decisions are never read back.

Counts are taken over distinct values (a status column has a handful, `findings` a few
dozen combinations, an amount column a few thousand), never per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from engine.evaluator import Evaluator

__all__ = ["ChunkCounts", "add_up", "chunk_counts"]


@dataclass
class ChunkCounts:
    rows: int = 0
    decided: int = 0
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    paid_before_fen: int = 0
    paid_after: str = "0"

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "decided": self.decided,
            "statuses": self.statuses,
            "findings": self.findings,
            "paid_before_fen": self.paid_before_fen,
            "paid_after": self.paid_after,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkCounts:
        return cls(**data)


def _counts(column: pl.Series) -> list[tuple[Any, int]]:
    table = column.value_counts()
    return list(zip(table.get_column(column.name).to_list(), table.get_column("count").to_list(), strict=True))


def chunk_counts(reports: dict[str, Any], households: pl.DataFrame, decisions: pl.DataFrame) -> ChunkCounts:
    """Counts of one chunk; ``households`` are the validated frames (money in fen)."""
    out = ChunkCounts(decided=decisions.height)
    for col in reports.get("statuses") or {}:
        out.statuses[col] = {str(v): int(n) for v, n in _counts(decisions.get_column(col))}
    for text, n in _counts(decisions.get_column("findings")):
        for f in str(text or "").split(";"):
            if f:
                out.findings[f] = out.findings.get(f, 0) + int(n)
    paid = reports.get("paid_before") or {}
    if paid:
        after = sum((Decimal(str(v)) * n for v, n in _counts(decisions.get_column(paid["after"])) if v), Decimal(0))
        out.paid_after = str(after)
        recipient = pl.col(paid["recipient"]).fill_null(False)
        if decisions.height < households.height:  # some could not be decided: count only the decided
            recipient = recipient & pl.col("household_id").is_in(decisions.get_column("household_id").implode())
        before = households.filter(recipient).get_column(paid["amount"])
        out.paid_before_fen = int(before.sum() or 0)
    return out


def add_up(ev: Evaluator, manifest: dict[str, Any], chunks: list[ChunkCounts]) -> dict[str, Any]:
    """The run's summary.json (without `reject_rows`, which the caller counts)."""
    statuses: dict[str, dict[str, int]] = {}
    findings: dict[str, int] = {}
    for c in chunks:
        for col, table in c.statuses.items():
            into = statuses.setdefault(col, {})
            for value, n in table.items():
                into[value] = into.get(value, 0) + n
        for f, n in c.findings.items():
            findings[f] = findings.get(f, 0) + n
    decided = sum(c.decided for c in chunks)
    index = manifest["index"]
    before = Decimal(sum(c.paid_before_fen for c in chunks)) / 100
    after = sum((Decimal(c.paid_after) for c in chunks), Decimal(0))
    return {
        "ruleset_version": ev.ruleset.ruleset_version,
        "rows_in": manifest["rows_in"],
        "decided": decided,
        "rejected": sum(c.rows - c.decided for c in chunks) + manifest["bad_json_lines"],
        "reject_rows": 0,
        "member_rows_in": index["member_rows"],
        "member_rows_without_household": index["orphan_rows"],
        "statuses": {col: dict(sorted(t.items())) for col, t in statuses.items()},
        "findings": dict(sorted(findings.items())),
        "monthly_paid_before": f"{before:.2f}",
        "monthly_paid_after": f"{after:.2f}",
        "registries": ev.registries.versions(),
    }
