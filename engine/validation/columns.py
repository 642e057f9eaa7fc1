"""The column validator: ``record.yaml`` compiled to Polars expressions for a caseload.

Each declared field becomes (parsed value, "this row is bad") expressions over its column,
with the same rules as the row validator (``engine.validation``): the same shapes, bounds,
defaults and cross-field checks. Good rows keep the parsed columns. A bad cell's reason is
worded by the same ``FieldRule.check`` the row validator calls, once per distinct value
(``engine.validation.reasons``), so a household is rejected with the same fields and
reasons on both paths; a Hypothesis test holds them to it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine.errors import FieldProblem, InputError
from engine.messages import text as catalogue_text
from engine.types import (
    BLANKS,
    CONTROL_PATTERN,
    DATE_PATTERN,
    INT_PATTERN,
    MONEY_DIGITS,
    MONEY_PATTERN,
    NEGATIVE_ZERO,
    TEXT_CHARS,
    YEAR_MAX,
    YEAR_MIN,
)
from engine.validation.byte_checks import canonical_text, resident_id_ok
from engine.validation.members import cross_flagged, link_members
from engine.validation.messages import say
from engine.validation.reasons import (
    MEMBER_OF,
    REASONS,
    all_field_reasons,
    coverage_reasons,
    members_max_reasons,
    reasons_frame,
)
from engine.validation.rules import (
    Coverage,
    FieldRule,
    GroupRule,
    cross_rules,
    member_groups,
    norm,
    schema_rules,
)

if TYPE_CHECKING:
    from engine.record import RecordSchema

__all__ = ["LINK", "REJECT_SCHEMA", "REPEATED", "SHAPE", "cell_text", "group_marker", "validate_columns"]

REJECT_SCHEMA = {"household_id": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8}
LINK = "~row"  # links members to their household when a table came from JSON objects
_TEXT = "~t:"
SHAPE = "~shape"  # a household's problems of shape (JSON [[field, reason], ...]), found while flattening
REPEATED = "~repeated"  # true: this household's ID is found again elsewhere in the input (beyond this frame)


def group_marker(group: str) -> str:
    """The column that says a group object was given, even empty (from JSON)."""
    return f"~group:{group}"


@dataclass(frozen=True)
class _Field:
    rule: FieldRule
    column: str
    group: str = ""  # a nullable group it belongs to


def cell_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The canonical text of a column: trimmed, blank = null."""
    if _TEXT + column in frame.columns:
        return pl.col(_TEXT + column)
    if column not in frame.columns:
        return pl.lit(None, dtype=pl.Utf8)
    dtype = frame.schema[column]
    col = pl.col(column)
    if dtype == pl.Utf8:
        t = col.str.strip_chars(BLANKS)
        return pl.when(t != "").then(t)
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    if dtype == pl.Date:
        return col.dt.to_string("%Y-%m-%d")
    if dtype == pl.Datetime:
        return col.dt.date().dt.to_string("%Y-%m-%d")
    return col.cast(pl.Utf8)


def _parse(rule: FieldRule, t: pl.Expr, dep: pl.Expr | None) -> tuple[pl.Expr, pl.Expr]:
    """(value, bad) for a present text ``t``; ``bad`` is false where ``t`` is null."""
    kind = rule.kind
    given = t.is_not_null()
    if kind == "str":
        bad = ((t.str.len_chars() > TEXT_CHARS) | t.str.contains(CONTROL_PATTERN)).fill_null(False)
        return pl.when(~bad).then(t), bad
    if kind == "enum":
        table = rule.by[1] if rule.by is not None else {}
        values = list(rule.values) or sorted({v for vs in table.values() for v in vs})
        value = t.cast(pl.Enum(values), strict=False)
        if rule.by is None or dep is None:
            return value, given & value.is_null()
        allowed = pl.lit(False)
        for key, vals in table.items():
            allowed = allowed | ((dep == key) & t.is_in(list(vals)))
        return value, given & dep.is_in(list(table)) & ~allowed.fill_null(False)
    if kind == "bool":
        low = t.str.to_lowercase()
        value = pl.when(low == "true").then(True).when(low == "false").then(False)
        return value, given & value.is_null()
    if kind == "int":
        ok = t.str.contains(f"^{INT_PATTERN}$")
        value = t.cast(pl.Int64, strict=False)
        bad = given & ~ok
        if rule.lo is not None:
            bad = bad | (ok & (value.is_null() & t.str.starts_with("-") | (value < rule.lo)))
        if rule.hi is not None:
            bad = bad | (ok & (value.is_null() & ~t.str.starts_with("-") | (value > rule.hi)))
        if rule.lo is None and rule.hi is None:
            bad = bad | (ok & value.is_null())  # beyond int64 and unbounded: refuse, not wrap
        if rule.values:  # a whole number from a listed set
            bad = bad | (ok & ~value.is_in(_ints(rule.values)))
        return value, bad.fill_null(False)
    if kind == "money":
        ok = t.str.contains(f"^({MONEY_PATTERN}|{NEGATIVE_ZERO})$")  # "-0.00" is zero
        whole = t.str.extract(r"^-?([0-9]+)", 1)
        big = whole.str.strip_chars_start("0").str.len_chars() > MONEY_DIGITS
        frac = t.str.extract(r"\.([0-9]{1,2})$", 1).fill_null("0").str.pad_end(2, "0").cast(pl.Int64)
        fen = whole.cast(pl.Int64, strict=False) * 100 + frac
        return pl.when(ok & ~big).then(fen), given & (~ok | big)
    if kind == "date":
        value = t.str.to_date("%Y-%m-%d", strict=False)
        good = (
            t.str.contains(f"^{DATE_PATTERN}$") & value.is_not_null() & value.dt.year().is_between(YEAR_MIN, YEAR_MAX)
        )
        bad = given & ~good.fill_null(False)
        return pl.when(good).then(value), bad | _date_bounds(rule, pl.when(good).then(value))
    raise InputError([FieldProblem(rule.path, catalogue_text("input.column_type", "en", kind=kind))])


def _ints(values: tuple[str, ...]) -> pl.Expr:
    """A whole number's listed values, as ``is_in`` takes them."""
    return pl.lit(pl.Series([int(v) for v in values], dtype=pl.Int64).implode())


def _date_bounds(rule: FieldRule, value: pl.Expr) -> pl.Expr:
    """Outside the dates written as ``min``/``max`` in record.yaml (false where null)."""
    out = pl.lit(False)
    if rule.lo is not None:
        out = out | (value < pl.lit(rule.lo)).fill_null(False)
    if rule.hi is not None:
        out = out | (value > pl.lit(rule.hi)).fill_null(False)
    return out


def _typed(rule: FieldRule, frame: pl.DataFrame, column: str) -> tuple[pl.Expr, pl.Expr] | None:
    """(value, bad) straight from a typed column (Parquet), where its type says enough."""
    if column not in frame.columns:
        return None
    dtype, col, kind = frame.schema[column], pl.col(column), rule.kind
    if kind == "bool" and dtype == pl.Boolean:
        return col, pl.lit(False)
    if kind == "date" and dtype in (pl.Date, pl.Datetime):
        day = col.dt.date() if dtype == pl.Datetime else col
        bad = ~day.dt.year().is_between(YEAR_MIN, YEAR_MAX)
        return pl.when(~bad).then(day), bad.fill_null(False)
    if kind == "int" and dtype.is_integer():
        value = col.cast(pl.Int64, strict=False)
        bad = value.is_null() & col.is_not_null()
        bad = bad | (value < rule.lo) if rule.lo is not None else bad
        bad = bad | (value > rule.hi) if rule.hi is not None else bad
        bad = bad | ~value.is_in(_ints(rule.values)) if rule.values else bad
        return value, bad.fill_null(False)
    if kind == "money" and (dtype.is_integer() or (isinstance(dtype, pl.Decimal) and (dtype.scale or 0) <= 2)):
        bad = (col < 0) | (col >= 10**MONEY_DIGITS)
        fen = (col * 100).cast(pl.Int64, strict=False)
        return pl.when(~bad).then(fen), bad.fill_null(False)
    return None


def with_texts(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the canonical text of each text column computed once (``~t:<column>``):
    every check of a column reads it. Only cells that may hold blanks are trimmed."""
    texts = [
        canonical_text(s).alias(_TEXT + s.name)
        for s in frame.iter_columns()
        if s.dtype == pl.Utf8 and s.name[:1] != "~"
    ]
    return frame.with_columns(texts) if texts else frame


def id_helpers(frame: pl.DataFrame, fields: list[_Field]) -> pl.DataFrame:
    """``frame`` with its resident-ID fields checked on their bytes: the upper-cased text
    (``~id:``) and whether it is a valid ID (``~ok:``)."""
    helpers = []
    for f in fields:
        if f.rule.kind == "resident_id":
            text = frame.select(cell_text(frame, f.column)).to_series()
            ok = pl.Series(resident_id_ok(text))
            lower = (ok & text.str.ends_with("x")).arg_true()  # a lower-case check letter, rare
            if lower.len():
                text = text.scatter(lower, text.gather(lower).str.to_uppercase())
            helpers += [text.alias("~id:" + f.column), ok.alias("~ok:" + f.column)]
    return frame.with_columns(helpers) if helpers else frame


def _field(f: _Field, frame: pl.DataFrame, parsed: dict[str, pl.Expr], today: dt.date) -> tuple[pl.Expr, pl.Expr]:
    """(value, bad) of one field, with absent values defaulted or reported."""
    rule = f.rule
    typed = _typed(rule, frame, f.column)
    if typed is not None:
        value, bad = typed
        absent = pl.col(f.column).is_null()
    else:
        t = pl.col("~id:" + f.column) if rule.kind == "resident_id" else cell_text(frame, f.column)
        dep = parsed[rule.by[0]].cast(pl.Utf8) if rule.by is not None and rule.by[0] in parsed else None
        if rule.kind == "resident_id":
            ok = pl.col("~ok:" + f.column)
            value, bad = pl.when(ok).then(t), t.is_not_null() & ~ok
        else:
            value, bad = _parse(rule, t, dep)
        absent = t.is_null()
    if rule.when:
        bad = bad | (absent & _holds(rule.when, parsed))
    elif rule.has_default:
        default: Any = today if rule.default == "today" else rule.default
        if rule.kind == "money" and default is not None:
            default = int(default * 100)
        if default is not None:
            value = pl.when(absent).then(pl.lit(default)).otherwise(value)
            value = value.cast(pl.Enum(list(rule.values))) if rule.kind == "enum" else value
    elif not rule.nullable:
        bad = bad | absent
    return value, bad


def _holds(when: tuple[tuple[str, Any], ...], parsed: dict[str, pl.Expr]) -> pl.Expr:
    """``engine.validation.rules.when_holds`` over parsed columns."""
    cond = pl.lit(True)
    for key, want in when:
        wanted = [norm(w) for w in (want if isinstance(want, tuple) else (want,))]
        cond = cond & parsed[key].cast(pl.Utf8).is_in(pl.Series(wanted, dtype=pl.Utf8).implode()).fill_null(False)
    return cond


def _member_fields(schema: RecordSchema) -> tuple[list[_Field], list[GroupRule]]:
    """A member's fields, each with its column (an object's fields flattened with their
    prefix, ``ability_assessment_adl_feeding``) and the innermost object it sits in."""
    groups = member_groups(schema)
    inner = {r.path: g.path for g in groups for r in g.entries if isinstance(r, FieldRule)}
    _, rules = schema_rules(schema)
    return [_Field(r, r.path.replace(".", "_"), inner.get(r.path, "")) for r in rules], groups


def _fields(schema: RecordSchema) -> tuple[list[_Field], list[str], list[_Field]]:
    household, _member_rules = schema_rules(schema)
    hh: list[_Field] = []
    groups: list[str] = []
    for spec, rules in household:
        if spec.kind == "group" and spec.nullable:
            groups.append(spec.name)
        for rule in rules:
            hh.append(
                _Field(rule, rule.path.replace(".", "_"), spec.name if spec.kind == "group" and spec.nullable else "")
            )
    return hh, groups, _member_fields(schema)[0]


def _given(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Whether a cell holds a value (a typed cell: whether it is not null; no text made)."""
    if column in frame.columns and frame.schema[column] != pl.Utf8 and _TEXT + column not in frame.columns:
        return pl.col(column).is_not_null()
    return cell_text(frame, column).is_not_null()


def _group_present(frame: pl.DataFrame, group: str, fields: list[_Field]) -> pl.Expr:
    cols = [_given(frame, f.column) for f in fields if f.group == group]
    marker = group_marker(group)
    if marker in frame.columns:
        cols.append(pl.col(marker).cast(pl.Utf8).fill_null("") != "")
    return pl.any_horizontal(cols) if cols else pl.lit(False)


def _parsed(
    frame: pl.DataFrame, fields: list[_Field], groups: list[str], today: dt.date
) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """Value expressions by output key, and each field's "this row is bad" expression."""
    values: dict[str, pl.Expr] = {}
    bads: dict[str, pl.Expr] = {}
    present = {g: _group_present(frame, g, fields) for g in groups}
    for f in sorted(fields, key=lambda f: bool(f.rule.by or f.rule.when)):
        value, bad = _field(f, frame, values, today)
        if f.group:
            value, bad = pl.when(present[f.group]).then(value), present[f.group] & bad
        values[f.rule.path] = value
        bads[f.rule.path] = bad
    for g in groups:
        values[g] = pl.when(present[g]).then(pl.lit(True))
    ordered = {f.rule.path: values[f.rule.path] for f in fields} | {g: values[g] for g in groups}
    return ordered, {f.rule.path: bads[f.rule.path] for f in fields}


def _member_parsed(
    frame: pl.DataFrame, fields: list[_Field], groups: list[GroupRule], today: dt.date
) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """``_parsed`` for a member: a field inside an object is read only where the object is
    given (a marker from JSON, or any cell of it); an absent object is null, or bad where it
    is required (``GroupRule.missing``), like the row validator's."""
    present: dict[str, pl.Expr] = {}
    for g in groups:
        inside = set(g.paths())
        cols = [_given(frame, f.column) for f in fields if f.rule.path in inside]
        cols += [pl.col(group_marker(p)).is_not_null() for p in inside if group_marker(p) in frame.columns]
        present[g.path] = pl.any_horizontal(cols) if cols else pl.lit(False)
    values: dict[str, pl.Expr] = {}
    bads: dict[str, pl.Expr] = {}
    for f in sorted(fields, key=lambda f: bool(f.rule.by or f.rule.when)):
        value, bad = _field(f, frame, values, today)
        if f.group:
            value, bad = pl.when(present[f.group]).then(value), present[f.group] & bad
        values[f.rule.path] = value
        bads[f.rule.path] = bad
    parent = {e.path: g.path for g in groups for e in g.entries if isinstance(e, GroupRule)}
    for g in groups:
        values[g.path] = pl.when(present[g.path]).then(pl.lit(True))
    for g in groups:
        above = present[parent[g.path]] if g.path in parent else pl.lit(True)
        required = _holds(g.when, values) if g.when else pl.lit(not g.nullable)
        bads[g.path] = above & ~present[g.path] & required
    ordered = {f.rule.path: values[f.rule.path] for f in fields} | {g.path: values[g.path] for g in groups}
    return ordered, {k: bads[k] for k in [*(f.rule.path for f in fields), *(g.path for g in groups)]}


def _unknown(frame: pl.DataFrame, known: set[str]) -> list[str]:
    return [c for c in frame.columns if c not in known and not c.startswith("~")]


def _present_in(frame: pl.DataFrame, columns: list[str]) -> pl.Expr:
    return pl.any_horizontal([_given(frame, c) for c in columns]) if columns else pl.lit(False)


def validate_columns(
    schema: RecordSchema,
    households: pl.DataFrame,
    members: pl.DataFrame,
    today: dt.date,
    decision_date: dt.date | None = None,
    coverage: Coverage | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(households, members with `_h`, rejects): see ``engine.vector.caseload.validate_frames``."""
    coverage = coverage or schema.coverage
    hh_fields, groups, mm_fields = _fields(schema)
    id_key, members_field = schema.id_field, schema.members_field
    if decision_date is not None:
        households = households.with_columns(pl.lit(decision_date).alias("decision_date"))
    households = id_helpers(with_texts(households.with_row_index("~i")), hh_fields)
    members = id_helpers(with_texts(members), mm_fields).with_row_index("~j")
    json_origin = LINK in households.columns and LINK in members.columns
    h_unknown = _unknown(households, {f.column for f in hh_fields})
    m_unknown = _unknown(members, {f.column for f in mm_fields} | {id_key})
    h_values, h_bads = _parsed(households, hh_fields, groups, today)
    # lazily, so Polars computes each shared sub-expression (a parsed value, an ID's digits) once
    h = (
        households.lazy()
        .select(
            pl.col("~i"),
            cell_text(households, id_key).alias("~id"),
            *(v.alias(k) for k, v in h_values.items()),
            *(b.fill_null(False).alias("~b:" + k) for k, b in h_bads.items()),
            *(_given(households, c).alias("~u:" + c) for c in h_unknown),
            *([pl.col(LINK)] if json_origin else []),
            *([pl.col(REPEATED).fill_null(False)] if REPEATED in households.columns else []),
        )
        .collect()
    )
    # members: link each to its household row, number them within it
    link = LINK if json_origin else "~id"
    m_values, m_bads = _member_parsed(members, mm_fields, member_groups(schema), today)
    m = (
        members.lazy()
        .select(
            pl.col("~j"),
            (pl.col(LINK) if json_origin else cell_text(members, id_key)).alias("~link"),
            cell_text(members, id_key).alias("~hid"),
            *(v.alias(k) for k, v in m_values.items()),
            *(b.fill_null(False).alias("~b:" + k) for k, b in m_bads.items()),
            *(_given(members, c).alias("~u:" + c) for c in m_unknown),
        )
        .collect()
    )
    repeated_id = h.get_column("~id").is_duplicated()
    m, orphans = link_members(h, m, link, unique=json_origin or not repeated_id.any())
    rules = [f.rule for f in mm_fields]
    for ref in {r for rule in cross_rules(rules) for r in (rule.date_lo, rule.date_hi) if r is not None}:
        if ref not in m.columns and ref in h.columns:  # the household's value beside each member
            m = m.with_columns(h.get_column(ref).gather(m.get_column(MEMBER_OF)).alias(ref))
    m = cross_flagged(m, h, rules)
    reasons = all_field_reasons(schema, households, members, h, m, h_unknown, m_unknown, json_origin, today)
    again = pl.lit(repeated_id) | (pl.col(REPEATED) if REPEATED in h.columns else False)
    repeated = h.filter(pl.col("~id").is_not_null() & again)
    with_members = m.get_column(MEMBER_OF).unique().implode()
    reasons += [
        coverage_reasons(h, coverage),
        members_max_reasons(m, schema.members_max(), members_field),
        repeated.select("~i", pl.col("~id").alias("household_id"), pl.lit(id_key).alias("field"),
                        pl.lit(say("repeated_household")).alias("reason")),
        h.filter(~pl.col("~i").is_in(with_members)).select(
            "~i", pl.col("~id").alias("household_id"), pl.lit(members_field).alias("field"),
            pl.lit(say("members")).alias("reason")
        ),
    ]  # fmt: skip
    found = pl.concat([r.cast(REASONS) for r in reasons], how="vertical")
    if SHAPE in households.columns:  # a household of the wrong shape is rejected for its shape alone
        shaped = households.filter(pl.col(SHAPE).is_not_null()).select("~i", SHAPE).join(h.select("~i", "~id"), on="~i")
        rows = [(i, hid, f, r) for i, text, hid in shaped.iter_rows() for f, r in json.loads(text)]
        # the row validator's reasons hold "repeated" (the flattening supposed it) when it got
        # past the shape checks: kept where the ID is repeated indeed
        seen_again = set(repeated.get_column("~i").to_list())
        said = (id_key, say("repeated_household"))
        rows = [r for r in rows if (r[2], r[3]) != said or r[0] in seen_again]
        found = pl.concat([found.filter(~pl.col("~i").is_in(shaped.get_column("~i").implode())), reasons_frame(rows)])
    found = found.sort("~i", maintain_order=True)
    rejects = [found.drop("~i")]
    if orphans.height:
        rejects.append(
            orphans.select(
                pl.col("~hid").alias("household_id"),
                pl.lit(id_key).alias("field"),
                pl.lit(say("orphan")).alias("reason"),
            )
        )
    keep = np.ones(h.height, dtype=bool)
    keep[found.get_column("~i").to_numpy()] = False
    good_h = h.filter(keep)
    of = m.get_column(MEMBER_OF).to_numpy()
    kept = keep[of]
    good_m = (
        m.filter(kept)
        .select(*m_values)
        .with_columns(pl.Series("_h", (np.cumsum(keep, dtype=np.int64) - 1)[of[kept]], dtype=pl.UInt32))
    )
    return good_h.select(*h_values), good_m, pl.concat(rejects, how="vertical")
