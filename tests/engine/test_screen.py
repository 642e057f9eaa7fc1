"""Bulk re-screening: rejects for every bad row, formats, resume, the row count invariant."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine import Evaluator
from engine.vector.screen import screen
from tests.conftest import FIXTURES

DATE = dt.date(2019, 8, 1)


def _tables(tmp: Path) -> Path:
    """The sample households as CSV tables, plus one bad row of each kind."""
    households: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    for line in (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines():
        h = json.loads(line)
        row = {k: v for k, v in h.items() if k not in ("members", "assets", "status", "request")}
        for group in ("assets", "status", "request"):
            for k, v in (h.get(group) or {}).items():
                row[f"{group}_{k}"] = v
        households.append(row)
        members.extend({"household_id": h["household_id"], **m} for m in h["members"])

    def clone(hid: str, new: str, **member_changes: Any) -> None:
        base = next(r for r in households if r["household_id"] == hid)
        households.append({**base, "household_id": new})
        for m in [m for m in members if m["household_id"] == hid]:
            members.append({**m, "household_id": new, **member_changes})

    clone("HM-2019-000101", "BAD-CHECK-DIGIT", person_id="320684196803120010")
    clone("HM-2019-000101", "BAD-NEGATIVE", monthly_income="-5.00")
    clone("HM-2019-000101", "BAD-ENUM", disability="sever")
    clone("HM-2019-000101", "BAD-MISSING", birth_date=None)
    households.append({**households[0], "household_id": "BAD-NO-MEMBERS"})
    members.append({**members[0], "household_id": "NO-SUCH-HOUSEHOLD"})
    folder = tmp / "caseload"
    folder.mkdir()
    pl.DataFrame(households, infer_schema_length=None).select(pl.all().cast(pl.Utf8)).write_csv(
        folder / "households.csv"
    )
    pl.DataFrame(members, infer_schema_length=None).select(pl.all().cast(pl.Utf8)).write_csv(folder / "members.csv")
    return folder


@pytest.fixture
def caseload(tmp_path: Path) -> Path:
    return _tables(tmp_path)


def test_rejects_name_household_field_and_reason(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = screen(evaluator, caseload, out, fmt="csv", today=DATE)
    rejects = pl.read_csv(out / "rejects.csv")
    got = {(r["household_id"], r["field"]) for r in rejects.to_dicts()}
    assert ("BAD-CHECK-DIGIT", "members.person_id") in got
    assert ("BAD-NEGATIVE", "members.monthly_income") in got
    assert ("BAD-ENUM", "members.disability") in got
    assert ("BAD-MISSING", "members.birth_date") in got
    assert ("BAD-NO-MEMBERS", "members") in got
    assert ("NO-SUCH-HOUSEHOLD", "household_id") in got
    reasons = {r["household_id"]: r["reason"] for r in rejects.to_dicts()}
    assert "check digit should be" in reasons["BAD-CHECK-DIGIT"]
    assert "negative" in reasons["BAD-NEGATIVE"]
    assert "must be one of none, mild, moderate, severe (got 'sever')" in reasons["BAD-ENUM"]
    assert summary["rows_in"] == 19
    assert summary["decided"] == 14
    assert summary["rejected"] == 5
    assert summary["member_rows_without_household"] == 1
    assert summary["rows_in"] == summary["decided"] + summary["rejected"]


def test_bulk_decisions_equal_scalar_ones(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    screen(evaluator, caseload, tmp_path / "out", fmt="parquet", today=DATE)
    bulk = {r["household_id"]: r for r in pl.read_parquet(tmp_path / "out" / "decisions.parquet").to_dicts()}
    members = pl.read_csv(caseload / "members.csv", infer_schema=False)
    shared = members.group_by("person_id").agg(pl.col("household_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    duplicates = frozenset(shared.get_column("person_id").to_list())
    for line in (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines():
        want = evaluator.decide(json.loads(line), duplicates=duplicates).flat()
        got = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in bulk[want["household_id"]].items()}
        assert got == want


def test_xlsx_output(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    screen(evaluator, caseload, tmp_path / "out", fmt="xlsx", today=DATE)
    frame = pl.read_excel(tmp_path / "out" / "decisions.xlsx", engine="openpyxl")
    assert frame.height == 14
    assert "reasons" in frame.columns


def test_interrupted_run_resumes_without_redoing_finished_chunks(
    evaluator: Evaluator, caseload: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    class Stop(Exception):
        pass

    def stop_after_first(done: int, total: int) -> None:
        if done == 1:
            raise Stop

    with pytest.raises(Stop):
        screen(evaluator, caseload, out, chunk_size=4, today=DATE, progress=stop_after_first)
    first = out / ".work" / "decisions-00000.parquet"
    stamp = first.stat().st_mtime_ns
    assert not (out / ".work" / "decisions-00001.parquet").exists()
    seen: list[int] = []
    summary = screen(evaluator, caseload, out, chunk_size=4, today=DATE, progress=lambda d, t: seen.append(d))
    assert first.stat().st_mtime_ns == stamp
    assert seen == [1, 2, 3, 4, 5]
    fresh = tmp_path / "fresh"
    screen(evaluator, caseload, fresh, chunk_size=4, today=DATE)
    assert pl.read_parquet(out / "decisions.parquet").equals(pl.read_parquet(fresh / "decisions.parquet"))
    assert summary["decided"] == 14


def test_changed_input_starts_over(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    screen(evaluator, caseload, out, today=DATE)
    text = (caseload / "households.csv").read_text(encoding="utf-8").replace("常乐镇", "常乐镇 ", 1)
    (caseload / "households.csv").write_text(text, encoding="utf-8")
    summary = screen(evaluator, caseload, out, today=DATE)
    assert summary["decided"] == 14


def test_jsonl_caseload_with_a_broken_line(evaluator: Evaluator, tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    shutil.copy(FIXTURES / "households.jsonl", src)
    with src.open("a", encoding="utf-8") as f:
        f.write("{broken\n")
    summary = screen(evaluator, src, tmp_path / "out", today=DATE)
    assert (summary["rows_in"], summary["decided"], summary["rejected"]) == (15, 14, 1)
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.filter(pl.col("field") == "(json)").height == 1


def test_jsonl_is_converted_in_batches(evaluator: Evaluator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.vector.screen import _Screening

    convert = _Screening._jsonl
    monkeypatch.setattr(_Screening, "_jsonl", lambda self: convert(self, batch=4))
    src = tmp_path / "c.jsonl"
    src.write_text((FIXTURES / "households.jsonl").read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    summary = screen(evaluator, src, tmp_path / "out", today=DATE)
    assert (summary["rows_in"], summary["decided"], summary["rejected"]) == (15, 14, 1)
    assert len(list((tmp_path / "out" / ".work").glob("json-households-*.parquet"))) == 4
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.filter(pl.col("field") == "(json)").get_column("household_id").to_list() == ["(line 15)"]


def test_xlsx_tables_as_input(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    folder = tmp_path / "xlsx"
    folder.mkdir()
    for name in ("households", "members"):
        pl.read_csv(caseload / f"{name}.csv", infer_schema=False).write_excel(folder / f"{name}.xlsx")
    summary = screen(evaluator, folder, tmp_path / "out", today=DATE)
    assert (summary["decided"], summary["rejected"]) == (14, 5)
