"""Which ruleset decides a caseload: the one in force on its rows' decision dates."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from api.by_date import caseload_dates, ruleset_for_dates
from engine import FieldProblem, InputError

TODAY = dt.date(2026, 11, 25)
# version 1 from 1900, version 2 from 2019-09-01; nothing before 1900
_FROM = {1: dt.date(1900, 1, 1), 2: dt.date(2019, 9, 1)}


def _in_force(day: dt.date) -> int:
    found = [rid for rid, start in _FROM.items() if start <= day]
    if not found:
        raise InputError([FieldProblem("decision_date", f"no published ruleset is in force on {day}")])
    return max(found, key=lambda rid: _FROM[rid])


def _pick(*days: dt.date | None) -> int:
    return ruleset_for_dates(days, _in_force, lambda rid: f"v{rid}", TODAY)


def test_one_period_picks_its_ruleset_not_todays() -> None:
    assert _pick(dt.date(2019, 8, 1), dt.date(2019, 8, 31)) == 1
    assert _pick(None) == 2  # no date: decided today
    assert _pick(dt.date(1800, 1, 1), dt.date(2019, 8, 1)) == 1  # a row with no ruleset is rejected anyway


def test_two_periods_are_refused_naming_both() -> None:
    with pytest.raises(InputError) as caught:
        _pick(dt.date(2019, 8, 1), dt.date(2019, 9, 15))
    message = caught.value.problems[0].message
    assert "v1 (id 1) for 2019-08-01…2019-08-01" in message
    assert "v2 (id 2) for 2019-09-15…2019-09-15" in message


def test_caseload_dates_reads_jsonl_without_deciding(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    lines = [
        json.dumps({"household_id": "A", "decision_date": "2019-08-01"}),
        "{not json",
        json.dumps({"household_id": "B"}),
        json.dumps({"household_id": "C", "decision_date": "2019-W31-1"}),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    assert caseload_dates(path) == {dt.date(2019, 8, 1), None}


def test_a_caseload_is_split_by_the_ruleset_in_force_on_each_row(tmp_path: Path) -> None:
    from api.by_version import split_by_ruleset

    path = tmp_path / "c.jsonl"
    rows = [
        {"household_id": "A", "decision_date": "2019-08-01"},
        {"household_id": "B", "decision_date": "2020-03-01"},
        {"household_id": "C"},  # no date: decided today, under version 2
        {"household_id": "E", "decision_date": "2021-01-01"},
        {"household_id": "A", "decision_date": "2020-03-01"},  # a copy goes with its first: found repeated
        {"household_id": "D", "decision_date": "1800-01-01"},  # no version: rejected in the largest part
    ]
    path.write_text("\n".join([*(json.dumps(r) for r in rows), "{not json"]) + "\n", encoding="utf-8")
    parts = split_by_ruleset(path, _in_force, TODAY, tmp_path / "parts")
    ids = {rid: [json.loads(x).get("household_id") if x.startswith("{\"") else x for x in p.read_text().splitlines()]
           for rid, p in parts.items()}  # fmt: skip
    assert ids == {1: ["A", "A"], 2: ["B", "C", "E", "D", "{not json"]}


def test_a_folder_of_tables_is_split_with_its_members(tmp_path: Path) -> None:
    import polars as pl

    from api.by_version import split_by_ruleset

    (tmp_path / "in").mkdir()
    days = ["2019-08-01", "2020-03-01", "2020-04-01"]
    pl.DataFrame({"household_id": ["A", "B", "C"], "decision_date": days}).write_csv(tmp_path / "in" / "households.csv")
    pl.DataFrame({"household_id": ["A", "B", "B", "Z"], "person_id": ["1", "2", "3", "4"]}).write_csv(
        tmp_path / "in" / "members.csv"
    )
    parts = split_by_ruleset(tmp_path / "in", _in_force, TODAY, tmp_path / "parts")
    members = {
        rid: pl.read_csv(p / "members.csv", infer_schema=False)["person_id"].to_list() for rid, p in parts.items()
    }
    assert members == {1: ["1"], 2: ["2", "3", "4"]}  # a member of no household goes with the rest: rejected there


def test_screening_summaries_are_joined_with_each_part_named(tmp_path: Path) -> None:
    import polars as pl

    from api.by_version import join_screenings

    parts = {}
    for rid, n in ((1, 2), (2, 1)):
        folder = tmp_path / f"p{rid}"
        folder.mkdir()
        pl.DataFrame({"household_id": [f"{rid}-{i}" for i in range(n)]}).write_parquet(folder / "decisions.parquet")
        pl.DataFrame({"household_id": ["x"], "reason": ["=bad"]}).write_parquet(folder / "rejects.parquet")
        summary = {"ruleset_version": f"v{rid}", "rows_in": n + 1, "decided": n, "rejected": 1}
        parts[rid] = (folder, {**summary, "statuses": {"s": {"ok": n}}, "monthly_paid_after": f"{n}.50"})
    joined = join_screenings(parts, tmp_path, "csv")
    assert (joined["rows_in"], joined["decided"], joined["rejected"]) == (5, 3, 2)
    assert joined["statuses"] == {"s": {"ok": 3}}
    assert joined["monthly_paid_after"] == "4.00"
    assert [p["ruleset_version"] for p in joined["rulesets"]] == ["v1", "v2"]
    assert "'=bad" in (tmp_path / "rejects.csv").read_text(encoding="utf-8")  # cells neutralised
