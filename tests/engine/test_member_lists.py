"""Per-member lists in JSON decisions (`reports.member_lists` of ruleset.yaml): one entry per
listed member, the same from the generated code and the closures, names checked at load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import Evaluator, RuleLoadError, load
from engine.evaluator import ClosureEvaluator
from engine.types import resident_id_check_digit
from tests.conftest import FIXTURES, RULES

_LIST = """\
  member_lists:
    elders:
      when: tekun.category
      fields:
        age: age
        tests: {own_income: tekun.own_income, no_supporter: tekun.no_supporter}
        basic_living: tekun.basic_living
        hours: elderly_care.group.hours
"""


def _rules(tmp_path: Path, when: str = "tekun.category") -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "ruleset.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  member_lists:\n", _LIST.replace("tekun.category", when), 1), encoding="utf-8")
    return rules


def _household(hid: str) -> dict[str, Any]:
    h: dict[str, Any] = json.loads((FIXTURES / "households" / f"{hid}.json").read_text(encoding="utf-8"))
    return h


def test_listed_members_with_values_and_labels(tmp_path: Path) -> None:
    ruleset = load(_rules(tmp_path))
    h = _household("HM-2019-000114")  # two members aged 60 or more: both listed
    got = Evaluator(ruleset).decide(h).to_dict(explain=False)
    assert [e["person_id"] for e in got["elders"]] == [m["person_id"] for m in h["members"]]
    first = got["elders"][0]
    assert first["age"] == 68
    assert first["basic_living"] == "1027.00"
    assert first["tests"] == ["own_income"]  # income 0.00 is below the standard; has a supporter
    assert sum(e["hours"] for e in got["elders"]) == got["elderly_care_hours"] > 0
    assert ClosureEvaluator(ruleset).decide(h).to_dict(explain=False)["elders"] == got["elders"]


def test_a_member_not_listed_and_no_lists_by_default(tmp_path: Path, evaluator: Evaluator) -> None:
    ruleset = load(_rules(tmp_path))
    h = _household("HM-2019-000114")
    young = "32068419901010057"  # a member aged 28: not in the tekun categories, not listed
    h["members"][1] |= {"birth_date": "1990-10-10", "person_id": young + resident_id_check_digit(young)}
    got = Evaluator(ruleset).decide(h).to_dict(explain=False)
    assert [e["person_id"] for e in got["elders"]] == [h["members"][0]["person_id"]]
    assert "elders" not in evaluator.decide(h).to_dict(explain=False)


def test_an_unknown_name_is_a_load_problem(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as info:
        load(_rules(tmp_path, when="tekun.categry"))
    assert any("member_lists: `tekun.categry` is not a named value" in p.message for p in info.value.problems)


def test_one_declaration_for_every_list(tmp_path: Path) -> None:
    """The §9.4 ability list and the §10.4 children list are both `reports.member_lists`;
    the former second form (a top-level `member_lists` read from one rule's explanation) is refused."""
    ruleset = load(RULES)
    assert list(ruleset.reports["member_lists"]) == ["ability", "children"]
    h = _household("HM-2019-000117")  # in a coma: social participation not assessed, its table not applied
    got = Evaluator(ruleset).decide(h).to_dict(explain=False)
    assert [(a["preliminary_row"], a["final_level"], a["social_grade"]) for a in got["ability"]] == [
        ("ability.level.coma", 3, None)
    ]
    assert ClosureEvaluator(ruleset).decide(h).to_dict(explain=False)["ability"] == got["ability"]
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "ruleset.yaml"
    extra = "member_lists:\n  ability:\n    from: ability.result\n    fields: {final_level: ability.final_level}\n"
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert any("member_lists" in p.message for p in info.value.problems)
