"""The ability tables are versioned by the day of the assessment (``assessed_on``), not the
decision date (DOMAIN-2.md §9, ``dated_by`` in ``rules/programs/ability.yaml``): an
assessment made before a table change is graded by the table it was made under, however
late the decision, in the generated code, the closures and the caseload kernel alike."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import Evaluator, load
from engine.errors import RuleLoadError
from engine.evaluator import ClosureEvaluator
from engine.vector import decide_caseload, jsonl_to_tables
from tests.conftest import RULES
from tests.engine.test_member_objects import _household

CHANGE = "2019-09-01"
# a made-up change of 表4 (a policy copy, not the standard): from CHANGE, vision 1 is grade 3
NEW_ROW = f"""      - id: ability.sensory_grade.changed
        title: {{zh: 变更后：视力为1即重度受损, en: "After the change: vision 1 is severe"}}
        valid_from: {CHANGE}
        when: ability_assessment.sensory.vision == 1
        grade: 3
"""
ANCHOR = "      - id: ability.sensory_grade.severe\n"


def _copy(tmp: Path, edit: tuple[str, str]) -> Path:
    rules = tmp / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "programs" / "ability.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(edit[0]) == 1
    path.write_text(text.replace(edit[0], edit[1]), encoding="utf-8")
    return rules


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Evaluator:
    return Evaluator(load(_copy(tmp_path_factory.mktemp("ability_dates"), (ANCHOR, NEW_ROW + ANCHOR))))


def _assessed(on: str, decided: str, hid: str) -> dict[str, Any]:
    h = _household(assessed_on=on, sensory__vision=1)
    h["household_id"], h["decision_date"] = hid, decided
    return h


def test_an_assessment_is_graded_by_the_table_of_its_own_day(changed: Evaluator) -> None:
    cases = [
        ("2019-07-01", "2019-10-01", 0),  # made before the change, decided after it: the old table
        ("2019-09-01", "2019-10-01", 3),  # made on the day of the change
        ("2019-08-31", "2019-08-31", 0),
    ]
    households = [_assessed(on, decided, f"D-{i}") for i, (on, decided, _) in enumerate(cases)]
    closures = ClosureEvaluator(changed.ruleset)
    levels = []
    for h, (_, _, grade) in zip(households, cases, strict=True):
        d = changed.decide(h)
        assert [a["sensory_grade"] for a in d.to_dict(explain=False)["ability"]] == [grade]
        levels.append(d.fields["ability_max_level"])
        assert closures.decide(h).fields["ability_max_level"] == levels[-1]
    assert levels[0] != levels[1]  # the change reaches the level
    for h, level in zip(households, levels, strict=True):  # one date per caseload
        hh, mm, _ = jsonl_to_tables([json.dumps(h)], changed.ruleset.record)
        out, rejects = decide_caseload(changed, hh, mm, today=dt.date(2019, 12, 31))
        assert rejects.height == 0
        assert out.get_column("ability_max_level").to_list() == [level]


def test_dated_by_must_be_a_date(tmp_path: Path) -> None:
    bad = "    dated_by: ability_assessment.assessed_on\n"
    rules = _copy(tmp_path, (bad + "    hit_policy: first", "    dated_by: ability.adl_total\n    hit_policy: first"))
    with pytest.raises(RuleLoadError, match="`dated_by` is a date"):
        load(rules)
