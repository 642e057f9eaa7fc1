"""Reasons for the households the column validator rejects, worded like the row validator.

A rejected household is rebuilt as the JSON object its rows stand for (RECORDS.md: group
columns nested under their prefix, members in input order) and validated by the row
validator; its problems become the reject rows. Only rejected households are rebuilt.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.errors import InputError
from engine.validation import Coverage, unknown_problem
from engine.validation_columns import LINK, REJECT_SCHEMA, cell_text, group_marker
from engine.validation_messages import say

if TYPE_CHECKING:
    from engine.record import RecordSchema

__all__ = ["rebuild_problems", "reject_frame", "whole_row_rejects"]

_FALLBACK = "rejected by the caseload validator, though the same household alone is accepted"


def reject_frame(ids: list[str | None], field: str, reason: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"household_id": ids, "field": [field] * len(ids), "reason": [reason] * len(ids)}, schema=REJECT_SCHEMA
    )


def _layout(schema: RecordSchema) -> tuple[dict[str, tuple[str, str]], dict[str, bool]]:
    """Flat column -> (group, key), and each group's nullability."""
    flat: dict[str, tuple[str, str]] = {}
    nullable: dict[str, bool] = {}
    for spec in schema.household:
        if spec.kind == "group":
            nullable[spec.name] = spec.nullable
            for sub in spec.fields:
                flat[f"{spec.name}_{sub.key}"] = (spec.name, sub.key)
    return flat, nullable


def _household(
    row: dict[str, Any], flat: dict[str, tuple[str, str]], nullable: dict[str, bool], skip: set[str]
) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {g: {} for g in nullable}
    given = {g: bool(row.get(group_marker(g))) for g in nullable}
    for column, value in row.items():
        if column.startswith("~") or column in skip:
            continue
        group, _, key = column.partition(".")
        if column in flat:
            group, key = flat[column]
        elif not (key and group in nested):
            obj[column] = value
            continue
        nested[group][key] = value
        given[group] = given[group] or (value is not None and value != "")
    for group, values in nested.items():
        if given[group] or not nullable[group]:
            obj[group] = values
    return obj


def rebuild_problems(
    schema: RecordSchema,
    households: pl.DataFrame,
    members: pl.DataFrame,
    h: pl.DataFrame,
    m: pl.DataFrame,
    today: dt.date,
    coverage: Coverage | None,
    repeated: frozenset[str],
) -> pl.DataFrame:
    """Reject rows for the households marked ``~rebuild`` in ``h``."""
    rows = h.filter(pl.col("~rebuild")).select("~i", "~id")
    if rows.height == 0:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    flat, nullable = _layout(schema)
    json_origin = LINK in households.columns
    unknown_tables = set() if json_origin else {c for c in households.columns if c not in flat and c not in h.columns}
    ids = rows.get_column("~i").implode()
    raw_h = households.filter(pl.col("~i").is_in(ids))
    raw_m = (
        members.with_row_index("~j")
        .join(m.select("~j", "~h", "~k").filter(pl.col("~h").is_in(ids)), on="~j", how="inner")
        .sort(["~h", "~k"])
    )
    by_household: dict[int, list[dict[str, Any]]] = {}
    member_skip = {schema.id_field}
    for r in raw_m.iter_rows(named=True):
        by_household.setdefault(r["~h"], []).append(
            {k: v for k, v in r.items() if not k.startswith("~") and k not in member_skip}
        )
    out: dict[str, list[Any]] = {"household_id": [], "field": [], "reason": []}
    canonical = dict(rows.iter_rows())
    for r in raw_h.iter_rows(named=True):
        i = r["~i"]
        obj = _household(r, flat, nullable, unknown_tables)
        obj[schema.members_field] = by_household.get(i, [])
        try:
            schema.validate(obj, today, coverage=coverage, repeated=repeated)
            problems = [("(household)", _FALLBACK)]
        except InputError as exc:
            problems = [(p.field, p.message) for p in exc.problems]
        for field, reason in problems:
            out["household_id"].append(canonical.get(i))
            out["field"].append(field)
            out["reason"].append(reason)
    return pl.DataFrame(out, schema=REJECT_SCHEMA)


def whole_row_rejects(
    schema: RecordSchema, households: pl.DataFrame, h: pl.DataFrame, unknown: list[str], json_origin: bool
) -> pl.DataFrame:
    """Unknown columns of a table, and repeated household IDs of households not rebuilt."""
    parts = []
    if not json_origin and unknown:
        flat, _ = _layout(schema)
        known = [c for c in households.columns if c not in unknown and not c.startswith("~")]
        known = sorted(
            set(known) | set(flat) | {s.name for s in schema.household if s.kind not in ("group", "members")}
        )
        for column in unknown:
            ids = (
                households.filter(cell_text(households, column).is_not_null())
                .select("~i")
                .join(h.select("~i", "~id"), on="~i")
                .get_column("~id")
            )
            problem = unknown_problem(column, column, known)
            parts.append(reject_frame(ids.to_list(), problem.field, problem.message))
    again = h.filter(pl.col("~repeated") & ~pl.col("~rebuild")).get_column("~id")
    if again.len():
        parts.append(reject_frame(again.to_list(), schema.id_field, say("repeated_household")))
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=REJECT_SCHEMA)
