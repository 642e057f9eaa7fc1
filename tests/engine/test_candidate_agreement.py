"""The rule-driven candidate review agrees with the independent §11 oracle on generated
records and registries (Hypothesis, derandomized by the test profile), and a table of the
same records screened in bulk gives the same rows as deciding them one by one."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import SubjectEvaluator, load, registry_from_rows, screen_records
from engine.types import resident_id_check_digit
from fixtures import oracle_candidates as oracle

RULES = load(Path(__file__).resolve().parents[2] / "rules")
SPEC = RULES.record_types["candidate"]
CATEGORIES = [c for c, _ in oracle.TABLE]
DEPARTMENTS = sorted(set(oracle.DEPARTMENTS.values()))
# review dates around the change of list (2020-12-24) and from the first list on
REVIEW_DAYS = [
    dt.date(2019, 1, 1),
    dt.date(2019, 10, 10),
    dt.date(2020, 12, 23),
    dt.date(2020, 12, 24),
    dt.date(2021, 1, 10),
]


def _pid(birth: dt.date) -> str:
    s17 = f"320684{birth:%Y%m%d}019"
    return s17 + resident_id_check_digit(s17)


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], int | None]:
    day = draw(st.sampled_from(REVIEW_DAYS)) + dt.timedelta(days=draw(st.integers(0, 40)))
    subject = draw(st.sampled_from(["candidate", "sitting_member"]))
    birth = day - dt.timedelta(
        days=draw(st.sampled_from([17 * 365, 18 * 365 + 4, 18 * 365 + 30, 40 * 365])) + draw(st.integers(-3, 3))
    )
    election = day + dt.timedelta(days=draw(st.integers(0, 60))) if subject == "candidate" else None
    term = day - dt.timedelta(days=draw(st.integers(0, 2000))) if subject == "sitting_member" else None
    rec = {
        "candidate_id": "G-1",
        "region": "320684",
        "township": None,
        "village": None,
        "committee": draw(st.sampled_from(["villagers", "residents"])),
        "subject": subject,
        "person_id": _pid(birth),
        "name": None,
        "birth_date": birth.isoformat(),
        "registered_voter": draw(st.integers(0, 9)) > 0 if subject == "candidate" else None,
        "term_start": term.isoformat() if term else None,
        "review_batch_id": "B1",
        "review_date": day.isoformat(),
        "election_date": election.isoformat() if election else None,
    }
    records = []
    for _ in range(draw(st.integers(0, 6))):
        # starts and ends on and beside every boundary (k years before D, D, E), or anywhere
        years = draw(st.sampled_from([0, 1, 3, 3, 5, 8]))
        start = oracle._plus_months(day, -12 * years) + dt.timedelta(days=draw(st.integers(-2, 2)))
        if draw(st.booleans()):
            start = day + dt.timedelta(days=draw(st.integers(-4000, 5)))
        anchor = draw(st.sampled_from([day, election or day, oracle._plus_months(day, -60)]))
        end: dt.date | None = anchor + dt.timedelta(days=draw(st.integers(-1, 1)))
        if draw(st.booleans()):
            end = start + dt.timedelta(days=draw(st.integers(1, 3000)))
        if draw(st.integers(0, 3)) == 0 or (end is not None and end <= start):
            end = None
        records.append(
            {
                "person_id": rec["person_id"] if draw(st.integers(0, 5)) else _pid(dt.date(1960, 1, 1)),
                "category": draw(st.sampled_from(CATEGORIES)),
                "department": "d",
                "start_date": start.isoformat(),
                "end_date": end.isoformat() if end else None,
                "reference": "r",
            }
        )
    returns = [
        {
            "review_batch_id": draw(st.sampled_from(["B1", "B1", "B1", "B2"])),
            "department": d,
            "returned_on": (day + dt.timedelta(days=draw(st.sampled_from([-5, -1, 0, 0, 0, 1])))).isoformat(),
        }
        for d in DEPARTMENTS
        if draw(st.integers(0, 19))
    ]
    lookback = draw(st.sampled_from([None, 5]))
    return rec, records, returns, lookback


def _evaluator(records: list[dict[str, Any]], returns: list[dict[str, Any]], lookback: int | None) -> SubjectEvaluator:
    from engine.subjects.tests import _with_parameters

    spec = _with_parameters(SPEC, {"candidate.criminal_lookback_years": lookback}) if lookback else SPEC
    regs = {
        "review_records": registry_from_rows(spec, spec.registries["review_records"], records, "t"),
        "review_returns": registry_from_rows(spec, spec.registries["review_returns"], returns, "t"),
    }
    return SubjectEvaluator(spec, regs)


@settings(max_examples=800, deadline=None)
@given(cases())
def test_engine_agrees_with_oracle(
    case: tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], int | None],
) -> None:
    rec, records, returns, lookback = case
    got = _evaluator(records, returns, lookback).decide(rec).to_dict(explain=False)
    got["reasons"] = [r["id"] for r in got["reasons"]]
    want = oracle.review(rec, records, returns, lookback)
    assert {k: got[k] for k in want} == want


@settings(max_examples=10, deadline=None)
@given(st.lists(cases(), min_size=1, max_size=8))
def test_bulk_table_agrees_with_one_by_one(tmp_path_factory: Any, batch: list[Any]) -> None:
    """The same records as a CSV table screened in bulk give the rows decided one by one."""
    records = [r for _, rs, _, _ in batch for r in rs]
    returns = [r for _, _, rs, _ in batch for r in rs]
    ev = _evaluator(records, returns, None)
    rows = [{**rec, "candidate_id": f"G-{i}"} for i, (rec, _, _, _) in enumerate(batch)]
    folder = tmp_path_factory.mktemp("bulk")
    header = [f.name for f in SPEC.fields]
    lines = [",".join(header)] + [
        ",".join("" if r[h] is None else str(r[h]).lower() if isinstance(r[h], bool) else str(r[h]) for h in header)
        for r in rows
    ]
    (folder / "candidates.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = screen_records(ev, folder, folder / "out", "csv")
    assert summary["decided"] == len(rows)
    import polars as pl

    table = pl.read_csv(folder / "out" / "decisions.csv", infer_schema=False).fill_null("").to_dicts()
    one_by_one = [{k: _cell(v) for k, v in ev.decide(json.loads(json.dumps(r))).row().items()} for r in rows]
    assert table == one_by_one


def _cell(v: Any) -> str:
    return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
