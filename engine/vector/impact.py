"""What a rule change does to a caseload: the caseload is read and validated once, decided
under the base and the head ruleset, and compared: status transitions, changed households
(with the rules and parameter versions that differ), the budget, and an HTML report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.cells import safe_frame
from engine.errors import FieldProblem, InputError, did_you_mean
from engine.evaluator import Evaluator
from engine.messages import text as catalogue_text
from engine.ruleset import Ruleset
from engine.spreadsheet import for_people, write_xlsx
from engine.types import BadValue, parse_value
from engine.vector import ColumnRun, decide_frames, duplicate_persons, impact_report, validate_frames
from engine.vector.caseload import REJECT_SCHEMA, jsonl_to_tables, read_table
from engine.vector.screen import find_tables

__all__ = ["impact", "impact_frames", "rejected_ids", "with_parameter", "with_settings", "write_impact"]

_SETTING = re.compile(r"([\w.]+)=([^@]+)@(\d{4}-\d{2}-\d{2})")

_IGNORED = ("ruleset_version", "reasons")


def _labels(ruleset: Ruleset, key: str) -> dict[str, str]:
    """Decision fields to report, with "中文 English" labels (rules/ruleset.yaml `reports`)."""
    section = ruleset.reports.get(key) or {}
    return {name: f"{t.get('zh', '')} {t.get('en', '')}".strip() for name, t in section.items()}


def _code_labels(ruleset: Ruleset, fields: dict[str, str]) -> dict[str, dict[str, str]]:
    """The codes of these decision fields as "中文 English" (rules/ruleset.yaml `labels`)."""
    out: dict[str, dict[str, str]] = {}
    for name in fields:
        values = (ruleset.labels.get(name) or {}).get("values") or {}
        out[name] = {code: f"{t.get('zh', '')} {t.get('en', '')}".strip() for code, t in values.items()}
    return out


def with_parameter(ruleset: Ruleset, name: str, value: str, start: dt.date, region: str | None = None) -> Ruleset:
    """A copy of ``ruleset`` where ``name`` takes ``value`` from ``start`` in ``region``
    (default: the default region); later versions stay. ``--set dibao.standard=850@2019-07-01``."""
    p = ruleset.parameters.get(name)
    if p is None:
        raise InputError(
            [
                FieldProblem(
                    "--set",
                    catalogue_text(
                        "input.unknown_parameter", "en", name=name, hint=did_you_mean(name, ruleset.parameters)
                    ),
                )
            ]
        )
    kind = p.type.kind
    try:
        parsed: Any = parse_value(kind, value) if kind in ("money", "int", "decimal", "bool", "date", "str") else value
    except BadValue as exc:
        raise InputError(
            [FieldProblem("--set", catalogue_text("input.setting_value", "en", name=name, why=exc))]
        ) from None
    region = region or ruleset.default_region
    regions = dict(p.regions)
    base = list(regions.get(region, regions.get("*", [])))
    template = base[0] if base else None
    new_version = (
        dataclasses.replace(
            template,
            start=start,
            value=parsed,
            formula=None,
            formula_text="",
            reference=f"what-if: {name}={value}@{start}",
        )
        if template
        else None
    )
    if new_version is None:
        raise InputError(
            [FieldProblem("--set", catalogue_text("input.setting_region", "en", name=name, region=region))]
        )
    regions[region] = sorted([v for v in base if v.start != start] + [new_version], key=lambda v: v.start)
    params = dict(ruleset.parameters)
    params[name] = dataclasses.replace(p, regions=regions)
    tag = f"{name}={value}@{start}/{region}"
    digest = hashlib.sha256((ruleset.digest + tag).encode()).hexdigest()
    return dataclasses.replace(ruleset, parameters=params, digest=digest, version=f"{ruleset.version}+set({tag})")


def with_settings(ruleset: Ruleset, settings: Sequence[str], field: str = "--set") -> Ruleset:
    """Apply `PARAM=VALUE@YYYY-MM-DD` what-ifs in order; a malformed one names ``field``
    (which may hold `{i}`, the item's position)."""
    for i, item in enumerate(settings):
        m = _SETTING.fullmatch(item)
        if not m:
            raise InputError([FieldProblem(field.format(i=i), catalogue_text("input.setting_shape", "en", item=item))])
        try:
            start = parse_value("date", m.group(3))
        except BadValue as exc:  # 2019-02-30 and the like: the field, not a 500
            raise InputError(
                [FieldProblem(field.format(i=i), catalogue_text("input.setting_date", "en", item=item, why=exc))]
            ) from None
        ruleset = with_parameter(ruleset, m.group(1), m.group(2), start)
    return ruleset


def _read(caseload: Path, ruleset: Ruleset) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The households and members, members in their households' order, and the lines that are
    no household at all (rejects). From JSON Lines they are linked by line (``~row``) and keep
    the group markers, as the validator expects."""
    if caseload.is_dir():
        src = find_tables(caseload)
        hh, mm = read_table(src.households), read_table(src.members)
        order = hh.select(pl.col("household_id").cast(pl.Utf8)).with_row_index("_r").unique("household_id")
        mm = (
            mm.with_columns(pl.col("household_id").cast(pl.Utf8))
            .join(order, on="household_id", how="left")
            .sort("_r", nulls_last=True, maintain_order=True)
            .drop("_r")
        )
        return hh, mm, pl.DataFrame(schema=REJECT_SCHEMA)
    with caseload.open(encoding="utf-8") as f:
        return jsonl_to_tables(f, ruleset.record)


def _run(
    ev: Evaluator, h: pl.DataFrame, m: pl.DataFrame, dups: frozenset[str]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    registries = {name: r.keys for name, r in ev.registries.by_name.items()}
    for name, spec in ev.ruleset.registries.items():
        if spec.computed:
            registries[name] = registries.get(name, frozenset()) | dups
    run = ColumnRun(ev.ruleset, ev.params, h, m, registries)
    decisions, undecided = decide_frames(ev, run)
    income = ev.ruleset.reports.get("income") or {}
    names = {
        "_T": income.get("total"),
        "_n": income.get("members"),
        "_std": income.get("standard"),
        "_line": income.get("line"),
    }
    for value in names.values():
        if value:
            run.ensure(str(value), "household")
    extra = run.hh.select(
        "household_id", *[(pl.col(str(v)) if v else pl.lit(None, dtype=pl.Int64)).alias(k) for k, v in names.items()]
    )
    return decisions, extra, undecided


def _side(undecided: pl.DataFrame, side: str) -> pl.DataFrame:
    return undecided.select(
        pl.col("household_id").cast(pl.Utf8), pl.col("field"), (pl.lit(f"{side}: ") + pl.col("reason")).alias("reason")
    )


def _unexplained(hh: pl.DataFrame, decided: pl.Series, rejects: pl.DataFrame) -> list[str]:
    """Households of the input neither decided nor named by a reject (must be none)."""
    ids = hh.select(pl.col("household_id").cast(pl.Utf8).str.strip_chars()).to_series()
    named = rejects.get_column("household_id").drop_nulls().str.strip_chars().implode()
    present = ids.drop_nulls().filter(ids.drop_nulls() != "")
    missing = present.filter(~present.is_in(decided.cast(pl.Utf8).implode()) & ~present.is_in(named))
    blank_rows = ids.len() - present.len()
    blank_reasons = rejects.filter(pl.col("household_id").is_null() | (pl.col("household_id") == "")).height
    out = missing.head(5).to_list()
    if blank_rows and not blank_reasons:
        out.append(f"{blank_rows} row(s) without a household_id")
    return out


def _yuan(fen_text: pl.Expr) -> pl.Expr:
    return fen_text.cast(pl.Decimal(20, 2))


def impact(
    base: Evaluator,
    head: Evaluator,
    caseload: Path,
    out: Path,
    *,
    decision_date: dt.date | None = None,
    fmt: str = "csv",
    today: dt.date | None = None,
    headers: str = "en",
) -> dict[str, Any]:
    """Write transitions.csv, changes.<fmt>, budget.csv, rejects.csv and report.html to ``out``;
    rows in = households decided + rejected, each reject with its reason. ``headers="zh"``:
    the tables' headers (and the rejects' reasons) in Chinese."""
    return impact_parts(
        [(base, head, caseload)], out, decision_date=decision_date, fmt=fmt, today=today, headers=headers
    )


def impact_parts(
    parts: Sequence[tuple[Evaluator, Evaluator, Path]],
    out: Path,
    *,
    decision_date: dt.date | None = None,
    fmt: str = "csv",
    today: dt.date | None = None,
    headers: str = "en",
) -> dict[str, Any]:
    """``impact`` of a caseload cut into parts, each compared under its own (base, head) pair
    (the ruleset in force on its rows' decision dates), written as one impact; with several
    parts the summary's ``base``/``head`` list each pair's versions and ``parts`` gives each
    part's versions and counts."""
    out.mkdir(parents=True, exist_ok=True)
    joined_parts: list[pl.DataFrame] = []
    reject_parts: list[pl.DataFrame] = []
    each: list[dict[str, Any]] = []
    rows_in = 0
    for base, head, caseload in parts:
        hh, mm, bad_lines = _read(caseload, base.ruleset)
        h, m, rejects = validate_frames(base.ruleset.record, hh, mm, today or dt.date.today(), decision_date)
        dups = duplicate_persons(m.select("person_id", pl.col("_h").alias("household_id")))
        joined, undecided = impact_frames(base, head, h, m, dups)
        # every input row is decided on both sides or rejected with its reason: none vanishes
        all_rejects = pl.concat(
            [
                bad_lines.select("household_id", "field", "reason"),
                rejects.select(pl.col("household_id").cast(pl.Utf8), "field", "reason"),
                undecided,
            ]
        )
        unexplained = _unexplained(hh, joined.get_column("household_id"), all_rejects)
        if unexplained:
            raise InputError([FieldProblem("household_id", catalogue_text("input.unexplained", "en", ids=unexplained))])
        part_rows = hh.height + bad_lines.height
        rows_in += part_rows
        joined_parts.append(joined)
        reject_parts.append(all_rejects)
        each.append(
            {
                "base": base.ruleset.ruleset_version,
                "head": head.ruleset.ruleset_version,
                "rows_in": part_rows,
                "households": joined.height,
            }
        )
    joined = pl.concat(joined_parts, how="diagonal_relaxed") if len(joined_parts) > 1 else joined_parts[0]
    write_rejects(pl.concat(reject_parts), out, parts[0][0].ruleset, headers)
    base, head, _ = parts[0]
    summary = write_impact(base, head, joined, rows_in - joined.height, out, fmt, headers)
    if len(parts) > 1:
        summary["base"] = ", ".join(dict.fromkeys(p["base"] for p in each))
        summary["head"] = ", ".join(dict.fromkeys(p["head"] for p in each))
        summary["parts"] = each
        (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def write_rejects(rejects: pl.DataFrame, out: Path, ruleset: Ruleset | None = None, headers: str = "en") -> None:
    """rejects.csv: every row not decided, with its field and reason, by household ID (so a
    run cut into partitions writes the same file)."""
    ordered = rejects.sort("household_id", nulls_last=True, maintain_order=True)
    for_people(safe_frame(ordered), ruleset, headers).write_csv(out / "rejects.csv")


def rejected_ids(rejects: pl.DataFrame) -> pl.Series:
    """The distinct household IDs of the rejects (a missing ID counts as one)."""
    return rejects.get_column("household_id").unique()


def impact_frames(
    base: Evaluator, head: Evaluator, h: pl.DataFrame, m: pl.DataFrame, dups: frozenset[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validated households decided under both rulesets, one row per household: the base's
    fields, the head's (``__head``), township, people, income figures, parameters changed;
    and the households either side could not decide (household_id, field, reason)."""
    b, extra, b_undecided = _run(base, h, m, dups)
    t, _, t_undecided = _run(head, h, m, dups)
    people = m.group_by("_h").len().sort("_h").get_column("len")
    info = h.select("household_id", pl.col("township").fill_null("(未填)")).with_columns(people.alias("people"))
    joined = b.join(t, on="household_id", suffix="__head").join(info, on="household_id").join(extra, on="household_id")
    joined = joined.join(_parameter_differences(base, head, h), on="household_id", how="left")
    return joined, pl.concat([_side(b_undecided, "base"), _side(t_undecided, "head")])


def write_impact(
    base: Evaluator, head: Evaluator, joined: pl.DataFrame, rejected: int, out: Path, fmt: str, headers: str = "en"
) -> dict[str, Any]:
    """The impact files from `impact_frames` (of the whole caseload, or its partitions put
    together); rows go by household ID, so the files do not depend on how the work was cut.
    ``rejected``: the input rows not decided (their reasons are in rejects.csv)."""
    out.mkdir(parents=True, exist_ok=True)
    joined = joined.sort("household_id", maintain_order=True)
    fields = [c for c in joined.columns if f"{c}__head" in joined.columns and c not in ("household_id", *_IGNORED)]
    # transitions
    statuses = _labels(base.ruleset, "statuses")
    programs = _labels(base.ruleset, "amounts")
    transitions = pl.concat(
        [
            joined.group_by(pl.col(f).alias("base"), pl.col(f + "__head").alias("head"))
            .len()
            .select(pl.lit(f).alias("program"), "base", "head", pl.col("len").alias("households"))
            for f in statuses
        ]
    ).sort("program", "base", "head")
    for_people(safe_frame(transitions), base.ruleset, headers).write_csv(out / "transitions.csv")
    # changed households, with what made the difference
    differs = pl.any_horizontal(
        [pl.col(f).cast(pl.Utf8).fill_null("") != pl.col(f + "__head").cast(pl.Utf8).fill_null("") for f in fields]
    )
    changed = joined.filter(differs)
    changes = changed.select(
        "household_id",
        "township",
        *[x for f in fields for x in (pl.col(f).alias(f"base_{f}"), pl.col(f + "__head").alias(f"head_{f}"))],
        _reason_diff().alias("rules_changed"),
        pl.col("parameters_changed").fill_null(""),
    )
    _write(changes, out / f"changes.{fmt}", fmt, base.ruleset, headers)
    budget = _budget(joined, programs)
    for_people(safe_frame(budget), base.ruleset, headers).write_csv(out / "budget.csv")
    summary = {
        "base": base.ruleset.ruleset_version,
        "head": head.ruleset.ruleset_version,
        "rows_in": joined.height + rejected,
        "households": joined.height,
        "rejected": rejected,
        "changed": changes.height,
    }
    (out / "report.html").write_text(
        impact_report.render(
            summary, transitions, budget, joined, statuses, programs, codes=_code_labels(base.ruleset, statuses)
        ),
        encoding="utf-8",
    )
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def _reason_diff() -> pl.Expr:
    base = pl.col("reasons").str.split(";")
    head = pl.col("reasons__head").str.split(";")
    gone = base.list.set_difference(head).list.eval(pl.lit("-") + pl.element())
    new = head.list.set_difference(base).list.eval(pl.lit("+") + pl.element())
    return pl.concat_list(gone, new).list.eval(pl.element().filter(pl.element().str.len_chars() > 1)).list.join(";")


def _parameter_differences(base: Evaluator, head: Evaluator, h: pl.DataFrame) -> pl.DataFrame:
    """Per household, the parameters whose value in force differs between base and head."""
    pairs = h.select("region", "decision_date").unique().rows()
    rows = []
    for region, on in pairs:
        _, b_uses = base.params.resolve(region, on)
        _, h_uses = head.params.resolve(region, on)
        hv = {u.name: u for u in h_uses}
        diff = [
            f"{u.name}:{u.as_dict()['value']}->{hv[u.name].as_dict()['value']}"
            for u in b_uses
            if u.name in hv and u.value != hv[u.name].value
        ]
        rows.append({"region": region, "decision_date": on, "parameters_changed": ";".join(diff)})
    frame = pl.DataFrame(rows, schema={"region": pl.Utf8, "decision_date": pl.Date, "parameters_changed": pl.Utf8})
    return (
        h.select("household_id", "region", "decision_date")
        .join(frame, on=["region", "decision_date"], how="left")
        .select("household_id", "parameters_changed")
    )


def _budget(joined: pl.DataFrame, programs: dict[str, str]) -> pl.DataFrame:
    parts = []
    for field, label in programs.items():
        frame = joined.select(
            "township",
            "people",
            _yuan(pl.col(field)).alias("base"),
            _yuan(pl.col(field + "__head")).alias("head"),
        )
        agg = [
            (pl.col("base") > 0).sum().alias("households_base"),
            (pl.col("head") > 0).sum().alias("households_head"),
            pl.when(pl.col("base") > 0).then(pl.col("people")).otherwise(0).sum().alias("people_base"),
            pl.when(pl.col("head") > 0).then(pl.col("people")).otherwise(0).sum().alias("people_head"),
            pl.col("base").sum().alias("amount_base"),
            pl.col("head").sum().alias("amount_head"),
        ]
        per_town = frame.group_by("township").agg(agg).sort("township")
        total = frame.select(agg).with_columns(pl.lit(impact_report.TOTAL).alias("township"))
        parts.append(
            pl.concat([per_town, total.select(per_town.columns)]).with_columns(
                pl.lit(field.removesuffix("_amount")).alias("program"), pl.lit(label).alias("program_label")
            )
        )
    budget = pl.concat(parts).select(
        "program", "program_label", "township", pl.exclude("program", "program_label", "township")
    )
    return budget.with_columns((pl.col("amount_head") - pl.col("amount_base")).alias("amount_change"))


def _write(frame: pl.DataFrame, path: Path, fmt: str, ruleset: Ruleset, headers: str) -> None:
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "xlsx":
        write_xlsx(frame, path, ruleset=ruleset, headers=headers, worksheet=path.stem)
    else:
        for_people(safe_frame(frame), ruleset, headers).write_csv(path)
