"""Dated rules (`valid_from`, DOMAIN-2.md "Dated rules"): a rule or a table row is in force
from its date on, inclusive, in every backend; a bad `valid_from` is a precise load problem."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import Evaluator, RuleLoadError, load
from engine.vector import decide_caseload, jsonl_to_tables
from tests.conftest import FIXTURES, RULES

_PROGRAM = """\
program: dated
title: {{zh: 测试, en: Test}}
legal_basis: test
rules:
  - id: dated.rule
    title: {{zh: 规则, en: Rule}}
    valid_from: {rule_from}
    report: fire
    when: n > 0
tables:
  - id: dated.table
    title: {{zh: 表, en: Table}}
    hit_policy: {policy}
    outputs: {{x: int}}
    rows:
      - {{id: dated.table.new, title: {{zh: 新, en: New}}, valid_from: {row_from}, when: {row_when}, x: 2}}
      - {{id: dated.table.old, title: {{zh: 旧, en: Old}}, when: n > 0, x: 1}}
    otherwise: {{id: dated.table.none, title: {{zh: 无, en: None}}, x: 0}}
"""


def _ruleset(tmp_path: Path, **kw: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    fields = {"rule_from": "2020-01-01", "row_from": "2020-01-01", "policy": "max", "row_when": "n > 0"} | kw
    text = _PROGRAM.format(**fields)
    (rules / "programs" / "zz_dated.yaml").write_text(text, encoding="utf-8")
    return rules


def _household(on: str) -> dict[str, Any]:
    h: dict[str, Any] = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    return h | {"decision_date": on}


@pytest.mark.parametrize(
    ("on", "rule", "row"),
    [("2019-12-31", "not_applicable", "dated.table.old"), ("2020-01-01", "pass", "dated.table.new")],
    ids=["day-before", "first-day"],
)
@pytest.mark.parametrize("written", ["2020-01-01", "children.defacto_from"], ids=["date", "parameter"])
def test_in_force_from_its_date(tmp_path: Path, on: str, rule: str, row: str, written: str) -> None:
    ev = Evaluator(load(_ruleset(tmp_path, rule_from=written, row_from=written)))
    decision = ev.decide(_household(on))
    traced = {r.rule_id: r for r in decision.rules}
    assert traced["dated.rule"].outcome == rule
    assert row in traced
    assert (traced[row].row, traced[row].outcome) == (row, "fired")
    flat = decision.flat()
    hh, mm, _ = jsonl_to_tables([json.dumps(_household(on))], ev.ruleset.record)
    bulk, _ = decide_caseload(ev, hh, mm, today=dt.date(2020, 1, 1))
    assert bulk.to_dicts()[0]["reasons"] == flat["reasons"]
    assert ("dated.rule" in flat["reasons"].split(";")) == (rule == "pass")
    assert row in flat["reasons"].split(";")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rule_from": "dibao.standard"}, "or the name of a date parameter, got money (yuan)"),
        ({"rule_from": "no_such_date"}, "unknown name `no_such_date`"),
        ({"row_from": "status.last_review_date"}, "or the name of a date parameter, got `status.last_review_date`"),
    ],
    ids=["not-a-date", "unknown-name", "not-a-parameter"],
)
def test_a_bad_valid_from_is_a_load_problem(tmp_path: Path, change: dict[str, str], message: str) -> None:
    with pytest.raises(RuleLoadError) as info:
        load(_ruleset(tmp_path, **change))
    got = [p.message for p in info.value.problems]
    assert any(message in m for m in got), got


def test_valid_from_needs_a_row_with_a_condition(tmp_path: Path) -> None:
    rules = _ruleset(tmp_path)
    path = rules / "programs" / "zz_dated.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "otherwise: {id: dated.table.none, title: {zh: 无, en: None}, x: 0}",
        "otherwise: {id: dated.table.none, title: {zh: 无, en: None}, valid_from: 2020-01-01, x: 0}",
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert [p.kind for p in info.value.problems] == ["unknown-key"]
    assert "`valid_from` dates a row with a `when` condition" in info.value.problems[0].message
