"""Caseload tables (RECORDS.md) to validated engine frames, with a reject row for every problem.

Validation is column-wise and driven by ``record.yaml``, like the scalar validator: a
required field that is empty, a bad resident ID check digit, negative money or more than
two decimals, an unknown enumeration value, a member without a household, a household
without members. A household with any problem is rejected whole, with every reason.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import FieldProblem, InputError, did_you_mean
from engine.record import FieldSpec, RecordSchema

__all__ = [
    "REJECT_SCHEMA",
    "flat_columns",
    "jsonl_to_tables",
    "load_households",
    "read_table",
    "tables_to_households",
    "validate_frames",
]

REJECT_SCHEMA = {"household_id": pl.Utf8, "field": pl.Utf8, "reason": pl.Utf8}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MONEY = r"^[0-9]+(\.[0-9]{1,2})?$"


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
    mm = {spec.name: spec for spec in schema.member}
    return hh, mm


def read_table(path: Path) -> pl.DataFrame:
    """One table from Parquet, CSV (UTF-8, header) or XLSX (first sheet)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if suffix == ".xlsx":
        return pl.read_excel(path, engine="openpyxl", infer_schema_length=0)
    raise InputError([FieldProblem(str(path), "use a .parquet, .csv or .xlsx table")])


def jsonl_to_tables(
    lines: Iterable[str], schema: RecordSchema, first_line: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Flatten household JSON objects into (households, members, rejects) tables of text values."""
    hh_cols, mm_cols = flat_columns(schema)
    groups = {s.name for s in schema.household if s.kind == "group"}
    households: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_float=str, parse_int=str)
        except json.JSONDecodeError as exc:
            rejects.append({"household_id": f"(line {i})", "field": "(json)", "reason": str(exc)})
            continue
        if not isinstance(obj, dict):
            rejects.append({"household_id": f"(line {i})", "field": "(household)", "reason": "must be a JSON object"})
            continue
        row: dict[str, Any] = {}
        bad = False
        for key, value in obj.items():
            if key in groups:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    rejects.append(
                        {"household_id": str(obj.get("household_id")), "field": key, "reason": "must be an object"}
                    )
                    bad = True
                    continue
                for sub, v in value.items():
                    row[f"{key}_{sub}"] = v
            elif key != "members":
                row[key] = value
        if bad:
            continue
        households.append(row)
        for m in obj.get("members") or []:
            members.append(
                {"household_id": obj.get("household_id"), **m}
                if isinstance(m, dict)
                else {"household_id": obj.get("household_id")}
            )
    all_h = sorted({k for r in households for k in r} | set(hh_cols), key=lambda c: (c not in hh_cols, c))
    all_m = sorted(
        {k for r in members for k in r} | set(mm_cols) | {"household_id"}, key=lambda c: (c not in mm_cols, c)
    )
    return (
        pl.DataFrame({c: [_text(r.get(c)) for r in households] for c in all_h}, schema=dict.fromkeys(all_h, pl.Utf8)),
        pl.DataFrame({c: [_text(r.get(c)) for r in members] for c in all_m}, schema=dict.fromkeys(all_m, pl.Utf8)),
        pl.DataFrame(rejects, schema=REJECT_SCHEMA),
    )


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


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
    for row in members.iter_rows(named=True):
        hid = str(row.pop("household_id"))
        by_household.setdefault(hid, []).append({k: plain(v) for k, v in row.items() if v is not None})
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


def load_households(caseload: Path, schema: RecordSchema) -> list[dict[str, Any]]:
    """A caseload (.jsonl, or a folder with households and members tables) as household objects."""
    if caseload.is_dir():
        from engine.vector.screen import find_tables

        src = find_tables(caseload)
        return tables_to_households(schema, read_table(src.households), read_table(src.members))
    return [json.loads(line) for line in caseload.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------- column checks


def _as_text(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Utf8:
        return col.str.strip_chars()
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    return col.cast(pl.Utf8)


Check = tuple[pl.Expr, pl.Expr]  # (row is bad, message): messages are built for bad rows only


def _money(col: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, list[Check]]:
    """fen as Int64, and the checks."""
    if dtype.is_integer() or isinstance(dtype, pl.Decimal):
        fen = (col * 100).cast(pl.Int64)
        checks = [(col < 0, pl.format("must not be negative (got {})", col))]
        if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) > 2:
            checks.append((fen.cast(pl.Decimal(38, 2)) != col * 100, pl.lit("has more than two decimals")))
        return fen, checks
    text = _as_text(col, dtype)
    ok = text.str.contains(_MONEY)
    whole = text.str.extract(r"^([0-9]+)", 1).cast(pl.Int64, strict=False)
    frac = text.str.extract(r"\.([0-9]{1,2})$", 1).fill_null("0").str.pad_end(2, "0").cast(pl.Int64, strict=False)
    bad = text.is_not_null() & ~ok
    message = (
        pl.when(text.str.starts_with("-"))
        .then(pl.format("must not be negative (got '{}')", text))
        .otherwise(pl.format("must be an amount like \"1234.50\" with at most two decimals (got '{}')", text))
    )
    return pl.when(ok).then(whole * 100 + frac), [(bad, message)]


_CHECK_CODE = {c: i for i, c in enumerate(_ID_CHECK)}


_MONTH_DAYS = {1: 31, 2: 28, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def id_helpers(column: str, dtype: pl.DataType) -> list[pl.Expr]:
    """Columns to add before checking resident IDs: the text and its first 17 digits as an
    integer (reused by 17 digit extractions; Polars does not share them in an eager select)."""
    text = _as_text(pl.col(column), dtype).str.to_uppercase()
    return [text.alias(f"~id:{column}"), text.str.slice(0, 17).cast(pl.Int64, strict=False).alias(f"~body:{column}")]


def _resident_id_checks(column: str) -> tuple[pl.Expr, list[Check]]:
    text, body = pl.col(f"~id:{column}"), pl.col(f"~body:{column}")
    shape = text.str.contains(r"^[0-9]{17}[0-9X]$")
    total = pl.sum_horizontal([(body // 10 ** (16 - i)) % 10 * w for i, w in enumerate(_ID_WEIGHTS)])
    # the check character's value v (X = 10) satisfies (total + v) % 11 == 1
    last = text.str.slice(17, 1)
    v = pl.when(last == "X").then(10).otherwise(last.cast(pl.Int64, strict=False))
    ymd = (body // 1000) % 100_000_000
    y, m, d = ymd // 10_000, (ymd // 100) % 100, ymd % 100
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = m.replace_strict(list(_MONTH_DAYS), list(_MONTH_DAYS.values()), default=0, return_dtype=pl.Int64) + (
        (m == 2) & leap
    ).cast(pl.Int64)
    expected = pl.lit(pl.Series(list(_ID_CHECK))).implode().list.get(total % 11)
    return text, [
        (text.is_not_null() & ~shape, pl.lit("is not a valid resident ID: must be 17 digits followed by a digit or X")),
        (
            text.is_not_null() & shape & ((total + v) % 11 != 1),
            pl.format("is not a valid resident ID: check digit should be {}, not {}", expected, last),
        ),
        (
            text.is_not_null() & shape & ((d < 1) | (d > days)),
            pl.lit("is not a valid resident ID: birth date inside the ID is not a calendar date"),
        ),
    ]


def _bool(col: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, list[Check]]:
    if dtype == pl.Boolean:
        return col, []
    text = _as_text(col, dtype).str.to_lowercase()
    value = pl.when(text == "true").then(True).when(text == "false").then(False)
    return value, [(text.is_not_null() & value.is_null(), pl.format("must be true or false (got '{}')", text))]


def _date(col: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, list[Check]]:
    if dtype == pl.Date:
        return col, []
    if dtype == pl.Datetime:
        return col.dt.date(), []
    text = _as_text(col, dtype)
    value = text.str.to_date("%Y-%m-%d", strict=False)
    return value, [(text.is_not_null() & value.is_null(), pl.format("must be a date YYYY-MM-DD (got '{}')", text))]


def _int(col: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, list[Check]]:
    if dtype.is_integer():
        return col.cast(pl.Int64), []
    text = _as_text(col, dtype)
    value = text.cast(pl.Int64, strict=False)
    return value, [(text.is_not_null() & value.is_null(), pl.format("must be a whole number (got '{}')", text))]


def _str(col: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, list[Check]]:
    return _as_text(col, dtype), []


_PARSERS = {
    "money": _money,
    "bool": _bool,
    "date": _date,
    "int": _int,
    "str": _str,
    "enum": _str,
}


def enum_values(spec: FieldSpec) -> list[str]:
    """Every value an enumeration field may take."""
    if spec.values_by is not None:
        return sorted({v for vs in spec.values_by[1].values() for v in vs})
    return list(spec.values)


def _field(
    spec: FieldSpec, column: str, frame: pl.DataFrame, today: dt.date, siblings: dict[str, str]
) -> tuple[pl.Expr, list[Check]]:
    """(parsed value, checks) for one field spec read from ``column``."""
    if column not in frame.columns:
        raw: pl.Expr = pl.lit(None, dtype=pl.Utf8)
        dtype: pl.DataType = pl.Utf8()
    else:
        raw = pl.col(column)
        dtype = frame.schema[column]
        if dtype == pl.Utf8:
            raw = pl.when(raw.str.strip_chars() == "").then(None).otherwise(raw)
    if spec.kind == "resident_id":
        value, checks = _resident_id_checks(column)
    else:
        value, checks = _PARSERS[spec.kind](raw, dtype)
    if spec.kind == "enum":
        text = value
        value = text.cast(pl.Enum(enum_values(spec)), strict=False)
        if spec.values_by is not None:
            dep, table = spec.values_by
            dep_col = (
                pl.col(siblings[dep]).cast(pl.Utf8)
                if siblings.get(dep) in frame.columns
                else pl.lit(None, dtype=pl.Utf8)
            )
            allowed = pl.lit(False)
            for dep_value, vals in table.items():
                allowed = allowed | ((dep_col == dep_value) & text.is_in(list(vals)))
            checks.append(
                (
                    text.is_not_null() & dep_col.is_in(list(table)) & ~allowed.fill_null(False),
                    pl.format(
                        "must be one of {} for {} {} (got '{}')",
                        dep_col.replace_strict(list(table), [", ".join(v) for v in table.values()], default=""),
                        pl.lit(dep),
                        dep_col,
                        text,
                    ),
                )
            )
        else:
            checks.append(
                (
                    text.is_not_null() & value.is_null(),
                    pl.format("must be one of {} (got '{}')", pl.lit(", ".join(spec.values)), text),
                )
            )
    if spec.min is not None:
        checks.append(
            ((value < spec.min).fill_null(False), pl.format("must be at least {} (got {})", pl.lit(spec.min), value))
        )
    if spec.max is not None:
        checks.append(
            ((value > spec.max).fill_null(False), pl.format("must be at most {} (got {})", pl.lit(spec.max), value))
        )
    present = value.is_not_null() | raw.is_not_null()
    if spec.required_when:
        cond = pl.lit(True)
        for k, v in spec.required_when.items():
            dep_name = siblings.get(k, k)
            dep_col = pl.col(dep_name) if dep_name in frame.columns else pl.lit(None, dtype=pl.Utf8)
            cond = cond & (dep_col.cast(pl.Utf8) == str(v)).fill_null(False)
        cond_text = ", ".join(f"{k} is {v}" for k, v in spec.required_when.items())
        checks.append((cond & ~present, pl.lit(f"is required when {cond_text}")))
    elif spec.has_default:
        default: Any = today if spec.default == "today" else spec.default
        if spec.kind == "money" and default is not None:
            default = int(default * 100)
        value = value.fill_null(pl.lit(default)) if default is not None else value
    elif not spec.nullable:
        checks.append((~present, pl.lit("is required")))
    return value, [(mask.fill_null(False), message) for mask, message in checks]


def _unknown_columns(frame: pl.DataFrame, known: Iterable[str], table: str) -> None:
    known = list(known)
    extra = [c for c in frame.columns if c not in known]
    if extra:
        raise InputError([FieldProblem(f"{table}.{c}", "unknown column" + did_you_mean(c, known)) for c in extra])


def validate_frames(
    schema: RecordSchema,
    households: pl.DataFrame,
    members: pl.DataFrame,
    today: dt.date,
    decision_date: dt.date | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(households, members with `_h`, rejects) ready for the vectorized backend."""
    hh_cols, mm_cols = flat_columns(schema)
    _unknown_columns(households, hh_cols, "households")
    _unknown_columns(members, [*mm_cols, "household_id"], "members")
    if decision_date is not None:
        households = households.with_columns(pl.lit(decision_date).alias("decision_date"))
    households, members = _with_helpers(households, hh_cols), _with_helpers(members, mm_cols)
    nullable_groups = [s for s in schema.household if s.kind == "group" and s.nullable]
    h_values: list[pl.Expr] = []
    h_checks: list[tuple[str, pl.Expr, pl.Expr]] = []
    for column, spec in hh_cols.items():
        group = spec.name.split(".")[0] if "." in spec.name else ""
        siblings = {
            s.key: s.name.replace(".", "_") for s in hh_cols.values() if group and s.name.startswith(group + ".")
        }
        value, checks = _field(spec, column, households, today, siblings)
        if any(g.name == group for g in nullable_groups):
            present = _group_present(households, group, hh_cols)
            value = pl.when(present).then(value)
            checks = [(present & mask, message) for mask, message in checks]
        h_values.append(value.alias(spec.name))
        h_checks.extend((spec.name, mask, message) for mask, message in checks)
    for g in nullable_groups:
        h_values.append(pl.when(_group_present(households, g.name, hh_cols)).then(pl.lit(True)).alias(g.name))
    hid = pl.col("household_id").cast(pl.Utf8) if "household_id" in households.columns else pl.lit(None, dtype=pl.Utf8)
    h_parsed = households.select([hid.alias("__id"), *h_values])
    m_values: list[pl.Expr] = []
    m_checks: list[tuple[str, pl.Expr, pl.Expr]] = []
    for column, spec in mm_cols.items():
        value, checks = _field(spec, column, members, today, {})
        m_values.append(value.alias(spec.name))
        m_checks.extend((f"members.{spec.name}", mask, message) for mask, message in checks)
    mid = pl.col("household_id").cast(pl.Utf8)
    m_parsed = members.select([mid.alias("__hid"), *m_values])
    rejects = [_problems(households, hid, h_checks), _problems(members, mid, m_checks)]
    known = h_parsed.get_column("__id")
    orphans = m_parsed.filter(~pl.col("__hid").is_in(known.implode()))
    if orphans.height:
        rejects.append(
            orphans.select(
                pl.col("__hid").alias("household_id"),
                pl.lit("household_id").alias("field"),
                pl.lit("member without household").alias("reason"),
            )
        )
    counts = m_parsed.group_by("__hid").len()
    no_members = h_parsed.filter(~pl.col("__id").is_in(counts.get_column("__hid").implode()))
    if no_members.height:
        rejects.append(
            no_members.select(
                pl.col("__id").alias("household_id"),
                pl.lit("members").alias("field"),
                pl.lit("must be a non-empty list of members").alias("reason"),
            )
        )
    dup = h_parsed.group_by("__id").len().filter(pl.col("len") > 1)
    if dup.height:
        rejects.append(
            dup.select(
                pl.col("__id").alias("household_id"),
                pl.lit("household_id").alias("field"),
                pl.lit("appears more than once in the households table").alias("reason"),
            )
        )
    all_rejects = pl.concat(rejects, how="vertical") if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
    bad = all_rejects.get_column("household_id").unique()
    good_h = h_parsed.filter(~pl.col("__id").is_in(bad.implode()) & pl.col("__id").is_not_null()).drop("__id")
    good_m = (
        m_parsed.filter(pl.col("__hid").is_in(good_h.get_column("household_id").implode()))
        .join(good_h.select("household_id").with_row_index("_h"), left_on="__hid", right_on="household_id", how="left")
        .sort("_h", maintain_order=True)
        .drop("__hid")
    )
    return good_h, good_m, all_rejects


def _with_helpers(frame: pl.DataFrame, columns: dict[str, FieldSpec]) -> pl.DataFrame:
    helpers: list[pl.Expr] = []
    for column, spec in columns.items():
        if spec.kind != "resident_id":
            continue
        if column in frame.columns:
            helpers.extend(id_helpers(column, frame.schema[column]))
        else:
            helpers.extend(
                [
                    pl.lit(None, dtype=pl.Utf8).alias(f"~id:{column}"),
                    pl.lit(None, dtype=pl.Int64).alias(f"~body:{column}"),
                ]
            )
    return frame.with_columns(helpers) if helpers else frame


def _group_present(frame: pl.DataFrame, group: str, columns: dict[str, FieldSpec]) -> pl.Expr:
    cols = [c for c, s in columns.items() if s.name.startswith(group + ".") and c in frame.columns]
    if not cols:
        return pl.lit(False)
    return pl.any_horizontal(
        [pl.col(c).is_not_null() & (pl.col(c).cast(pl.Utf8).str.strip_chars() != "") for c in cols]
    )


def _problems(frame: pl.DataFrame, key: pl.Expr, checks: list[tuple[str, pl.Expr, pl.Expr]]) -> pl.DataFrame:
    """One reject row per failed check; messages are built only for the rows that failed."""
    if not checks:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    flagged = frame.with_columns([mask.alias(f"~c{i}") for i, (_, mask, _) in enumerate(checks)])
    bad = flagged.filter(pl.any_horizontal([pl.col(f"~c{i}") for i in range(len(checks))]))
    if bad.height == 0:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    parts = [
        bad.filter(pl.col(f"~c{i}")).select(
            key.alias("household_id"), pl.lit(field).alias("field"), message.cast(pl.Utf8).alias("reason")
        )
        for i, (field, _, message) in enumerate(checks)
    ]
    return pl.concat(parts, how="vertical")
