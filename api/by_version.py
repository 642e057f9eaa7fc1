"""A caseload whose rows fall under different ruleset versions by their decision dates, cut
into one caseload per version, and the screenings of the parts joined into one.

Each row goes to the version in force on its decision date (today for a row without one), as
``POST /v1/decisions`` would decide it alone. Rows that no version can decide (not JSON, a
date that is not a date, a date before every version) go to the largest part, whose
validation rejects them with their reasons, so rows in = decided + rejected still holds.
Every copy of a household ID goes to the part of its first copy, so a repeated ID is still
found and rejected as a whole caseload's screening rejects it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from api.by_date import day_of
from engine import BadJson, InputError, json_value

__all__ = ["join_screenings", "split_by_ruleset"]

_MONEY = re.compile(r"-?[0-9]+\.[0-9]{2}")


def _assign(
    rows: Iterable[tuple[Any, Any]], ruleset_for: Callable[[dt.date], int], today: dt.date
) -> tuple[list[int | None], int]:
    """Each row's ruleset id (None: none decides it), by (household ID, raw decision date);
    and the part that takes the undecidable rows (the largest)."""
    found: list[int | None] = []
    first: dict[str, int | None] = {}
    for hid, raw_day in rows:
        key = str(hid) if hid is not None else None
        if key is not None and key in first:
            found.append(first[key])
            continue
        day = day_of(raw_day) if raw_day is not None else today
        rid: int | None = None
        if day is not None:
            try:
                rid = ruleset_for(day)
            except InputError:
                rid = None
        if key is not None:
            first[key] = rid
        found.append(rid)
    counts = Counter(r for r in found if r is not None)
    default = counts.most_common(1)[0][0] if counts else ruleset_for(today)
    return found, default


def split_by_ruleset(
    source: Path, ruleset_for: Callable[[dt.date], int], today: dt.date, folder: Path
) -> dict[int, Path]:
    """The caseload ``source`` (.jsonl, or a folder of households and members tables) cut into
    ``folder``: ruleset id -> the caseload of the rows it decides."""
    folder.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        return _split_tables(source, ruleset_for, today, folder)
    lines = [x for x in source.read_text(encoding="utf-8").split("\n") if x.strip()]
    keys: list[tuple[Any, Any]] = []
    for line in lines:
        try:
            obj = json_value(line)
        except BadJson:  # this line is rejected wherever it goes
            obj = None
        keys.append((obj.get("household_id"), obj.get("decision_date")) if isinstance(obj, dict) else (None, "?"))
    rids, default = _assign(keys, ruleset_for, today)
    parts: dict[int, list[str]] = {}
    for line, rid in zip(lines, rids, strict=True):
        parts.setdefault(rid if rid is not None else default, []).append(line)
    out = {}
    for rid, part in sorted(parts.items()):
        path = folder / f"ruleset-{rid}.jsonl"
        path.write_text("".join(x + "\n" for x in part), encoding="utf-8")
        out[rid] = path
    return out


def _split_tables(source: Path, ruleset_for: Callable[[dt.date], int], today: dt.date, folder: Path) -> dict[int, Path]:
    import polars as pl

    from engine import find_tables, read_table

    tables = find_tables(source)
    hh, mm = read_table(tables.households), read_table(tables.members)
    ids = hh.get_column("household_id").cast(pl.Utf8).to_list() if "household_id" in hh.columns else [None] * hh.height
    days = (
        hh.get_column("decision_date").cast(pl.Utf8).to_list() if "decision_date" in hh.columns else [None] * hh.height
    )
    rids, default = _assign(zip(ids, days, strict=True), ruleset_for, today)
    chosen = [r if r is not None else default for r in rids]
    hh = hh.with_columns(pl.Series("_ruleset", chosen, dtype=pl.Int64))
    owner = hh.select(pl.col("household_id").cast(pl.Utf8), "_ruleset").unique("household_id", keep="first")
    mm = mm.with_columns(pl.col("household_id").cast(pl.Utf8)).join(owner, on="household_id", how="left")
    mm = mm.with_columns(pl.col("_ruleset").fill_null(default))  # members without a household: rejected there
    csv = tables.households.suffix.lower() == ".csv"
    out = {}
    for rid in sorted(set(chosen)):
        part = folder / f"ruleset-{rid}"
        part.mkdir(exist_ok=True)
        for name, frame in (("households", hh), ("members", mm)):
            rows = frame.filter(pl.col("_ruleset") == rid).drop("_ruleset")
            if csv:
                rows.write_csv(part / f"{name}.csv")
            else:
                rows.write_parquet(part / f"{name}.parquet")
        out[rid] = part
    return out


def _merge(a: Any, b: Any) -> Any:
    """Two parts' summary values as one: counts added, money added, tables merged."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}
    if isinstance(a, str) and isinstance(b, str) and _MONEY.fullmatch(a) and _MONEY.fullmatch(b):
        return f"{Decimal(a) + Decimal(b):.2f}"
    return a


def join_screenings(parts: dict[int, tuple[Path, dict[str, Any]]], out: Path, fmt: str) -> dict[str, Any]:
    """The screenings of the parts (each written as Parquet in its folder) as one screening in
    ``out``: decisions and rejects in ``fmt``, and a summary with each part's ruleset and counts."""
    import polars as pl

    from engine import safe_frame

    for name in ("decisions", "rejects"):
        frames = [pl.read_parquet(folder / f"{name}.parquet") for folder, _ in parts.values()]
        frame = pl.concat(frames, how="diagonal_relaxed")
        path = out / f"{name}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        if fmt == "parquet":
            frame.write_parquet(tmp)
        elif fmt == "csv":
            safe_frame(frame).write_csv(tmp)
        else:
            safe_frame(frame).write_excel(tmp, worksheet=name)
        tmp.replace(path)
    summaries = [summary for _, summary in parts.values()]
    joined: dict[str, Any] = summaries[0]
    for more in summaries[1:]:
        joined = {k: _merge(joined[k], more[k]) if k in more else joined[k] for k in joined}
    joined["ruleset_version"] = ", ".join(dict.fromkeys(str(s["ruleset_version"]) for s in summaries))
    joined["rulesets"] = [
        {
            "ruleset_id": rid,
            "ruleset_version": summary["ruleset_version"],
            "rows_in": summary["rows_in"],
            "decided": summary["decided"],
            "rejected": summary["rejected"],
        }
        for rid, (_, summary) in parts.items()
    ]
    (out / "summary.json").write_text(json.dumps(joined, ensure_ascii=False, indent=2), encoding="utf-8")
    return joined
