"""Reasons for the rows the column validator rejects, worded like the row validator's.

Each bad cell's reason comes from the same ``FieldRule.check`` the row validator calls,
once per distinct (value, the values it depends on): a caseload with a million copies of
one bad value words it once. Reasons that span fields (a person twice in a household, a
date out of its bounds, no parameters in force, a repeated household, an unknown field)
use the same message table. Every function returns rows of ``REJECT_SCHEMA`` plus ``~i``,
the household's row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from engine.errors import FieldProblem
from engine.validation.messages import say
from engine.validation.rules import (
    DATE_FIELD,
    REGION_FIELD,
    Coverage,
    FieldRule,
    cross_rules,
    member_groups,
    schema_rules,
    unknown_problem,
)

if TYPE_CHECKING:
    from engine.record import RecordSchema

__all__ = [
    "MEMBER_INDEX",
    "MEMBER_OF",
    "REASONS",
    "UNKNOWN_KEY",
    "all_field_reasons",
    "bound_reasons",
    "coverage_reasons",
    "cross_flags",
    "field_reasons",
    "members_max_reasons",
    "reasons_frame",
    "unique_reasons",
    "unknown_reasons",
]

UNKNOWN_KEY = "."  # prefixes the column of a household's unknown top-level JSON key
MEMBER_OF, MEMBER_INDEX = "~h", "~k"  # a member's household row and its index among the household's members
REASONS = pl.Schema({"~i": pl.UInt32(), "household_id": pl.Utf8(), "field": pl.Utf8(), "reason": pl.Utf8()})
_FALLBACK = "rejected by the caseload validator, though this value alone is accepted"


def reasons_frame(rows: Iterable[tuple[int, str | None, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=REASONS, orient="row")


def _prefix(frame: pl.DataFrame, members_field: str) -> Callable[[dict[str, Any]], str]:
    if "~k" in frame.columns:
        return lambda r: f"{members_field}[{r['~k']}]."
    return lambda r: ""


def field_reasons(
    rule: FieldRule,
    bad: pl.DataFrame,
    deps: list[str],
    members_field: str,
    today: dt.date,
) -> list[tuple[int, str | None, str, str]]:
    """``bad`` has ``~i``, ``~id``, ``~raw`` (the cell as read), the ``deps`` columns (parsed
    values this field depends on) and, for members, ``~k``."""
    prefix = _prefix(bad, members_field)
    memo: dict[tuple[Any, ...], str] = {}
    out = []
    for r in bad.iter_rows(named=True):
        key = (r["~raw"], *(r[d] for d in deps))
        reason = memo.get(key)
        if reason is None:
            problems: list[FieldProblem] = []
            rule.check(r["~raw"], "", {d: r[d] for d in deps}, problems, problems, today)
            reason = memo[key] = problems[0].message if problems else _FALLBACK
        out.append((r["~i"], r["~id"], prefix(r) + rule.path, reason))
    return out


def unique_reasons(rule: FieldRule, bad: pl.DataFrame, members_field: str) -> list[tuple[int, str | None, str, str]]:
    """``bad`` has ``~i``, ``~id``, ``~k`` and ``~first``, the index of the first member with the value."""
    return [
        (r["~i"], r["~id"], f"{members_field}[{r['~k']}].{rule.path}", say("same_person", first=r["~first"]))
        for r in bad.iter_rows(named=True)
    ]


def bound_reasons(
    rule: FieldRule, ref: str, kind: str, bad: pl.DataFrame, members_field: str
) -> list[tuple[int, str | None, str, str]]:
    """``bad`` has ``~i``, ``~id``, ``~k``, the value and ``~bound``."""
    return [
        (
            r["~i"],
            r["~id"],
            f"{members_field}[{r['~k']}].{rule.path}",
            say(kind, ref=ref, bound=r["~bound"], got=r[rule.path]),
        )
        for r in bad.iter_rows(named=True)
    ]


def unknown_reasons(
    column: str, key: str, known: Iterable[str], bad: pl.DataFrame, members_field: str
) -> list[tuple[int, str | None, str, str]]:
    """An unknown column with a value; ``bad`` has ``~i``, ``~id`` (and ``~k`` for members)."""
    problem = unknown_problem(column, key, known)
    prefix = _prefix(bad, members_field)
    return [(r["~i"], r["~id"], prefix(r) + problem.field, problem.message) for r in bad.iter_rows(named=True)]


def coverage_reasons(h: pl.DataFrame, coverage: Coverage | None) -> pl.DataFrame:
    """Rows whose region or decision date has no parameters in force, worded once per pair."""
    if coverage is None or REGION_FIELD not in h.columns or DATE_FIELD not in h.columns:
        return pl.DataFrame(schema=REASONS)
    rows = []
    for region, on in h.select(REGION_FIELD, DATE_FIELD).unique().drop_nulls().iter_rows():
        p = coverage.problem(region, on)
        if p is not None:
            rows.append((region, on, p.field, p.message))
    if not rows:
        return pl.DataFrame(schema=REASONS)
    table = pl.DataFrame(
        rows, schema={REGION_FIELD: pl.Utf8, DATE_FIELD: pl.Date, "field": pl.Utf8, "reason": pl.Utf8}, orient="row"
    )
    return h.join(table, on=[REGION_FIELD, DATE_FIELD], how="inner").select(
        "~i", pl.col("~id").alias("household_id"), "field", "reason"
    )


def members_max_reasons(m: pl.DataFrame, most: int | None, members_field: str) -> pl.DataFrame:
    """Households with more members than ``most`` (``m`` linked: ``~h``, ``~k``, ``~id``)."""
    if most is None or m.height == 0 or int(m.get_column(MEMBER_INDEX).max() or 0) < most:  # type: ignore[arg-type]
        return pl.DataFrame(schema=REASONS)
    many = m.group_by(MEMBER_OF).agg(pl.len().alias("n"), pl.col("~id").first()).filter(pl.col("n") > most)
    return reasons_frame(
        (i, hid, members_field, say("members_max", bound=most, got=n))
        for i, n, hid in many.select(MEMBER_OF, "n", "~id").iter_rows()
    )


def _repeated_column(column: str, known: Iterable[str]) -> tuple[str, str] | None:
    """(the column, why) for the second copy of a table column (Polars names it
    ``<column>_duplicated_<n>``), or None."""
    base, sep, n = column.rpartition("_duplicated_")
    if sep and n.isdigit() and base in known:
        return base, say("repeated_column")
    return None


def cross_flags(m: pl.DataFrame, h: pl.DataFrame, rules: list[FieldRule]) -> pl.DataFrame:
    """Flag members that repeat a unique value of their household (with the first one's
    index) or whose date is out of bounds set by another field (with the bound)."""
    for rule in cross_rules(rules):
        path = rule.path
        if rule.unique:
            # only values seen twice in the whole frame (rare) are grouped by household
            twice = m.filter(pl.col(path).is_not_null() & pl.col(path).is_duplicated())
            later = twice.with_columns(pl.col(MEMBER_INDEX).first().over([MEMBER_OF, path]).alias("~first")).filter(
                pl.col(MEMBER_INDEX) != pl.col("~first")
            )
            m = m.join(later.select("~j", pl.col("~first").alias(f"~first:{path}")), on="~j", how="left")
        for ref, name, later_is_bad in ((rule.date_lo, "lo", False), (rule.date_hi, "hi", True)):
            if ref is None:
                continue
            if ref not in m.columns:
                m = m.join(
                    h.select(pl.col("~i").alias(MEMBER_OF), pl.col(ref).alias(f"~ref:{ref}")), on=MEMBER_OF, how="left"
                )
            bound = pl.col(ref) if ref in m.columns else pl.col(f"~ref:{ref}")
            if later_is_bad:
                out = pl.col(path) > bound
            else:
                out = pl.col(path) <= bound if rule.lo_strict else pl.col(path) < bound
            m = m.with_columns(pl.when(out.fill_null(False)).then(bound).alias(f"~{name}:{path}"))
    return m


def all_field_reasons(
    schema: RecordSchema,
    households: pl.DataFrame,
    members: pl.DataFrame,
    h: pl.DataFrame,
    m: pl.DataFrame,
    h_unknown: list[str],
    m_unknown: list[str],
    json_origin: bool,
    today: dt.date,
) -> list[pl.DataFrame]:
    """Every field-level reason, for households and for members."""
    household, member_rules = schema_rules(schema)
    out: list[tuple[int, str | None, str, str]] = []
    members_field = schema.members_field
    m = m.with_columns(pl.col(MEMBER_OF).alias("~i"))
    for frame, raw, key, rules in (
        (h, households, "~i", [r for _, rs in household for r in rs]),
        (m, members, "~j", member_rules),
    ):
        column = {r.path: r.path.replace(".", "_") for r in rules}  # a member's object fields flattened too
        for rule in rules:
            flag = pl.col("~b:" + rule.path)
            if not frame.select(flag.any()).item():
                continue
            deps = [k for k, _ in rule.when] + ([rule.by[0]] if rule.by else [])
            raw_col = pl.col(column[rule.path]) if column[rule.path] in raw.columns else pl.lit(None)
            bad = frame.filter(flag).select(
                "~i", "~id", *([key, MEMBER_INDEX] if frame is m else []), *(pl.col(d).cast(pl.Utf8) for d in deps)
            )
            bad = bad.join(raw.select(key, raw_col.alias("~raw")), on=key, how="left")
            out += field_reasons(rule, bad, deps, members_field, today)
    for obj in member_groups(schema):  # a member's object that is absent where it is required
        if "~b:" + obj.path in m.columns:
            why = obj.required_message
            bad = m.filter(pl.col("~b:" + obj.path)).select("~i", "~id", MEMBER_INDEX)
            out += [(i, hid, f"{members_field}[{k}].{obj.path}", why) for i, hid, k in bad.iter_rows()]
    for rule in cross_rules(member_rules):
        if f"~first:{rule.path}" in m.columns:
            bad = m.filter(pl.col(f"~first:{rule.path}").is_not_null())
            out += unique_reasons(rule, bad.with_columns(pl.col(f"~first:{rule.path}").alias("~first")), members_field)
        low = "date_after" if rule.lo_strict else "date_min"
        for ref, name, kind in ((rule.date_lo, "lo", low), (rule.date_hi, "hi", "date_max")):
            if ref is not None:
                bad = m.filter(pl.col(f"~{name}:{rule.path}").is_not_null())
                out += bound_reasons(
                    rule, ref, kind, bad.with_columns(pl.col(f"~{name}:{rule.path}").alias("~bound")), members_field
                )
    flat = frozenset(r.path.replace(".", "_") for _, rs in household for r in rs)  # a table's columns
    for c in h_unknown:
        if json_origin and c.startswith(UNKNOWN_KEY):  # a top-level key
            field, key, known = c[1:], c[1:], schema.known[""]
        elif json_origin:  # a group's key
            group, _, key = c.partition(".")
            field, known = c, schema.known[group]
        else:
            field, key, known = c, c, flat
        reason = _repeated_column(c, known) if not json_origin else None
        bad = h.filter(pl.col("~u:" + c))
        if reason is not None:
            out += [(i, hid, reason[0], reason[1]) for i, hid in bad.select("~i", "~id").iter_rows()]
        else:
            out += unknown_reasons(field, key, known, bad, members_field)
    for c in m_unknown:
        key = c.removeprefix(members_field + ".")  # a member's own key that is also a table column
        bad = m.filter(pl.col("~u:" + c))
        within, _, inner = key.rpartition(".")
        if json_origin and "member." + within in schema.known:  # a key inside a member's object
            out += unknown_reasons(key, inner, schema.known["member." + within], bad, members_field)
            continue
        reason = _repeated_column(c, schema.known["member"]) if not json_origin else None
        if reason is not None:
            out += [
                (i, hid, f"{members_field}[{k}].{reason[0]}", reason[1])
                for i, hid, k in bad.select("~i", "~id", MEMBER_INDEX).iter_rows()
            ]
        else:
            out += unknown_reasons(key, key, schema.known["member"], bad, members_field)
    return [reasons_frame(out)]
