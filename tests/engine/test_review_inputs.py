"""Regressions from the attacker review of issue 9 (input and `screen` side): each awkward
input is rejected per row, naming the field, identically by `check`'s path and by
`screen` (JSON Lines and tables), and screenings into one folder are safe."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from api.cli import main
from engine import Evaluator
from engine.validation.messages import say
from engine.validation.rules import JSON_DEPTH
from engine.vector.screen import ScreenError, _Screening, screen
from tests.engine.test_screen_agreement import TODAY, _base, as_tables, by_check, by_screen


def _jsonl(path: Path, households: list[Any]) -> Path:
    path.write_text("".join(json.dumps(h, ensure_ascii=False) + "\n" for h in households), encoding="utf-8")
    return path


def _one(hid: str, **changes: Any) -> dict[str, Any]:
    h = copy.deepcopy(_base()[0])
    h["household_id"] = hid
    h.update(changes)
    return h


def _agree(evaluator: Evaluator, tmp_path: Path, households: list[dict[str, Any]], *, tables: bool = True) -> Any:
    want = by_check(evaluator, households)
    got, _ = by_screen(evaluator, _jsonl(tmp_path / "c.jsonl", households), tmp_path / "a", chunk_size=3)
    assert got == want
    if tables:
        from_tables, _ = by_screen(evaluator, as_tables(households, tmp_path / "t"), tmp_path / "b", chunk_size=3)
        assert from_tables == want
    return want


# ---------------------------------------------------------------- review 1, 6: keys


def test_flat_column_names_are_unknown_keys_in_json(evaluator: Evaluator, tmp_path: Path) -> None:
    flat = _one("F1", assets_financial_assets="99999999")
    only_flat = _one("F2", assets_financial_assets="1.00", assets_houses=1, assets_non_exempt_vehicles=0)
    del only_flat["assets"]
    status = _one("F3", status_dibao=True, request_type="emergency")
    want = _agree(evaluator, tmp_path, [flat, only_flat, status, _one("OK")], tables=False)
    assert want["F1"] == ("rejected", frozenset({("assets_financial_assets", say("unknown", hint=""))}))
    assert want["F2"][0] == want["F3"][0] == "rejected"
    assert {f for f, _ in want["F3"][1]} == {"status_dibao", "request_type"}
    assert want["OK"][0] == "decided"


def test_did_you_mean_is_the_same_in_json_lines(evaluator: Evaluator, tmp_path: Path) -> None:
    h = _one("D1", **{"assets.houses": 2})
    want = _agree(evaluator, tmp_path, [h], tables=False)
    assert want["D1"] == ("rejected", frozenset({("assets.houses", say("unknown", hint=", did you mean `assets`?"))}))


def test_an_empty_key_is_an_unknown_field(evaluator: Evaluator, tmp_path: Path) -> None:
    top_null = _one("E1", **{"": None})
    top = _one("E2", **{"": "x"})
    member = _one("E3")
    member["members"][0][""] = 1
    want = _agree(evaluator, tmp_path, [top_null, top, member], tables=False)
    assert want["E1"][0] == "decided"
    assert {f for f, _ in want["E2"][1]} == {""}
    assert {f for f, _ in want["E3"][1]} == {"members[0]."}


# ---------------------------------------------------------------- review 2: members bounded


def test_members_per_household_are_bounded(evaluator: Evaluator, tmp_path: Path) -> None:
    spec = next(s for s in evaluator.ruleset.record.household if s.kind == "members")
    assert isinstance(spec.max, int)
    assert spec.max <= 1000
    many = _one("M1")
    rich = {**many["members"][1], "monthly_income": "999999999999.99"}
    many["members"] = [{**rich, "person_id": _pid(i), "relation": "other"} for i in range(spec.max + 1)]
    most = copy.deepcopy(many)
    most["household_id"] = "M2"
    most["members"] = most["members"][: spec.max]
    most["members"][0]["relation"] = "head"
    want = _agree(evaluator, tmp_path, [many, most])
    assert want["M1"] == ("rejected", frozenset({("members", say("members_max", bound=spec.max, got=spec.max + 1))}))
    assert want["M2"][0] == "decided"  # at the bound, each at the money bound: no int64 overflow
    decisions = pl.read_parquet(tmp_path / "a" / "decisions.parquet")
    assert decisions.height == 1


def _pid(i: int) -> str:
    from engine.types import resident_id_check_digit

    first = f"32068419800101{i:03d}"
    return first + resident_id_check_digit(first)


# ---------------------------------------------------------------- review 5: blank IDs


@pytest.mark.parametrize("blank", ["  ", "", "\u3000"])
def test_a_blank_household_id_is_rejected_not_fatal(evaluator: Evaluator, tmp_path: Path, blank: str) -> None:
    households = [_one(blank), _one("OK")]
    schema = evaluator.ruleset.record
    _, summary = by_screen(evaluator, _jsonl(tmp_path / "c.jsonl", households), tmp_path / "a", chunk_size=3)
    assert (summary["decided"], summary["rejected"]) == (1, 1)
    rejects = pl.read_parquet(tmp_path / "a" / "rejects.parquet")
    assert rejects.filter(pl.col("household_id").is_null()).rows() == [(None, schema.id_field, say("required"))]
    _, summary = by_screen(evaluator, as_tables(households, tmp_path / "t"), tmp_path / "b", chunk_size=3)
    assert (summary["decided"], summary["rejected"]) == (1, 1)


def test_ids_equal_once_trimmed_are_repeated(evaluator: Evaluator, tmp_path: Path) -> None:
    households = [_one("A1"), _one(" A1"), _one("OK")]
    got, summary = by_screen(evaluator, _jsonl(tmp_path / "c.jsonl", households), tmp_path / "a", chunk_size=5)
    assert (summary["decided"], summary["rejected"]) == (1, 2)
    assert got["A1"] == ("rejected", frozenset({("household_id", say("repeated_household"))}))


def test_members_table_ids_are_trimmed(evaluator: Evaluator, tmp_path: Path) -> None:
    households = [_one("T1"), _one("T2")]
    folder = as_tables(households, tmp_path / "t")
    members = pl.read_parquet(folder / "members.parquet")
    # out of the households' order and with a trailing blank: found by ID, trimmed
    members = members.with_columns(pl.col("household_id") + " ").reverse()
    members.write_parquet(folder / "members.parquet")
    got, summary = by_screen(evaluator, folder, tmp_path / "b", chunk_size=1)
    assert summary["member_rows_without_household"] == 0
    assert got == {"T1": ("decided", frozenset()), "T2": ("decided", frozenset())}


def test_a_repeated_csv_column_is_named_as_repeated(evaluator: Evaluator, tmp_path: Path) -> None:
    folder = as_tables([_one("C1"), _one("C2")], tmp_path / "t")
    h = pl.read_parquet(folder / "households.parquet")
    header = ",".join([*h.columns, "assets_houses"])
    rows = [",".join(['"' + (v or "") + '"' for v in row]) for row in h.rows()]
    (folder / "households.parquet").unlink()
    (folder / "households.csv").write_text("\n".join([header, rows[0] + ",1", rows[1] + ","]) + "\n", encoding="utf-8")
    got, _ = by_screen(evaluator, folder, tmp_path / "b")
    assert got["C1"] == ("rejected", frozenset({("assets_houses", say("repeated_column"))}))
    assert got["C2"] == ("decided", frozenset())


# ---------------------------------------------------------------- review 7, 8, 11: values


def test_numbers_of_thousands_of_digits_are_rejected(evaluator: Evaluator, tmp_path: Path) -> None:
    big = "9" * 5000
    as_text = _one("N1", assets={**_base()[0]["assets"], "houses": big})
    as_number = _one("N2", request={"type": "emergency", "cause": "fire", "tier": 1, "deceased_in_event": 1})
    src = tmp_path / "c.jsonl"
    lines = [
        json.dumps(as_text),
        json.dumps(as_number).replace('"deceased_in_event": 1', f'"deceased_in_event": {big}'),
    ]
    lines.append(json.dumps(_one("N3", nonsense=1)).replace('"nonsense": 1', f'"nonsense": {big}'))
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got, summary = by_screen(evaluator, src, tmp_path / "a")
    assert summary["rejected"] == 3
    assert {f for f, _ in got["N1"][1]} == {"assets.houses"}
    assert {f for f, _ in got["N2"][1]} == {"request.deceased_in_event"}
    assert {f for f, _ in got["N3"][1]} == {"nonsense"}
    result = CliRunner().invoke(main, ["check", str(src)])
    assert result.exit_code == 3, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [{e["field"] for e in r["errors"]} for r in rows] == [
        {"assets.houses"},
        {"request.deceased_in_event"},
        {"nonsense"},
    ]


def test_deeply_nested_json_is_a_rejected_row(evaluator: Evaluator, tmp_path: Path) -> None:
    deep = '{"household_id": "D3", "foo": ' + "[" * 5000 + "]" * 5000 + "}"
    src = tmp_path / "c.jsonl"
    src.write_text(deep + "\n" + json.dumps(_one("OK")) + "\n", encoding="utf-8")
    got, summary = by_screen(evaluator, src, tmp_path / "a")
    assert (summary["decided"], summary["rejected"]) == (1, 1)
    assert got["(line 1)"] == ("rejected", frozenset({("(json)", say("json_depth", bound=JSON_DEPTH))}))
    result = CliRunner().invoke(main, ["check", str(src)])
    assert result.exit_code == 3
    first = json.loads(result.stdout.splitlines()[0])
    assert first["errors"] == [{"field": "(json)", "message": say("json_depth", bound=JSON_DEPTH), "rule_id": None}]


@pytest.mark.parametrize("zero", [0, "-0", "-0.00", "-0.0"])
def test_negative_zero_money_is_zero(evaluator: Evaluator, tmp_path: Path, zero: Any) -> None:
    h = _one("Z1")
    h["members"][0]["monthly_income"] = zero
    src = tmp_path / "c.jsonl"
    text = json.dumps(h).replace('"monthly_income": 0', '"monthly_income": -0')
    src.write_text(text + "\n", encoding="utf-8")
    got, _ = by_screen(evaluator, src, tmp_path / "a")
    assert got["Z1"] == ("decided", frozenset())
    assert by_check(evaluator, [json.loads(text)])["Z1"] == ("decided", frozenset())
    _, summary = by_screen(evaluator, as_tables([json.loads(text)], tmp_path / "t"), tmp_path / "b")
    assert summary["decided"] == 1


def test_check_splits_json_lines_only_on_newlines(tmp_path: Path) -> None:
    h = _one("U1", township="常乐\u2028镇\x85")
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps(h, ensure_ascii=False) + "\n" + json.dumps(_one("U2")) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(src)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["household_id"] for line in result.stdout.splitlines()] == ["U1", "U2"]


# ---------------------------------------------------------------- review 4, 13, 14, 15: runs


def test_resuming_depends_on_today_and_on_the_inputs(evaluator: Evaluator, tmp_path: Path) -> None:
    h = _one("R1")
    del h["decision_date"]
    src = _jsonl(tmp_path / "c.jsonl", [h])
    out = tmp_path / "out"
    screen(evaluator, src, out, today=dt.date(2020, 1, 1))
    first = json.loads((out / ".work" / "manifest.json").read_text())["key"]
    job = _Screening(evaluator, src, out, "parquet", None, 250_000, dt.date(2021, 1, 1))
    assert job.prepare()["key"] != first
    screen(evaluator, src, out, today=dt.date(2020, 1, 1))
    before = (out / ".work" / "manifest.json").read_text()
    stat = src.stat()
    src.write_text(src.read_text().replace('"500.00"', '"900.00"'), encoding="utf-8")
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    job = _Screening(evaluator, src, out, "parquet", None, 250_000, dt.date(2020, 1, 1))
    assert job.prepare()["key"] != json.loads(before)["key"]


def test_a_corrupt_manifest_means_start_over(evaluator: Evaluator, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "c.jsonl", [_one("K1")])
    out = tmp_path / "out"
    first = screen(evaluator, src, out, today=TODAY)
    manifest = out / ".work" / "manifest.json"
    manifest.write_text(manifest.read_text()[:20], encoding="utf-8")
    assert screen(evaluator, src, out, today=TODAY) == first


def test_a_second_screening_into_one_folder_is_refused(evaluator: Evaluator, tmp_path: Path) -> None:
    import fcntl

    src = _jsonl(tmp_path / "c.jsonl", [_one("L1")])
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ScreenError, match="another screening"):
            screen(evaluator, src, out, today=TODAY)
    assert screen(evaluator, src, out, today=TODAY)["decided"] == 1


def test_a_failed_run_leaves_no_summary_that_looks_current(
    evaluator: Evaluator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _jsonl(tmp_path / "c.jsonl", [_one("S1")])
    out = tmp_path / "out"
    screen(evaluator, src, out, today=TODAY)
    assert (out / "summary.json").exists()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ScreenError("boom")

    monkeypatch.setattr(_Screening, "run_chunks", fail)
    with pytest.raises(ScreenError):
        screen(evaluator, _jsonl(tmp_path / "d.jsonl", [_one("S2")]), out, today=TODAY)
    assert not (out / "summary.json").exists()
    assert not (out / "decisions.parquet").exists()


# ---------------------------------------------------------------- the declaration, long values


@pytest.mark.parametrize("name", ["''", "'~row'", "yes", "2019-07-01", "'a b'"])
def test_record_field_names_are_identifiers(tmp_path: Path, name: str) -> None:
    import shutil

    from engine import RuleLoadError, load
    from tests.conftest import RULES

    rules = shutil.copytree(RULES, tmp_path / "rules")
    record = rules / "record.yaml"
    text = record.read_text(encoding="utf-8")
    record.write_text(text.replace("\nmember:\n", f"\nmember:\n  {name}: {{type: str}}\n", 1), encoding="utf-8")
    with pytest.raises(RuleLoadError) as caught:
        load(rules)
    found = [p for p in caught.value.problems if p.file.endswith("record.yaml")]
    assert len(found) == 1  # one problem, at the name (the loader's key checks or the record's)
    assert found[0].kind in ("bad-name", "bad-key", "bad-field-spec")


def test_a_household_at_every_bound_is_decided_alike(evaluator: Evaluator, tmp_path: Path) -> None:
    most = evaluator.ruleset.record.members_max()
    assert most is not None
    h = _one("B1")
    h["members"] = [
        {**h["members"][1], "person_id": _pid(i), "relation": "head" if i == 0 else "other", "monthly_income": "0.00"}
        for i in range(most)
    ]
    h["members"][-1]["monthly_income"] = "999999999999.99"
    h["status"] = {**(h.get("status") or {}), "dibao": True, "dibao_monthly_amount": "999999999999.99"}
    alone = evaluator.decide(json.loads(json.dumps(h)), today=TODAY).to_dict(explain=False)
    screen(evaluator, _jsonl(tmp_path / "c.jsonl", [h]), tmp_path / "a", today=TODAY)
    row = pl.read_parquet(tmp_path / "a" / "decisions.parquet").row(0, named=True)
    for column in ("dibao_status", "dibao_amount", "low_income_status", "tekun_amount", "ta_amount"):
        assert str(row[column]) == str(alone[column]), column


def test_messages_quote_long_values_cut_short(evaluator: Evaluator) -> None:
    from engine import InputError

    h = _one("Q1")
    h["members"][0]["monthly_income"] = "9" * 5000
    with pytest.raises(InputError) as caught:
        evaluator.ruleset.record.validate(h)
    (problem,) = caught.value.problems
    assert problem.field == "members[0].monthly_income"
    assert "(5000 characters)" in problem.message
    assert len(problem.message) < 200
