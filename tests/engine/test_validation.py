"""The awkward-input rules (README, "Awkward input"), each on the row and the column path."""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import EvaluateError, InputError, Ruleset
from engine.parameters import ParameterResolver
from engine.types import ID_CHECK, resident_id_check_digit, weighted_digit_sum
from engine.validation.row import compile_row_validator
from engine.validation.rules import parameter_coverage, repeated_household_ids
from engine.vector.caseload import jsonl_to_tables, validate_frames
from tests.conftest import FIXTURES
from tests.engine.test_validation_property import TODAY, by_columns, by_row


@pytest.fixture
def household() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / "HM-2019-000114.json").read_text(encoding="utf-8"))
    return data


def _set(h: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    h = copy.deepcopy(h)
    cur: Any = h
    *parts, last = path.split(".")
    for p in parts:
        cur = cur[int(p)] if p.isdigit() else cur[p]
    cur[int(last) if last.isdigit() else last] = value
    return h


REJECTED: list[tuple[str, Any, str, str]] = [
    ("request", {}, "request.type", "is required"),
    ("request", {"type": None, "cause": "  "}, "request.type", "is required"),
    ("assets.financial_assets", "93000000000000000", "assets.financial_assets", "implausibly large"),
    ("assets.financial_assets", 9.3e16, "assets.financial_assets", "implausibly large"),
    ("status.dibao_monthly_amount", 10**17, "status.dibao_monthly_amount", "implausibly large"),
    ("request.deceased_in_event", 10**6, "request.deceased_in_event", "at most 100"),
    ("assets.non_exempt_vehicles", 51, "assets.non_exempt_vehicles", "at most 50"),
    ("assets.houses", "99999999999999999999", "assets.houses", "at most 50"),
    ("members.1.person_id", "320684195009090557", "members[1].person_id", "same person as members[0]"),
    ("members.1.birth_date", "2019-08-02", "members[1].birth_date", "after decision_date 2019-08-01"),
    ("members.0.death_date", "1950-09-08", "members[0].death_date", "before birth_date 1950-09-09"),
    ("members.0.monthy_income", "1.00", "members[0].monthy_income", "did you mean `monthly_income`"),
    ("assets.house", 1, "assets.house", "did you mean `houses`"),
    ("region", "999999", "region", "no parameter values"),
    ("decision_date", "2010-01-01", "decision_date", "first date every parameter is in force"),
    ("local_hukou", None, "local_hukou", "is required"),
    ("members.0.monthly_income", "  ", "members[0].monthly_income", "is required"),
    ("members.0", "x", "members[0]", "must be an object"),
    ("township", ["a"], "township", "single value"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), REJECTED, ids=[f"{r[0]}={r[1]!r}" for r in REJECTED])
def test_rejected_alike_naming_the_field(
    ruleset: Ruleset, household: dict[str, Any], path: str, value: Any, field: str, message: str
) -> None:
    bad = _set(household, path, value)
    row, column = by_row(ruleset.record, bad, TODAY), by_columns(ruleset.record, bad, TODAY)
    assert row == column
    assert row[0] == "rejected"
    reasons = dict(row[1])
    assert field in reasons, reasons
    assert message in reasons[field]


@pytest.mark.parametrize(
    ("path", "value", "key", "expected"),
    [
        ("region", None, "region", "320684"),
        ("decision_date", None, "decision_date", TODAY),
        ("status", None, "status.dibao", False),
        ("request", None, "request", None),
        ("request.deceased_in_event", None, "request.deceased_in_event", 0),
        ("township", "  ", "township", None),
        ("local_hukou", " TRUE ", "local_hukou", True),
    ],
)
def test_null_is_absent(
    ruleset: Ruleset, household: dict[str, Any], path: str, value: Any, key: str, expected: Any
) -> None:
    h = _set(household, path, value)
    row = by_row(ruleset.record, h, TODAY)
    assert row == by_columns(ruleset.record, h, TODAY)
    assert row[0] == "ok"
    assert row[1][key] == expected


def test_repeated_household_id_rejects_every_copy(ruleset: Ruleset, household: dict[str, Any]) -> None:
    other = _set(household, "household_id", "HM-other")
    copies = [household, other, _set(household, "household_id", " HM-2019-000114 ")]
    repeated = repeated_household_ids(copies)
    assert repeated == {"HM-2019-000114"}
    for h in (copies[0], copies[2]):
        with pytest.raises(InputError) as info:
            ruleset.record.validate(h, TODAY, repeated=repeated)
        assert [p.field for p in info.value.problems] == ["household_id"]
    hh, mm, _ = jsonl_to_tables([json.dumps(h) for h in copies], ruleset.record)
    good, members, rejects = validate_frames(ruleset.record, hh, mm, TODAY)
    assert good.get_column("household_id").to_list() == ["HM-other"]
    assert members.get_column("_h").unique().to_list() == [0]
    assert rejects.get_column("field").to_list() == ["household_id", "household_id"]
    assert "more than once" in rejects.item(0, "reason")


def test_unknown_column_rejects_only_rows_with_a_value(ruleset: Ruleset, household: dict[str, Any]) -> None:
    lines = [json.dumps(_set(household, "household_id", f"H{i}")) for i in range(3)]
    hh, mm, _ = jsonl_to_tables(lines, ruleset.record)
    hh, mm = hh.drop("~row", "~group:request"), mm.drop("~row")  # as a plain table
    hh = hh.with_columns(pl.Series("assets_house", [None, "1", " "]))
    good, _, rejects = validate_frames(ruleset.record, hh, mm, TODAY)
    assert good.get_column("household_id").to_list() == ["H0", "H2"]
    assert rejects.rows() == [("H1", "assets_house", "unknown field, did you mean `assets_houses`?")]


def test_table_request_columns_all_empty_mean_no_request(ruleset: Ruleset, household: dict[str, Any]) -> None:
    hh, mm, _ = jsonl_to_tables([json.dumps(_set(household, "request", {}))], ruleset.record)
    _, _, rejects = validate_frames(ruleset.record, hh, mm, TODAY)
    assert ("HM-2019-000114", "request.type", "is required") in rejects.rows()
    good, _, rejects = validate_frames(ruleset.record, hh.drop("~group:request"), mm, TODAY)
    assert rejects.height == 0
    assert good.item(0, "request") is None


def test_one_bad_row_never_stops_a_run(ruleset: Ruleset, household: dict[str, Any]) -> None:
    bad = [_set(household, path, value) for path, value, _, _ in REJECTED]
    rows = [_set(h, "household_id", f"H{i}") for i, h in enumerate([household, *bad, household])]
    hh, mm, pre = jsonl_to_tables([json.dumps(h) for h in rows], ruleset.record)
    good, _, rejects = validate_frames(ruleset.record, hh, mm, TODAY)
    rejected = set(rejects.get_column("household_id")) | set(pre.get_column("household_id"))
    assert good.height == 2
    assert good.height + len(rejected) == len(rows)


def test_coverage_is_where_parameters_resolve(ruleset: Ruleset) -> None:
    coverage = parameter_coverage(ruleset)
    resolver = ParameterResolver(ruleset)
    assert coverage.first
    for region, first in coverage.first.items():
        assert first is not None
        resolver.resolve(region, first)
        with pytest.raises(EvaluateError):
            resolver.resolve(region, first - dt.timedelta(days=1))
        problem = coverage.problem(region, first - dt.timedelta(days=1))
        assert problem is not None
        assert problem.field == "decision_date"
        assert coverage.problem(region, first) is None


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_one_check_digit_for_strings_integers_and_arrays(first17: str) -> None:
    expected = ID_CHECK[weighted_digit_sum(int(first17)) % 11]
    assert resident_id_check_digit(first17) == expected
    array = weighted_digit_sum(np.array([int(first17)], dtype=np.int64))
    assert ID_CHECK[int(array[0]) % 11] == expected


def test_generated_source_holds_declared_names_only_as_literals(ruleset: Ruleset) -> None:
    validate = compile_row_validator(ruleset.record)
    tree = ast.parse(validate.__doc__ or "")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    local = {
        "raw",
        "today",
        "coverage",
        "repeated",
        "P",
        "S",
        "h",
        "M",
        "v",
        "t",
        "g",
        "ms",
        "m",
        "i",
        "o",
        "c",
        "b",
        "r",
        "d",
        "f",
    }
    local |= {n for n in names if n[0] in "ux" and n[1:].isdigit()}
    assert names <= set(validate.__globals__) | local | {
        "type",
        "isinstance",
        "enumerate",
        "str",
        "int",
        "list",
        "dict",
    }
    declared = {s.key for s in ruleset.record.household} | {s.key for s in ruleset.record.member}
    declared |= {f.key for s in ruleset.record.household for f in s.fields}
    declared |= {f.key for s in ruleset.record.member if s.kind == "group" for g in s.groups() for f in g.fields}
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert declared <= literals


def test_check_rejects_every_copy_of_a_repeated_household(tmp_path: Path, household: dict[str, Any]) -> None:
    path = tmp_path / "two.jsonl"
    other = _set(household, "household_id", "HM-other")
    path.write_text("".join(json.dumps(h) + "\n" for h in (household, other, household)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "api", "check", str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 3
    assert [o.get("rejected", False) for o in out] == [True, False, True]
    assert {e["field"] for o in out if o.get("rejected") for e in o["errors"]} == {"household_id"}


def test_typed_columns_read_like_their_text(ruleset: Ruleset) -> None:
    """A Parquet caseload (typed columns) and the same caseload as text agree on every value
    and every reject, bad values included."""
    from fixtures.caseload import generate

    hh, mm, _, _ = generate(300, seed=5)
    bad = pl.int_range(pl.len()) % 7 == 0
    hh = hh.with_columns(
        pl.when(bad).then(-pl.col("assets_financial_assets")).otherwise(pl.col("assets_financial_assets")),
        pl.when(bad).then(pl.lit(51)).otherwise(pl.col("assets_houses")).alias("assets_houses"),
        pl.when(pl.int_range(pl.len()) % 11 == 0).then(None).otherwise(pl.col("local_hukou")).alias("local_hukou"),
    )
    typed = validate_frames(ruleset.record, hh, mm, TODAY)
    text = validate_frames(ruleset.record, hh.select(pl.all().cast(pl.Utf8)), mm.select(pl.all().cast(pl.Utf8)), TODAY)
    assert typed[2].height > 0
    for a, b in zip(typed, text, strict=True):
        assert a.equals(b)


@given(
    st.sampled_from(["0000", "1900", "2000", "2019", "2020"]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 999),
    st.sampled_from(["", *"0123456789X"]),
)
def test_fast_resident_id_check_agrees_with_the_canonical_one(
    year: str, month: int, day: int, seq: int, check: str
) -> None:
    from engine.types import check_resident_id
    from engine.validation.row import _id_ok

    first = f"320684{year}{month:02d}{day:02d}{seq:03d}"
    value = first + (check or resident_id_check_digit(first))
    assert _id_ok(value) == (check_resident_id(value) is None)
