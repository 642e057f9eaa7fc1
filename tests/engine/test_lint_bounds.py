"""Parameter values and names in rule files stay within the engine's limits (rules/README.md,
"Limits"): each bad one is one precise problem at file:line:col, never an internal error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import ProblemKind, RuleLoadError, load
from engine.loading.bounds import LIMITS
from tests.conftest import RULES

_PARAM = """\
parameters:
  zz.p:
    title: {{zh: 测试, en: Test}}
    unit: {unit}
    values:
      "*":
{versions}
"""


def _rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def _problems(rules: Path) -> list[str]:
    """``kind line:col [rule]: message`` of every problem loading finds (none when it loads)."""
    try:
        load(rules)
    except RuleLoadError as exc:
        return [f"{p.kind} {p.file}:{p.line}:{p.col} [{p.rule_id}]: {p.message}" for p in exc.problems]
    return []


def _with_parameter(tmp_path: Path, unit: str, *versions: str) -> list[str]:
    rules = _rules(tmp_path)
    lines = "".join(f"        {v}\n" for v in versions)
    (rules / "parameters" / "zz.yaml").write_text(_PARAM.format(unit=unit, versions=lines), encoding="utf-8")
    return _problems(rules)


@pytest.mark.parametrize(
    ("unit", "value"),
    [
        ("money", "0"),
        ("money", "999999999999.99"),
        ("money", "790.5"),
        ("decimal", "-1000000"),
        ("decimal", "1000000"),
        ("decimal", "0.123456"),
        ("decimal", "1.5e+3"),
        ("int", "-1000000"),
        ("int", "1000000"),
    ],
)
def test_values_at_the_limits_load(tmp_path: Path, unit: str, value: str) -> None:
    assert _with_parameter(tmp_path, unit, f"2018-07-01: {{value: {value}, reference: test}}") == []


@pytest.mark.parametrize(
    ("unit", "value", "why"),
    [
        ("money", "-0.01", "outside the range"),
        ("money", "1000000000000", "outside the range"),
        ("money", "3000000000000000", "outside the range"),
        ("money", "1.0e+999999999", "outside the range"),
        ("money", "1.0e999999999", "outside the range"),  # text to YAML 1.1, a number to the type check
        ("money", "790.001", "more than 2 decimal places"),
        ("decimal", "1000000.5", "outside the range"),
        ("decimal", "1.0e50", "outside the range"),
        ("decimal", "0.1234567", "more than 6 decimal places"),
        ("int", "1000001", "outside the range"),
        ("int", "-99999999999999999999999", "outside the range"),
    ],
)
def test_a_written_value_outside_the_limits_is_one_problem(tmp_path: Path, unit: str, value: str, why: str) -> None:
    got = _with_parameter(tmp_path, unit, f"2018-07-01: {{value: {value}, reference: test}}")
    assert len(got) == 1, got
    assert got[0].startswith("out-of-range parameters/zz.yaml:7:21 [zz.p]: ")
    assert why in got[0]


def test_a_formula_is_checked_as_computed_in_every_region_on_every_date(tmp_path: Path) -> None:
    """dibao.standard rises over time and differs by region: 1.3e9 times it passes 10^12
    yuan first in one region on one date; the version is reported once, there."""
    got = _with_parameter(tmp_path, "money", '2018-07-01: {formula: "1300000000 * dibao.standard", reference: test}')
    assert len(got) == 1, got
    assert got[0].startswith("out-of-range parameters/zz.yaml:7:21 [zz.p]: `zz.p` = 1300000000 * dibao.standard")
    # 730 and 790 in 320684 (2018, 2019) and 700, 760 in 320681 stay below; 800 in 320681
    # from 2020-07-01 and 790 in 320684 from 2019-07-01 do not: regions are tried in order
    assert "for region 320681 on 2020-07-01: 1040000000000.00 is outside" in got[0]


def test_a_formula_value_with_fractions_of_a_fen_is_kept_exact_up_to_four_places(tmp_path: Path) -> None:
    ok = '2018-07-01: {formula: "1.5 * dibao.standard", reference: t}'  # 1.5 x 791.35 = 1187.025, as is
    assert _with_parameter(tmp_path / "a", "money", ok) == []
    got = _with_parameter(tmp_path / "b", "money", '2018-07-01: {formula: "1.2345671 * dibao.standard", reference: t}')
    assert len(got) == 1, got
    assert "round it with roundup() or rounddown()" in got[0]


def test_a_formula_that_cannot_be_computed_is_one_problem(tmp_path: Path) -> None:
    got = _with_parameter(tmp_path, "decimal", '2018-07-01: {formula: "dibao.addon_rate / 0", reference: t}')
    assert len(got) == 1, got
    assert "cannot be computed (division by zero)" in got[0]


def test_a_bad_written_value_is_not_reported_again_by_the_formulas_that_use_it(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    path = rules / "parameters" / "dibao.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("{value: 790,", "{value: -790,", 1), encoding="utf-8")
    got = _problems(rules)
    assert [g.split(" [")[0] for g in got] == ["out-of-range parameters/dibao.yaml:11:21"], got


def test_the_limits_are_the_documented_ones() -> None:
    readme = (RULES / "README.md").read_text(encoding="utf-8")
    assert "### 限制 · Limits" in readme
    for kind, (lo, hi, written, computed) in LIMITS.items():
        assert f"\n| {kind} " in readme, kind  # a row of the value-range table
        assert written <= computed
        assert lo < hi


# ---------------------------------------------------------------- names


def _record_with(tmp_path: Path, line: str) -> list[str]:
    rules = _rules(tmp_path)
    path = rules / "record.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "\n  household_id:"
    assert anchor in text
    path.write_text(text.replace(anchor, f"\n  {line}{anchor}", 1), encoding="utf-8")
    return _problems(rules)


@pytest.mark.parametrize(
    ("line", "kind", "hint"),
    [
        # field names are checked where record.yaml is read (engine/record.py)
        ("~row: {type: str, nullable: true}", "bad-field-spec", "field name `~row` must be a name"),
        ("'': {type: str, nullable: true}", "bad-field-spec", "field name `` must be a name"),
        ("a-b: {type: str, nullable: true}", "bad-field-spec", "field name `a-b` must be a name"),
        ("2019-07-01: {type: str, nullable: true}", "bad-field-spec", "field name `2019-07-01` must be a name"),
        # keys YAML 1.1 reads as something else, where the file is read (engine/source.py)
        ("yes: {type: str, nullable: true}", "bad-key", "read as true/false"),
        ("12: {type: str, nullable: true}", "bad-key", "read as a number"),
    ],
)
def test_a_record_field_that_is_not_a_name_is_one_problem(tmp_path: Path, line: str, kind: str, hint: str) -> None:
    got = _record_with(tmp_path, line)
    assert len(got) == 1, got
    assert got[0].startswith(f"{kind} record.yaml:")
    assert hint in got[0]


def test_a_group_field_and_a_registry_column_must_be_names(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    path = rules / "record.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "      houses: {type: int", "      'houses;x': {type: int, nullable: true}\n      houses: {type: int", 1
    )
    text = text.replace(
        "      official_name: {type: str}", "      official_name: {type: str}\n      'a b': {type: str}", 1
    )
    path.write_text(text, encoding="utf-8")
    got = _problems(rules)
    assert [g.split(": ", 1)[1] for g in got] == [
        "field name `houses;x` must be a name: letters, digits and _, not first a digit",
        "column `a b` is not a name: write letters, digits and `_`, not starting with a digit (like `dibao_status`)",
    ]


def test_a_table_row_id_and_an_outcome_field_must_be_names(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    path = rules / "programs" / "temporary.yaml"
    text = path.read_text(encoding="utf-8")
    assert "id: temporary.expenditure_rate.low," in text
    text = text.replace("id: temporary.expenditure_rate.low,", "id: 'temporary.expenditure_rate.low;x',", 1)
    path.write_text(text, encoding="utf-8")
    got = _problems(rules)
    assert len(got) == 1, got
    assert got[0].startswith("bad-name programs/temporary.yaml:")
    assert "id `temporary.expenditure_rate.low;x` is not a name" in got[0]


def test_every_kind_named_here_exists() -> None:
    assert {ProblemKind("bad-name"), ProblemKind("out-of-range"), ProblemKind("too-complex")}


@pytest.mark.parametrize("value", [".nan", ".inf", "'NaN'", "abc", "[1]", "true", "2019-01-01"])
def test_a_value_of_another_kind_is_one_problem_and_formulas_using_it_are_not_computed(
    tmp_path: Path, value: str
) -> None:
    """dibao.standard feeds three formulas: none of them is computed from a bad value."""
    rules = _rules(tmp_path)
    path = rules / "parameters" / "dibao.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("{value: 790,", f"{{value: {value},", 1), "utf-8")
    got = _problems(rules)
    assert len(got) == 1, got
    assert got[0].startswith(("type-error parameters/dibao.yaml:11:21", "out-of-range parameters/dibao.yaml:11:21"))
