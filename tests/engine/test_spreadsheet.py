"""Files bureau staff open in Excel or WPS: money cells are numbers formatted ``#,##0.00`` and
headers may be Chinese (``--headers zh``), checked by opening the files with openpyxl."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from engine import Evaluator, Ruleset, impact, screen, with_settings
from engine.spreadsheet import MONEY_FORMAT, column_labels, money_columns
from tests.conftest import FIXTURES

DAY = dt.date(2019, 8, 1)


def _caseload(tmp_path: Path) -> Path:
    """The sample households and one household that is rejected (a bad amount)."""
    lines = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[0])
    bad["household_id"] = "BAD-1"
    bad["members"][0]["monthly_income"] = "12.345"
    path = tmp_path / "caseload.jsonl"
    path.write_text("\n".join([*lines, json.dumps(bad, ensure_ascii=False)]) + "\n", encoding="utf-8")
    return path


def _sheet(path: Path) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    """Headers, values and number formats of a workbook's only sheet."""
    book = openpyxl.load_workbook(path)
    (sheet,) = book.worksheets
    rows = list(sheet.iter_rows())
    return (
        [str(c.value) for c in rows[0]],
        [[c.value for c in r] for r in rows[1:]],
        [[str(c.number_format) for c in r] for r in rows[1:]],
    )


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory, evaluator: Evaluator) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("screened")
    caseload = _caseload(tmp)
    outs = {}
    for fmt, headers in (("xlsx", "en"), ("xlsx", "zh"), ("csv", "zh")):
        out = tmp / f"{fmt}-{headers}"
        summary = screen(evaluator, caseload, out, fmt=fmt, decision_date=DAY, headers=headers)
        assert summary["rejected"] == 1
        outs[f"{fmt}-{headers}"] = out
    return outs


def test_money_is_a_number_with_thousands_separators(screened: dict[str, Path], ruleset: Ruleset) -> None:
    headers, values, formats = _sheet(screened["xlsx-en"] / "decisions.xlsx")
    money = money_columns(ruleset, headers)
    assert {"dibao_amount", "tekun_amount", "ta_amount", "children_allowance_total"} <= set(money)
    assert "dibao_status" not in money
    paid = 0
    for row, fmt in zip(values, formats, strict=True):
        for name in money:
            i = headers.index(name)
            assert isinstance(row[i], int | float), (name, row[i])
            assert fmt[i] == MONEY_FORMAT
            paid += row[i] > 0
    assert paid > 0  # some sample household is paid: the check saw real amounts
    assert headers[0] == "household_id"  # codes for machines by default


def test_chinese_headers_from_the_rule_files(screened: dict[str, Path], ruleset: Ruleset) -> None:
    english, _, _ = _sheet(screened["xlsx-en"] / "decisions.xlsx")
    chinese, values, formats = _sheet(screened["xlsx-zh"] / "decisions.xlsx")
    assert chinese == list(column_labels(ruleset, english, "zh").values())
    assert chinese[0] == "户编号"
    assert ruleset.symbol("tekun_amount").title["zh"] in chinese
    assert len(set(chinese)) == len(chinese)  # no header twice
    assert not [h for h in chinese if h in english and h.isascii()]  # every column named in Chinese
    i = chinese.index(ruleset.symbol("tekun_amount").title["zh"])
    assert all(isinstance(r[i], int | float) and f[i] == MONEY_FORMAT for r, f in zip(values, formats, strict=True))


def test_chinese_rejects_say_why_in_chinese(screened: dict[str, Path]) -> None:
    headers, values, _ = _sheet(screened["xlsx-zh"] / "rejects.xlsx")
    assert headers[:3] == ["户编号", "字段", "原因"]
    assert values[0][0] == "BAD-1"
    assert "最多两位小数" in values[0][2]
    with (screened["csv-zh"] / "rejects.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["户编号", "字段", "原因"]
    assert "最多两位小数" in rows[1][2]
    with (screened["csv-zh"] / "decisions.csv").open(encoding="utf-8") as f:
        assert next(csv.reader(f))[0] == "户编号"


def test_impact_changes_keep_money_numeric_and_name_both_sides(evaluator: Evaluator, tmp_path: Path) -> None:
    caseload = _caseload(tmp_path)
    head = Evaluator(with_settings(evaluator.ruleset, ["dibao.standard=950@2019-07-01"]), evaluator.registries)
    impact(evaluator, head, caseload, tmp_path / "out", decision_date=DAY, fmt="xlsx", headers="zh")
    headers, values, formats = _sheet(tmp_path / "out" / "changes.xlsx")
    title = evaluator.ruleset.symbol("tekun_amount").title["zh"]
    assert headers[0] == "户编号"
    assert values
    for side in ("现行", "调整后"):
        i = headers.index(f"{side}：{title}")
        assert all(isinstance(r[i], int | float) and f[i] == MONEY_FORMAT for r, f in zip(values, formats, strict=True))
    with (tmp_path / "out" / "budget.csv").open(encoding="utf-8") as f:
        assert "金额变化（元/月）" in next(csv.reader(f))
