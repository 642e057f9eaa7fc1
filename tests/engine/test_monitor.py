"""Event monitoring: durable_rules routes each event, nothing is lost, and the households
flagged with their new decisions equal a full re-screening of the updated caseload."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Evaluator, InputError, load, load_households
from engine.monitor import Monitor
from engine.vector import decide_caseload, jsonl_to_tables
from tests.conftest import FIXTURES, RULES
from tests.strategies import households

CASELOAD = [json.loads(line) for line in (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()]


def _person(i: int, m: int = 0) -> str:
    return str(CASELOAD[i]["members"][m]["person_id"])


def test_events_change_households_and_every_event_is_counted(evaluator: Evaluator) -> None:
    events = [
        {
            "event_id": "e1",
            "type": "income_changed",
            "person_id": _person(0),
            "date": "2019-07-15",
            "monthly_income": "3000.00",
        },
        {
            "event_id": "e1",
            "type": "income_changed",
            "person_id": _person(0),
            "date": "2019-07-15",
            "monthly_income": "3000.00",
        },
        {"event_id": "e2", "type": "death_registered", "person_id": _person(9), "date": "2019-07-20"},
        {"event_id": "e3", "type": "business_registered", "person_id": _person(3), "date": "2019-07-20"},
        {"event_id": "e4", "type": "house_registered", "person_id": "110105194912310021", "date": "2019-07-20"},
        {
            "event_id": "e5",
            "type": "vehicle_registered",
            "person_id": _person(1),
            "date": "2019-07-20",
            "colour": "red",
        },
        {"event_id": "e6", "type": "employment_started", "person_id": _person(2)},
    ]
    mon = Monitor(evaluator, copy.deepcopy(CASELOAD))
    result = mon.run([json.dumps(e) for e in events] + ["{oops"])
    assert result.summary() == {
        "events_read": 8,
        "applied": 3,
        "ignored_duplicates": 1,
        "rejected": 4,
        "households_changed": 3,
        "balanced": True,
    }
    changed = {f["household_id"]: f for f in result.findings}
    assert changed["HM-2019-000101"]["old"]["dibao_status"] == "eligible"
    assert changed["HM-2019-000101"]["dibao_status"] == "ineligible"
    assert changed["HM-2019-000101"]["event_ids"] == ["e1"]
    assert "paid_to_deceased" in changed["HM-2019-000110"]["findings"]
    assert (changed["HM-2019-000104"]["old"]["dibao_status"], changed["HM-2019-000104"]["low_income_status"]) == (
        "ineligible",
        "ineligible",
    )
    reasons = {r["event_id"]: r["field"] for r in result.rejected}
    assert reasons == {"e4": "person_id", "e5": "colour", "e6": "date", None: "(json)"}


def test_kin_filing_unblocks(evaluator: Evaluator) -> None:
    from engine import Registries

    regs = Registries.from_files(evaluator.ruleset, {"relatives": FIXTURES / "registries" / "relatives.csv"})
    mon = Monitor(evaluator.with_registries(regs), copy.deepcopy(CASELOAD))
    result = mon.run(
        [
            json.dumps(
                {"event_id": "k1", "type": "kin_filing_made", "household_id": "HM-2019-000109", "date": "2019-07-30"}
            )
        ]
    )
    assert [(f["household_id"], f["blocked"], f["kin_filed"]) for f in result.findings] == [
        ("HM-2019-000109", False, True)
    ]


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    caseload = [draw(households(hid=f"H-{i}", seq_base=i * 50)) for i in range(draw(st.integers(1, 5)))]
    people = [m["person_id"] for h in caseload for m in h["members"]]
    events = []
    for i in range(draw(st.integers(1, 8))):
        kind = draw(
            st.sampled_from(
                [
                    "death_registered",
                    "vehicle_registered",
                    "house_registered",
                    "business_registered",
                    "employment_started",
                    "income_changed",
                    "kin_filing_made",
                ]
            )
        )
        event: dict[str, Any] = {"event_id": f"e{draw(st.integers(0, i))}", "type": kind}
        if kind == "kin_filing_made":
            event["household_id"] = draw(st.sampled_from([h["household_id"] for h in caseload]))
        else:
            event["person_id"] = draw(st.sampled_from(people))
        on = dt.date.fromisoformat(caseload[0]["decision_date"])
        event["date"] = (on - dt.timedelta(days=draw(st.integers(-1, 30)))).isoformat()
        if kind in ("employment_started", "income_changed"):
            event["monthly_income"] = f"{draw(st.integers(0, 300000)) / 100:.2f}"
        events.append(event)
    return caseload, events


def _vector(evaluator: Evaluator, caseload: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    hh, mm, _ = jsonl_to_tables([json.dumps(h) for h in caseload], evaluator.ruleset.record)
    decisions, rejects = decide_caseload(evaluator, hh, mm, today=dt.date(2019, 8, 1))
    rows = {
        r["household_id"]: {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()}
        for r in decisions.to_dicts()
    }
    rows.update({hid: {"rejected": True} for hid in rejects.get_column("household_id").to_list()})
    return rows


@settings(max_examples=25, deadline=None)
@given(scenario())
def test_monitor_equals_full_rescreening(
    evaluator: Evaluator, case: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    caseload, events = case
    before = _vector(evaluator, caseload)
    mon = Monitor(evaluator, copy.deepcopy(caseload))
    result = mon.run([json.dumps(e) for e in events])
    assert result.summary()["balanced"]
    after = _vector(mon.current_evaluator(), list(mon.households.values()))
    expected = {
        hid
        for hid in after
        if {k: v for k, v in after[hid].items() if k != "reasons"}
        != {k: v for k, v in before[hid].items() if k != "reasons"}
    }
    assert {f["household_id"] for f in result.findings} == expected
    for f in result.findings:
        assert after[f["household_id"]]["dibao_amount"] == f["dibao_amount"]
        assert after[f["household_id"]]["findings"] == ";".join(f["findings"])


def test_cli_writes_findings_rejects_and_summary(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps(
            {
                "event_id": "x",
                "type": "income_changed",
                "person_id": _person(0),
                "date": "2019-07-01",
                "monthly_income": "5000",
            }
        )
        + "\nnope\n",
        encoding="utf-8",
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "api",
            "monitor",
            "--caseload",
            str(FIXTURES / "households.jsonl"),
            "--events",
            str(events),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))["applied"] == 1
    assert pl.read_ndjson(tmp_path / "o" / "findings.jsonl").get_column("household_id").to_list() == ["HM-2019-000101"]
    assert len((tmp_path / "o" / "rejected_events.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_deep_or_odd_event_lines_are_rejected_not_fatal(evaluator: Evaluator) -> None:
    """An event line nested past the JSON depth limit, or not JSON, is one rejected event."""
    mon = Monitor(evaluator, copy.deepcopy(CASELOAD))
    deep = '{"event_id": "d", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    result = mon.run([deep, "{oops"])
    assert result.read == 2
    assert [r["field"] for r in result.rejected] == ["(json)", "(json)"]


def test_a_bad_caseload_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "caseload.jsonl"
    path.write_text(json.dumps(CASELOAD[0]) + "\n" + "[" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_households(path, load(RULES).record)
    assert [p.field for p in err.value.problems] == ["(line 2)"]


def test_sample_events_file_covers_every_declared_event_and_is_accounted_for(evaluator: Evaluator) -> None:
    """fixtures/events.jsonl is what rules/README.md shows policy staff: every event type of
    rules/events.yaml appears, one repeat is ignored, one event lacking a field is rejected
    naming it, and every other event is applied."""
    lines = (FIXTURES / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert {e["type"] for e in events} == set(evaluator.ruleset.events)
    result = Monitor(evaluator, copy.deepcopy(CASELOAD)).run(lines)
    summary = result.summary()
    assert summary["balanced"] is True
    assert summary["events_read"] == len(lines)
    assert summary["ignored_duplicates"] == 1
    assert [(r["event_id"], r["field"]) for r in result.rejected] == [("EV-2019-0008", "monthly_income")]
    assert summary["applied"] == len(lines) - 2
    caused = {eid for f in result.findings for eid in f["event_ids"]}
    dead = next(e for e in events if e["type"] == "death_registered")
    assert dead["event_id"] in caused  # the death changes its household's decision
