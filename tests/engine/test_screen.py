"""Bulk re-screening: rejects for every bad row, formats, resume, the row count invariant."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine import Evaluator
from engine.validation.messages import say
from engine.vector.screen import screen
from tests.conftest import FIXTURES

DATE = dt.date(2019, 8, 1)
# the sample households (all decidable), counted rather than written out: samples get added
SAMPLES = len((FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines())


def flat_member(m: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A member as a members-table row: an object field's keys flattened with its prefix."""
    out: dict[str, Any] = {}
    for k, v in m.items():
        if isinstance(v, dict):
            out |= flat_member(v, f"{prefix}{k}_")
        else:
            out[prefix + k] = v
    return out


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
        members.extend({"household_id": h["household_id"], **flat_member(m)} for m in h["members"])

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
    # a member's field may be named by its position (`members[0].person_id`) or by column
    got = {(r["household_id"], re.sub(r"members\[\d+\]", "members", r["field"])) for r in rejects.to_dicts()}
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
    assert summary["rows_in"] == SAMPLES + 5
    assert summary["decided"] == SAMPLES
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
    assert frame.height == SAMPLES
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
    assert seen == list(range(1, -(-(SAMPLES + 5) // 4) + 1))  # the samples and 5 bad rows, 4 a chunk
    fresh = tmp_path / "fresh"
    screen(evaluator, caseload, fresh, chunk_size=4, today=DATE)
    assert pl.read_parquet(out / "decisions.parquet").equals(pl.read_parquet(fresh / "decisions.parquet"))
    assert summary["decided"] == SAMPLES


def test_changed_input_starts_over(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    screen(evaluator, caseload, out, today=DATE)
    text = (caseload / "households.csv").read_text(encoding="utf-8").replace("常乐镇", "常乐镇 ", 1)
    (caseload / "households.csv").write_text(text, encoding="utf-8")
    summary = screen(evaluator, caseload, out, today=DATE)
    assert summary["decided"] == SAMPLES


def test_jsonl_caseload_with_a_broken_line(evaluator: Evaluator, tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    shutil.copy(FIXTURES / "households.jsonl", src)
    with src.open("a", encoding="utf-8") as f:
        f.write("{broken\n")
    summary = screen(evaluator, src, tmp_path / "out", today=DATE)
    assert (summary["rows_in"], summary["decided"], summary["rejected"]) == (SAMPLES + 1, SAMPLES, 1)
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.filter(pl.col("field") == "(json)").height == 1


def test_jsonl_is_converted_in_batches(evaluator: Evaluator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.vector.screen import _Screening

    convert = _Screening._jsonl
    monkeypatch.setattr(_Screening, "_jsonl", lambda self: convert(self, batch=4))
    src = tmp_path / "c.jsonl"
    src.write_text((FIXTURES / "households.jsonl").read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    summary = screen(evaluator, src, tmp_path / "out", today=DATE)
    assert (summary["rows_in"], summary["decided"], summary["rejected"]) == (SAMPLES + 1, SAMPLES, 1)
    assert len(list((tmp_path / "out" / ".work").glob("json-households-*.parquet"))) == -(-(SAMPLES + 1) // 4)
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.filter(pl.col("field") == "(json)").get_column("household_id").to_list() == [f"(line {SAMPLES + 1})"]


def test_xlsx_tables_as_input(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    folder = tmp_path / "xlsx"
    folder.mkdir()
    for name in ("households", "members"):
        pl.read_csv(caseload / f"{name}.csv", infer_schema=False).write_excel(folder / f"{name}.xlsx")
    summary = screen(evaluator, folder, tmp_path / "out", today=DATE)
    assert (summary["decided"], summary["rejected"]) == (SAMPLES, 5)


def _generated(tmp: Path, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    from fixtures.caseload import generate

    households, members, _, _ = generate(n, seed=7)
    return households, members


def _write(folder: Path, households: pl.DataFrame, members: pl.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    households.write_parquet(folder / "households.parquet")
    members.write_parquet(folder / "members.parquet")
    return folder


def _manifest(out: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / ".work" / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def test_parquet_is_read_in_place_and_members_by_row_range(evaluator: Evaluator, tmp_path: Path) -> None:
    """Members grouped in the households' order are read by row range; shuffled, by ID;
    the decisions are the same, and nothing of the caseload is copied into the work folder."""
    households, members = _generated(tmp_path, 300)
    in_order = _write(tmp_path / "ordered", households, members)
    shuffled = _write(tmp_path / "shuffled", households, members.sample(fraction=1.0, shuffle=True, seed=3))
    a = screen(evaluator, in_order, tmp_path / "a", chunk_size=64, today=DATE)
    b = screen(evaluator, shuffled, tmp_path / "b", chunk_size=64, today=DATE)
    starts = _manifest(tmp_path / "a")["index"]["member_starts"]
    assert starts is not None
    assert (starts[0], starts[-1]) == (0, members.height)
    assert _manifest(tmp_path / "b")["index"]["member_starts"] is None
    assert not [p for p in (tmp_path / "a" / ".work").iterdir() if "household" in p.name or "member" in p.name]
    assert a == b
    assert a["decided"] == 300
    left, right = (
        pl.read_parquet(tmp_path / "a" / "decisions.parquet"),
        pl.read_parquet(tmp_path / "b" / "decisions.parquet"),
    )
    assert left.equals(right)


def test_duplicates_across_chunks_are_found_before_deciding(evaluator: Evaluator, tmp_path: Path) -> None:
    """A household ID twice and a person in two households, each pair in different chunks."""
    households, members = _generated(tmp_path, 200)
    ids = households.get_column("household_id").to_list()
    first, last = ids[3], ids[150]
    person = members.filter(pl.col("household_id") == first).get_column("person_id")[0]
    other = members.filter(pl.col("household_id") == last).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(person)).otherwise(pl.col("person_id")).alias("person_id")
    )
    members = pl.concat([members.filter(pl.col("household_id") != last), other])
    copy = households.filter(pl.col("household_id") == ids[10]).with_columns(pl.lit(ids[180]).alias("household_id"))
    households = pl.concat([households, copy])  # ids[180] now twice: rows 180 and 200
    folder = _write(tmp_path / "c", households, members)
    summary = screen(evaluator, folder, tmp_path / "out", chunk_size=64, today=DATE)
    assert (summary["rows_in"], summary["decided"], summary["rejected"]) == (201, 199, 2)
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    copies = rejects.filter(pl.col("household_id") == ids[180])
    assert copies.get_column("reason").to_list() == [say("repeated_household")] * 2
    decisions = pl.read_parquet(tmp_path / "out" / "decisions.parquet")
    flagged = decisions.filter(pl.col("findings").str.contains("duplicate_person")).get_column("household_id")
    assert {first, last} <= set(flagged.to_list())
    assert _manifest(tmp_path / "out")["index"]["duplicate_persons"] == [person]


def test_members_without_household_in_a_table_in_order(evaluator: Evaluator, tmp_path: Path) -> None:
    households, members = _generated(tmp_path, 100)
    stray = members.head(2).with_columns(pl.lit("NO-SUCH").alias("household_id"))
    folder = _write(tmp_path / "c", households, pl.concat([members.head(50), stray, members.slice(50)]))
    summary = screen(evaluator, folder, tmp_path / "out", chunk_size=32, today=DATE)
    assert (summary["decided"], summary["member_rows_without_household"]) == (100, 2)
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.filter(pl.col("household_id") == "NO-SUCH").get_column("reason").to_list() == [say("orphan")] * 2


def test_spilled_person_buckets_find_the_same_duplicates(tmp_path: Path) -> None:
    """Pairs spilled to bucket files give the same persons as pairs kept in memory."""
    from engine.vector.screen_index import index_caseload

    households, members = _generated(tmp_path, 400)
    members = pl.concat(
        [members, members.head(30).with_columns(pl.lit(households[399, "household_id"]).alias("household_id"))]
    )
    hh, mm = households.lazy(), members.lazy()
    kept, _ = index_caseload(hh, mm, "person_id", 10_000, tmp_path / "a")
    spilled, _ = index_caseload(hh, mm, "person_id", 16, tmp_path / "b")
    assert kept.duplicate_persons == spilled.duplicate_persons
    assert len(kept.duplicate_persons) >= 25


def test_one_bad_row_never_stops_a_run(evaluator: Evaluator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A field first seen in a later JSON Lines batch, a region and a date no parameter
    covers: each rejects its own household, the others are decided."""
    from engine.vector.screen import _Screening

    convert = _Screening._jsonl
    monkeypatch.setattr(_Screening, "_jsonl", lambda self: convert(self, batch=4))
    lines = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
    changed = {9: {"nickname": "x"}, 2: {"region": "999999"}, 5: {"decision_date": "1990-01-01"}}
    for i, change in changed.items():
        lines[i] = json.dumps(json.loads(lines[i]) | change, ensure_ascii=False)
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = screen(evaluator, src, tmp_path / "out", today=DATE)
    assert (summary["rows_in"], summary["decided"], summary["rejected"]) == (SAMPLES, SAMPLES - 3, 3)
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    got = {r["household_id"]: r["field"] for r in rejects.to_dicts()}
    for i, change in changed.items():
        assert got[json.loads(lines[i])["household_id"]] == next(iter(change))


def test_parquet_parts_are_joined_without_decoding(tmp_path: Path) -> None:
    """Joined parts read back (Polars and PyArrow) as the parts one after the other,
    with more than 15 row groups, an empty part, nulls, dates, decimals and categories."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from engine.vector.screen_parquet import join_parquet

    parts = []
    for k, n in enumerate([1000, 0, 2500, 7]):
        frame = pl.DataFrame(
            {
                "id": [f"H-{k}-{i}" for i in range(n)],
                "on": [DATE] * n,
                "amount": pl.Series([f"{i}.5" for i in range(n)]).cast(pl.Decimal(14, 2)),
                "status": pl.Series(["eligible", "ineligible", None][i % 3] for i in range(n)).cast(pl.Utf8),
                "flag": [i % 2 == 0 for i in range(n)],
            },
            schema_overrides={"id": pl.Utf8, "on": pl.Date, "status": pl.Utf8, "flag": pl.Boolean},
        )
        parts.append(tmp_path / f"part-{k}.parquet")
        frame.write_parquet(parts[-1], row_group_size=200)
    joined = tmp_path / "joined.parquet"
    join_parquet(parts, joined)
    want = pl.concat([pl.read_parquet(p) for p in parts])
    assert pl.read_parquet(joined).equals(want)
    assert pq.ParquetFile(joined).metadata.num_row_groups > 15
    assert pl.DataFrame(pq.read_table(joined)).equals(want)
    assert pl.scan_parquet(joined).slice(1100, 3).collect().equals(want.slice(1100, 3))
    other = tmp_path / "other.parquet"
    want.select("id").write_parquet(other)
    with pytest.raises(ValueError, match="schema"):
        join_parquet([parts[0], other], tmp_path / "bad.parquet")
