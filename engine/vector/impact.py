"""What a rule change does to a caseload: the caseload is read and validated once, decided
under the base and the head ruleset, and compared: status transitions, changed households
(with the rules and parameter versions that differ), the budget, and an HTML report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import FieldProblem, InputError, did_you_mean
from engine.evaluator import Evaluator
from engine.ruleset import Ruleset
from engine.types import BadValue, parse_value
from engine.vector import ColumnRun, decide_frames, duplicate_persons, validate_frames
from engine.vector.caseload import jsonl_to_tables, read_table
from engine.vector.screen import find_tables

__all__ = ["impact", "impact_frames", "rejected_ids", "with_parameter", "with_settings", "write_impact"]

_SETTING = re.compile(r"([\w.]+)=([^@]+)@(\d{4}-\d{2}-\d{2})")

_IGNORED = ("ruleset_version", "reasons")


def _labels(ruleset: Ruleset, key: str) -> dict[str, str]:
    """Decision fields to report, with "中文 English" labels (rules/ruleset.yaml `reports`)."""
    section = ruleset.reports.get(key) or {}
    return {name: f"{t.get('zh', '')} {t.get('en', '')}".strip() for name, t in section.items()}


def with_parameter(ruleset: Ruleset, name: str, value: str, start: dt.date, region: str | None = None) -> Ruleset:
    """A copy of ``ruleset`` where ``name`` takes ``value`` from ``start`` in ``region``
    (default: the default region); later versions stay. ``--set dibao.standard=850@2019-07-01``."""
    p = ruleset.parameters.get(name)
    if p is None:
        raise InputError([FieldProblem("--set", f"unknown parameter `{name}`{did_you_mean(name, ruleset.parameters)}")])
    kind = p.type.kind
    try:
        parsed: Any = parse_value(kind, value) if kind in ("money", "int", "decimal", "bool", "date", "str") else value
    except BadValue as exc:
        raise InputError([FieldProblem("--set", f"{name}: {exc}")]) from None
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
        raise InputError([FieldProblem("--set", f"{name} has no values to replace in region {region}")])
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
            raise InputError([FieldProblem(field.format(i=i), f"`{item}` is not PARAM=VALUE@YYYY-MM-DD")])
        ruleset = with_parameter(ruleset, m.group(1), m.group(2), dt.date.fromisoformat(m.group(3)))
    return ruleset


def _read(caseload: Path, ruleset: Ruleset) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The households and members, members in their households' order. From JSON Lines they
    are linked by line (``~row``) and keep the group markers, as the validator expects."""
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
        return hh, mm
    with caseload.open(encoding="utf-8") as f:
        hh, mm, _ = jsonl_to_tables(f, ruleset.record)
    return hh, mm


def _run(ev: Evaluator, h: pl.DataFrame, m: pl.DataFrame, dups: frozenset[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    registries = {name: r.keys for name, r in ev.registries.by_name.items()}
    for name, spec in ev.ruleset.registries.items():
        if spec.computed:
            registries[name] = registries.get(name, frozenset()) | dups
    run = ColumnRun(ev.ruleset, ev.params, h, m, registries)
    decisions, _ = decide_frames(ev, run)
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
    return decisions, extra


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
) -> dict[str, Any]:
    """Write transitions.csv, changes.<fmt>, budget.csv and report.html to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    hh, mm = _read(caseload, base.ruleset)
    h, m, rejects = validate_frames(base.ruleset.record, hh, mm, today or dt.date.today(), decision_date)
    dups = duplicate_persons(m.select("person_id", pl.col("_h").alias("household_id")))
    joined = impact_frames(base, head, h, m, dups)
    return write_impact(base, head, joined, rejected_ids(rejects).len(), out, fmt)


def rejected_ids(rejects: pl.DataFrame) -> pl.Series:
    """The distinct household IDs of the rejects (a missing ID counts as one)."""
    return rejects.get_column("household_id").unique()


def impact_frames(
    base: Evaluator, head: Evaluator, h: pl.DataFrame, m: pl.DataFrame, dups: frozenset[str]
) -> pl.DataFrame:
    """Validated households decided under both rulesets, one row per household: the base's
    fields, the head's (``__head``), township, people, income figures, parameters changed."""
    b, extra = _run(base, h, m, dups)
    t, _ = _run(head, h, m, dups)
    people = m.group_by("_h").len().sort("_h").get_column("len")
    info = h.select("household_id", pl.col("township").fill_null("(未填)")).with_columns(people.alias("people"))
    joined = b.join(t, on="household_id", suffix="__head").join(info, on="household_id").join(extra, on="household_id")
    return joined.join(_parameter_differences(base, head, h), on="household_id", how="left")


def write_impact(
    base: Evaluator, head: Evaluator, joined: pl.DataFrame, rejected: int, out: Path, fmt: str
) -> dict[str, Any]:
    """The impact files from `impact_frames` (of the whole caseload, or its partitions put
    together); rows go by household ID, so the files do not depend on how the work was cut."""
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
    transitions.write_csv(out / "transitions.csv")
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
    _write(changes, out / f"changes.{fmt}", fmt)
    budget = _budget(joined, programs)
    budget.write_csv(out / "budget.csv")
    summary = {
        "base": base.ruleset.ruleset_version,
        "head": head.ruleset.ruleset_version,
        "households": joined.height,
        "rejected": rejected,
        "changed": changes.height,
    }
    (out / "report.html").write_text(
        _report(summary, transitions, budget, joined, statuses, programs), encoding="utf-8"
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
        total = frame.select(agg).with_columns(pl.lit("合计 Total").alias("township"))
        parts.append(
            pl.concat([per_town, total.select(per_town.columns)]).with_columns(
                pl.lit(field.removesuffix("_amount")).alias("program"), pl.lit(label).alias("program_label")
            )
        )
    budget = pl.concat(parts).select(
        "program", "program_label", "township", pl.exclude("program", "program_label", "township")
    )
    return budget.with_columns((pl.col("amount_head") - pl.col("amount_base")).alias("amount_change"))


def _write(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "xlsx":
        frame.write_excel(path)
    else:
        frame.write_csv(path)


# ---------------------------------------------------------------- the report


def _bars(title: str, items: Sequence[tuple[str, Sequence[tuple[str, Any, str]]]], chart_id: str) -> str:
    """A grouped horizontal bar chart as inline SVG; every bar carries its number."""
    values = [float(v) for _, bars in items for _, v, _ in bars] or [1.0]
    top = max(max(values), 1.0)
    row_h, width, left = 18, 520, 170
    height = sum(len(bars) * row_h + 10 for _, bars in items) + 30
    out = [
        f'<figure id="{chart_id}"><figcaption>{html.escape(title)}</figcaption>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 140}" height="{height}" role="img">',
    ]
    y = 20
    for label, bars in items:
        out.append(f'<text x="0" y="{y + 12}" class="group">{html.escape(label)}</text>')
        for name, value, color in bars:
            w = 0 if top == 0 else max(1, int(width * float(value) / top)) if float(value) > 0 else 0
            out.append(
                f'<g class="bar" data-group="{html.escape(label)}" data-series="{html.escape(name)}" data-value="{value}">'
                f'<rect x="{left}" y="{y}" width="{w}" height="{row_h - 4}" fill="{color}"></rect>'
                f'<text x="{left + w + 4}" y="{y + 12}">{html.escape(name)} {value}</text></g>'
            )
            y += row_h
        y += 10
    out.append("</svg></figure>")
    return "\n".join(out)


def _table(frame: pl.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _report(
    summary: dict[str, Any],
    transitions: pl.DataFrame,
    budget: pl.DataFrame,
    joined: pl.DataFrame,
    statuses: dict[str, str],
    programs: dict[str, str],
) -> str:
    moved = transitions.filter(pl.col("base") != pl.col("head"))
    transition_items = [
        (
            f"{statuses[str(r['program'])]}: {r['base']} → {r['head']}",
            [("households", int(r["households"]), "#c0392b")],
        )
        for r in moved.to_dicts()
    ] or [("无变化 No change", [("households", 0, "#888")])]
    first = next(iter(programs), "").removesuffix("_amount")
    dibao = budget.filter((pl.col("program") == first) & (pl.col("township") != "合计 Total"))
    amount_items = [
        (str(r["township"]), [("base", r["amount_base"], "#7f8c8d"), ("head", r["amount_head"], "#2980b9")])
        for r in dibao.to_dicts()
    ]
    ratio = joined.filter(pl.col("_n") > 0).select((pl.col("_T") * 100 // (pl.col("_std") * pl.col("_n"))).alias("pct"))
    buckets = ratio.with_columns((pl.col("pct").clip(0, 300) // 25 * 25).alias("b")).group_by("b").len().sort("b")
    dist_items = [
        (
            f"{int(r['b'])}–{int(r['b']) + 24}% × 低保标准 standard",
            [("households", int(r["len"]), "#27ae60" if r["b"] < 100 else "#f39c12" if r["b"] < 150 else "#95a5a6")],
        )
        for r in buckets.to_dicts()
    ]
    first_status, second_status = [*statuses, "", ""][:2]
    near = joined.filter(pl.col("_n") > 0).with_columns(
        (pl.col("_T") - pl.col("_std") * pl.col("_n")).abs().alias("gap_standard_fen"),
        (pl.col("_T") - pl.col("_line") * pl.col("_n")).abs().alias("gap_line_fen"),
    )
    nearest_std = (
        near.sort("gap_standard_fen", maintain_order=True)
        .head(15)
        .select(
            "household_id",
            "township",
            (pl.col("gap_standard_fen") / 100).alias("与标准差距 gap to standard (元)"),
            pl.col(first_status),
            pl.col(first_status + "__head").alias(f"{first_status} (head)"),
        )
    )
    nearest_line = (
        near.sort("gap_line_fen", maintain_order=True)
        .head(15)
        .select(
            "household_id",
            "township",
            (pl.col("gap_line_fen") / 100).alias("与低收入线差距 gap to line (元)"),
            pl.col(second_status),
            pl.col(second_status + "__head").alias(f"{second_status} (head)"),
        )
    )
    style = "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}figure{margin:1.5em 0}figcaption{font-weight:bold}svg text{font-size:12px}"
    parts = [
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>政策影响评估 Impact report</title>",
        f"<style>{style}</style></head><body>",
        "<h1>政策影响评估 Impact of a rule change</h1>",
        f"<p>基准 Base: <code>{html.escape(summary['base'])}</code><br>调整 Head: <code>{html.escape(summary['head'])}</code><br>"
        f"户数 Households: {summary['households']}，变化 changed: {summary['changed']}，未能认定 rejected: {summary['rejected']}</p>",
        _bars("状态变化 Status transitions (households)", transition_items, "chart-transitions"),
        _bars(
            f"各区镇月支出 {programs.get(first + '_amount', first)} per township (元 yuan): 基准 base / 调整 head",
            amount_items,
            "chart-budget",
        ),
        _bars("人均收入分布 Per-capita income against the standard (基准 base)", dist_items, "chart-distribution"),
        "<h2>最接近低保标准的家庭 Households nearest the standard</h2>",
        _table(nearest_std, "nearest-standard"),
        "<h2>最接近低收入线的家庭 Households nearest the low-income line</h2>",
        _table(nearest_line, "nearest-line"),
        "<h2>状态变化 Transitions</h2>",
        _table(transitions, "transitions"),
        "<h2>预算 Budget</h2>",
        _table(budget, "budget"),
        "</body></html>",
    ]
    return "\n".join(parts)
