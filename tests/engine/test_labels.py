"""Labels live in the rule files: a record field without a title, or an enumeration value
without a label, is a lint problem at its line; the labels reach every value a message shows."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from engine import RuleLoadError, Ruleset, load
from engine.labels import Labels, plain_reference
from tests.conftest import RULES


def _problems(tmp_path: Path, old: str, new: str) -> list[str]:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    record = target / "record.yaml"
    text = record.read_text(encoding="utf-8")
    assert old in text
    record.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleLoadError) as info:
        load(target)
    return [str(p) for p in info.value.problems]


def _line(needle: str) -> int:
    lines = (RULES / "record.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_an_enumeration_value_without_a_label_is_reported_at_its_field(tmp_path: Path) -> None:
    got = _problems(tmp_path, "      mild: {zh: 轻度残疾, en: mild}\n", "")
    line = _line("  disability:")
    assert got == [
        f"record.yaml:{line + 1}:5: missing-key: field `disability`: value `mild` needs a label (`zh`, `en`)"
    ]


def test_a_field_without_an_english_title_is_reported(tmp_path: Path) -> None:
    got = _problems(tmp_path, "title: {zh: 空巢, en: Empty nest}", "title: {zh: 空巢}")
    assert got == [f"record.yaml:{_line('empty_nest:')}:15: missing-key: field `empty_nest` needs a `title` with `en`"]


def test_a_label_for_no_value_is_reported(tmp_path: Path) -> None:
    got = _problems(
        tmp_path,
        "      other: {zh: 其他, en: other}\n",
        "      other: {zh: 其他, en: other}\n      cousin: {zh: 堂亲, en: cousin}\n",
    )
    assert any("field `relation`: `cousin` in labels is not a value" in p for p in got)


def test_values_read_through_the_labels(ruleset: Ruleset) -> None:
    labels = Labels.of(ruleset)
    assert labels.human("labor_capacity", "partial", "zh") == "部分劳动能力"
    assert labels.human("dibao_status", "single_person", "en") == "single-person inclusion"
    assert labels.human("request.cause", "sudden_death", "zh") == "家庭成员突然死亡"
    assert labels.with_unit("dibao_amount", Decimal("20000"), "zh") == "20000.00 元"
    # a per-capita figure is never rounded into a contradiction: 2369.99 / 3 is below 790.00
    assert labels.human("per_capita_income", Decimal("2369.99") / 3, "zh") == "789.9966…"
    assert (
        labels.person({"person_id": "320684195001010014", "name": "王芳"}, "zh")
        == "王芳（身份证号 3206**********0014）"
    )


def test_curation_tags_never_reach_officers(ruleset: Ruleset) -> None:
    for p in ruleset.parameters.values():
        for versions in p.regions.values():
            for v in versions:
                assert "[" not in plain_reference(v.reference), v.reference
