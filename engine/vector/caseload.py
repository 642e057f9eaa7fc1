"""Caseload tables (RECORDS.md): reading them, JSON Lines to tables, and validation.

Validation is the column validator of ``engine.validation.columns``, compiled from
``record.yaml`` like the row validator and kept identical to it: a household is rejected
here exactly when ``check`` rejects it alone, with the same fields and reasons.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import FieldProblem, InputError
from engine.messages import text as catalogue_text
from engine.record import FieldSpec, RecordSchema
from engine.types import BadValue, number_text, value_text
from engine.validation.columns import LINK, REJECT_SCHEMA, SHAPE, group_marker, validate_columns
from engine.validation.messages import say
from engine.validation.reasons import UNKNOWN_KEY
from engine.validation.rules import BadJson, Coverage, json_value

__all__ = [
    "REJECT_SCHEMA",
    "caseload_values",
    "flat_columns",
    "jsonl_to_tables",
    "load_households",
    "read_table",
    "tables_to_households",
    "validate_frames",
]


def flat_columns(schema: RecordSchema) -> tuple[dict[str, FieldSpec], dict[str, FieldSpec]]:
    """Table column name -> field spec, for the households and members tables."""
    hh: dict[str, FieldSpec] = {}
    for spec in schema.household:
        if spec.kind == "members":
            continue
        if spec.kind == "group":
            for sub in spec.fields:
                hh[sub.name.replace(".", "_")] = sub
            continue
        hh[spec.name] = spec
    mm: dict[str, FieldSpec] = {}
    for spec in schema.member:  # an object's fields flattened with their prefix, at any depth
        for leaf in _leaves(spec):
            mm[leaf.name.replace(".", "_")] = leaf
    return hh, mm


def _leaves(spec: FieldSpec) -> list[FieldSpec]:
    return [x for f in spec.fields for x in _leaves(f)] if spec.kind == "group" else [spec]


def _member_objects(schema: RecordSchema) -> dict[str, FieldSpec]:
    """A member's object fields by dotted path, at any depth."""
    return {g.name: g for s in schema.member if s.kind == "group" for g in s.groups()}


def read_table(path: Path) -> pl.DataFrame:
    """One table from Parquet, CSV (UTF-8, header) or XLSX (first sheet)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if suffix == ".xlsx":
        return pl.read_excel(path, engine="openpyxl", infer_schema_length=0)
    raise InputError([FieldProblem(str(path), catalogue_text("input.table_format", "en"))])


def _cell(v: Any) -> str | None:
    """A JSON value as a table cell: text as given, numbers and booleans as their text."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float | Decimal):
        return number_text(v)
    return json.dumps(v, ensure_ascii=False, default=str)  # only ever an unknown field's value


def _misshapen(obj: dict[str, Any], schema: RecordSchema, groups: set[str], top: frozenset[str]) -> bool:
    """Whether the row validator should word this object's problems: a problem of shape, or
    a key that would pose as one of the tables' own ``~`` columns."""
    member = schema.known["member"]
    for key, value in obj.items():
        if key.startswith("~"):
            return True
        if key in groups:
            if value is None:
                continue
            if not isinstance(value, dict):
                return True
            known = schema.known[key]
            if any(k.startswith("~") or (k in known and isinstance(v, dict | list)) for k, v in value.items()):
                return True
        elif key == schema.members_field:
            objects = _member_objects(schema)
            for m in value if isinstance(value, list) else ():
                if not isinstance(m, dict) or _misshapen_in(m, "", member, objects, schema):
                    return True
        elif key in top and isinstance(value, dict | list):
            return True
    return False


def _misshapen_in(
    obj: dict[str, Any], path: str, known: frozenset[str], objects: dict[str, FieldSpec], schema: RecordSchema
) -> bool:
    """A member, or an object inside it, with a problem of shape the row validator words."""
    for k, v in obj.items():
        if k.startswith("~"):
            return True
        inner = path + k
        if inner in objects:
            if v is None:
                continue
            if not isinstance(v, dict) or _misshapen_in(
                v, inner + ".", schema.known["member." + inner], objects, schema
            ):
                return True
        elif k in known and isinstance(v, dict | list):
            return True
    return False


def _flat_member(
    m: dict[str, Any], path: str, objects: dict[str, FieldSpec], known: frozenset[str], row: dict[str, Any]
) -> None:
    """A member's object into ``row``: its fields as ``a_b_c`` columns, a marker for every
    object given (even empty), an unknown key as ``a.b.key`` (named as the row validator names it)."""
    for k, v in m.items():
        if k.startswith("~"):
            continue
        inner = path + "." + k
        if inner in objects:
            if v is not None:
                row[group_marker(inner)] = "true"
                _flat_member(v, inner, objects, frozenset(f.key for f in objects[inner].fields), row)
        else:
            row[inner.replace(".", "_") if k in known else inner] = _cell(v)


def jsonl_to_tables(
    lines: Iterable[str], schema: RecordSchema, first_line: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Flatten household JSON objects into (households, members, rejects) tables of text values.

    Members are linked to their household by the line number (column ``~row``), so a
    household without or with a repeated ``household_id`` keeps its own members; a group
    object that was given, even empty, is marked (``~group:<name>``). A household with a
    problem of shape (a list where a value belongs, a member that is not an object) keeps
    only its ID and its reasons (``~shape``), which ``validate_frames`` reports.
    """
    groups = {s.name: s for s in schema.household if s.kind == "group"}
    objects = _member_objects(schema)
    again = say("repeated_household")
    top = frozenset(s.name for s in schema.household if s.kind not in ("group", "members"))
    households: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            obj = json_value(line, ints_as_text=True)
        except BadJson as exc:
            rejects.append({"household_id": f"(line {i})", "field": "(json)", "reason": str(exc)})
            continue
        if not isinstance(obj, dict):
            rejects.append({"household_id": f"(line {i})", "field": "(household)", "reason": say("household")})
            continue
        if _misshapen(obj, schema, set(groups), top):
            hid = obj.get(schema.id_field)
            text = _id_text(hid)
            try:
                # as if its ID were repeated: the reasons then say so where the row validator
                # would (past its shape checks), and the column validator keeps it if it is
                schema.validate(obj, repeated=frozenset({text}) if text else frozenset())
            except InputError as exc:
                reasons = [[p.field, p.message] for p in exc.problems]
                if any(r != [schema.id_field, again] for r in reasons):
                    # kept as a row, so that its household ID still counts as seen in this input
                    households.append(
                        {LINK: i, schema.id_field: _cell(hid) if text else None, SHAPE: json.dumps(reasons)}
                    )
                    continue
        row: dict[str, Any] = {LINK: i}
        for key, value in obj.items():
            if key.startswith("~"):
                continue  # null here: the row validator found nothing to say
            if key in groups:
                if value is None:
                    continue
                if groups[key].nullable:
                    row[group_marker(key)] = "true"
                known = schema.known[key]
                for sub, v in value.items():
                    if not sub.startswith("~"):
                        row[f"{key}_{sub}" if sub in known else f"{key}.{sub}"] = _cell(v)
            elif key == schema.members_field:
                if isinstance(value, list):
                    hid = _cell(obj.get(schema.id_field))
                    own = f"{key}.{schema.id_field}"  # a member's own `household_id` key is unknown
                    for m in value:
                        mrow: dict[str, Any] = {LINK: i}
                        for k, v in m.items():
                            if k in objects:
                                if v is not None:
                                    mrow[group_marker(k)] = "true"
                                    _flat_member(v, k, objects, schema.known["member." + k], mrow)
                            elif not k.startswith("~"):
                                mrow[own if k == schema.id_field else k] = _cell(v)
                        mrow[schema.id_field] = hid
                        members.append(mrow)
            else:
                # an unknown key is kept apart (".key"), so that it never poses as a table's
                # own column: `assets_houses` in JSON is an unknown field, not assets.houses
                row[key if key in top else UNKNOWN_KEY + key] = _cell(value)
        households.append(row)
    hh_cols, mm_cols = flat_columns(schema)
    # every batch has the declared columns, the link and the group markers; only unknown fields vary
    markers = {LINK} | {group_marker(g) for g, spec in groups.items() if spec.nullable}
    all_h = sorted({k for r in households for k in r} | set(hh_cols) | markers, key=lambda c: (c not in hh_cols, c))
    m_markers = {group_marker(g) for g in objects}
    all_m = sorted(
        {k for r in members for k in r} | set(mm_cols) | m_markers | {schema.id_field, LINK},
        key=lambda c: (c not in mm_cols, c),
    )
    return (
        pl.DataFrame(
            {c: [r.get(c) for r in households] for c in all_h},
            schema={c: pl.Int64 if c == LINK else pl.Utf8 for c in all_h},
        ),
        pl.DataFrame(
            {c: [r.get(c) for r in members] for c in all_m},
            schema={c: pl.Int64 if c == LINK else pl.Utf8 for c in all_m},
        ),
        pl.DataFrame(rejects, schema=REJECT_SCHEMA),
    )


def _id_text(v: Any) -> str | None:
    try:
        return value_text(v)
    except BadValue:
        return None


def tables_to_households(schema: RecordSchema, households: pl.DataFrame, members: pl.DataFrame) -> list[dict[str, Any]]:
    """Households and members tables back to household JSON objects (RECORDS.md)."""
    groups = [s for s in schema.household if s.kind == "group"]

    def plain(v: Any) -> Any:
        if isinstance(v, dt.date):
            return v.isoformat()
        if type(v).__name__ == "Decimal":
            return f"{v:.2f}"
        return v

    by_household: dict[str, list[dict[str, Any]]] = {}
    objects = [s for s in schema.member if s.kind == "group"]
    for row in members.iter_rows(named=True):
        hid = str(row.pop("household_id"))
        member = {g.key: _nest(g, row, plain) for g in objects}
        member.update({k: plain(v) for k, v in row.items() if v is not None})
        by_household.setdefault(hid, []).append(member)
    out = []
    for row in households.iter_rows(named=True):
        obj: dict[str, Any] = {}
        for g in groups:
            sub = {s.key: plain(row.pop(f"{g.name}_{s.key}", None)) for s in g.fields}
            present = {k: v for k, v in sub.items() if v is not None and v != ""}
            if present or not g.nullable:
                obj[g.name] = present
            else:
                obj[g.name] = None
        obj.update({k: plain(v) for k, v in row.items() if v is not None})
        obj["members"] = by_household.get(str(obj.get("household_id")), [])
        out.append(obj)
    return out


def _nest(group: FieldSpec, row: dict[str, Any], plain: Any) -> dict[str, Any] | None:
    """A member's object from its flattened columns (popped from ``row``); None when none is given."""
    out: dict[str, Any] = {}
    for f in group.fields:
        v = _nest(f, row, plain) if f.kind == "group" else plain(row.pop(f.name.replace(".", "_"), None))
        if v is not None and v != "":
            out[f.key] = v
    return out or None


def load_households(caseload: Path, schema: RecordSchema) -> list[dict[str, Any]]:
    """A caseload (.jsonl, or a folder with households and members tables) as household objects."""
    if caseload.is_dir():
        from engine.vector.screen import find_tables

        src = find_tables(caseload)
        return tables_to_households(schema, read_table(src.households), read_table(src.members))
    lines = caseload.read_text(encoding="utf-8").split("\n")  # only "\n" ends a line: U+2028 may be in a string
    out = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out.append(json_value(line))
            except BadJson as exc:  # the monitor's reference caseload must be whole: name the line
                raise InputError([FieldProblem(f"(line {number})", str(exc))]) from None
    return out


def caseload_values(caseload: Path, name: str) -> set[str | None]:
    """The distinct raw values of one household field over a caseload (.jsonl or tables), read
    without deciding: None for a row without it; lines that are not JSON objects are skipped."""
    if caseload.is_dir():
        from engine.vector.screen import find_tables

        households = read_table(find_tables(caseload).households)
        if name not in households.columns:
            return {None}
        return set(households.get_column(name).cast(pl.Utf8).unique().to_list())
    found: set[str | None] = set()
    with caseload.open(encoding="utf-8", errors="replace", newline="") as f:
        for line in f:
            try:
                obj = json_value(line) if line.strip() else None
            except BadJson:
                continue
            if isinstance(obj, dict):
                value = obj.get(name)
                found.add(None if value is None else str(value))
    return found


def validate_frames(
    schema: RecordSchema,
    households: pl.DataFrame,
    members: pl.DataFrame,
    today: dt.date,
    decision_date: dt.date | None = None,
    *,
    coverage: Coverage | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(households, members with `_h`, rejects) ready for the vectorized backend.

    A household with any problem is rejected whole, with every reason; one bad row never
    stops the run. ``coverage`` (default: the one bound to the schema) rejects rows whose
    region or decision date has no parameters in force.
    """
    return validate_columns(schema, households, members, today, decision_date, coverage)
