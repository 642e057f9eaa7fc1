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
