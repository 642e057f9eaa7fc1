"""A member's object fields (``record.yaml`` groups inside ``member``, nested, null meaning
"not applicable"): read alike by the row and column validators, flattened to
``a_b_c`` columns in tables, and decided alike by the generated code, the closures and the
caseload kernel when a rule reads them."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine import Evaluator, load
from engine.evaluator import ClosureEvaluator
from engine.vector import decide_caseload, jsonl_to_tables
from engine.vector.caseload import flat_columns, tables_to_households, validate_frames
from tests.conftest import FIXTURES, RULES
from tests.engine.test_validation_property import TODAY, _schema, by_columns, by_row

ASSESSMENT: dict[str, Any] = {
    "assessed_on": "2019-07-01",
    "adl": {"feeding": 10, "bathing": 5, "grooming": 5, "dressing": 10, "bowel": 10, "bladder": 10,
            "toileting": 10, "transfer": 15, "walking": 15, "stairs": 10},
    "mental": {"cognition": 0, "aggression": 0, "depression": 0},
    "sensory": {"consciousness": 0, "vision": 0, "hearing": 0, "communication": 0},
    "social": {"daily_living": 0, "work": 0, "orientation_time_space": 0, "orientation_person": 0, "interaction": 0},
    "mental_illness_diagnosed": False,
    "risk_events_30d": {"falls": 0, "wandering": 0, "choking": 0, "suicide": 0, "other": 0},
}  # fmt: skip
P = "members[0].ability_assessment."


def _household(**changes: Any) -> dict[str, Any]:
    h: dict[str, Any] = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    a = copy.deepcopy(ASSESSMENT)
    for path, value in changes.items():
        obj = a
        *inner, last = path.split("__")
        for key in inner:
            obj = obj[key]
        obj[last] = value
    h["members"][0]["ability_assessment"] = a
    return h


CASES: list[tuple[dict[str, Any], set[tuple[str, str]] | None]] = [
    ({}, None),
    ({"adl__bathing": 10}, {(P + "adl.bathing", "must be one of 0, 5 (got '10')")}),
    ({"adl__feeding": " 5 "}, None),
    ({"adl": None}, {(P + "adl", "is required")}),
    ({"adl": [1]}, {(P + "adl", "must be an object")}),
    ({"adl__foo": 1}, {(P + "adl.foo", "unknown field")}),
    ({"sensory__consciousness": 3, "sensory__vision": None, "social": None}, None),
    (
        {"sensory__vision": None, "social": None},
        {
            (P + "sensory.vision", "is required when consciousness is 0, 1 or 2"),
            (P + "social", "is required when consciousness is 0, 1 or 2"),
        },
    ),
    (
        {"assessed_on": "2030-01-01"},
        {(P + "assessed_on", "must not be after decision_date 2019-08-01 (got 2030-01-01)")},
    ),
    ({"assessed_on": "2013-09-30"}, {(P + "assessed_on", "must be at least 2013-10-01 (got 2013-09-30)")}),
    ({"assessed_on": "2013-10-01"}, None),
    ({"risk_events_30d__falls": 4}, {(P + "risk_events_30d.falls", "must be at most 3 (got 4)")}),
]


@pytest.mark.parametrize(("changes", "problems"), CASES)
def test_both_validators_read_a_member_object_alike(
    changes: dict[str, Any], problems: set[tuple[str, str]] | None
) -> None:
    h = _household(**changes)
    row = by_row(_schema(), h, TODAY)
    assert row == by_columns(_schema(), h, TODAY)
    if problems is None:
        assert row[0] == "ok"
        member = row[2][0]
        assert member["ability_assessment"] is True
        assert member["ability_assessment.adl.feeding"] == int(
            str(h["members"][0]["ability_assessment"]["adl"]["feeding"])
        )
    else:
        assert row == ("rejected", problems)


def test_an_absent_object_is_null_through_and_through() -> None:
    h = _household()
    h["members"][0]["ability_assessment"] = None
    row = by_row(_schema(), h, TODAY)
    assert row == by_columns(_schema(), h, TODAY)
    member = row[2][0]
    keys = [k for k in member if k.startswith("ability_assessment")]
    assert len(keys) > 30
    assert all(member[k] is None for k in keys)


def test_tables_hold_flattened_columns_and_read_back(tmp_path: Path) -> None:
    """A members table (CSV) has ``ability_assessment_adl_feeding`` and so on; read back to
    JSON it is the same assessment, and validated it is the same member."""
    schema = _schema()
    h = _household(**{"sensory__consciousness": 3, "sensory__vision": None, "social": None})
    hh, mm, _ = jsonl_to_tables([json.dumps(h)], schema)
    _, members = flat_columns(schema)
    assert "ability_assessment_adl_feeding" in members
    assert "ability_assessment_social_work" in members
    table = mm.select([c for c in mm.columns if not c.startswith("~")])
    table.write_csv(tmp_path / "members.csv")
    back = tables_to_households(schema, hh.drop([c for c in hh.columns if c.startswith("~")]),
                                pl.read_csv(tmp_path / "members.csv", infer_schema=False))  # fmt: skip
    got = back[0]["members"][0]["ability_assessment"]
    assert got["adl"] == {k: str(v) for k, v in ASSESSMENT["adl"].items()}
    assert "social" not in got
    assert got["sensory"] == {"consciousness": "3", "hearing": "0", "communication": "0"}
    csv_members = pl.read_csv(tmp_path / "members.csv", infer_schema=False)
    good_h, good_m, rejects = validate_frames(schema, hh.drop("~row"), csv_members, TODAY)
    assert rejects.height == 0
    assert good_h.height == 1
    assert good_m.row(0, named=True)["ability_assessment.adl.stairs"] == 10
    assert good_m.row(0, named=True)["ability_assessment.social"] is None


PROBE = """\
program: probe
title: {zh: 探针, en: Probe}
legal_basis: test
derived:
  - id: probe.adl_part
    per: member
    title: {zh: 进食与洗澡, en: Feeding and bathing}
    expr: "ability_assessment.adl.feeding + ability_assessment.adl.bathing if ability_assessment is not None else 0"
  - id: probe.social_part
    per: member
    title: {zh: 社会参与, en: Social}
    expr: "ability_assessment.social.work if ability_assessment.social is not None else -1"
outputs:
  - id: probe_total
    title: {zh: 合计, en: Total}
    type: int
    expr: sum(m.probe.adl_part + m.probe.social_part for m in counted_members)
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Evaluator:
    """The bundled rules plus a program that reads a member's nested object fields."""
    rules = tmp_path_factory.mktemp("objects") / "rules"
    shutil.copytree(RULES, rules)
    (rules / "programs" / "probe.yaml").write_text(PROBE, encoding="utf-8")
    ruleset = rules / "ruleset.yaml"
    ruleset.write_text(ruleset.read_text(encoding="utf-8").replace("  - findings\n", "  - probe_total\n  - findings\n"))
    return Evaluator(load(rules))


def test_every_backend_reads_nested_member_fields(probe: Evaluator) -> None:
    households = []
    for i, changes in enumerate(
        [{}, {"adl__feeding": 5, "social__work": 3}, {"sensory__consciousness": 3, "social": None}, None]
    ):
        h = _household(**(changes or {}))
        if changes is None:
            h["members"][0]["ability_assessment"] = None
        h["household_id"] = f"P-{i}"
        households.append(h)
    want = [15 + 0, 10 + 3, 15 - 1, 0 - 1]  # adl feeding + bathing, social work (-1: no social)
    closures = ClosureEvaluator(probe.ruleset)
    scalar = [probe.decide(h).fields["probe_total"] for h in households]
    assert scalar == [closures.decide(h).fields["probe_total"] for h in households]
    extra = -(len(households[0]["members"]) - 1)  # the other members, not assessed: -1 each
    assert scalar == [w + extra for w in want]
    hh, mm, _ = jsonl_to_tables([json.dumps(h) for h in households], probe.ruleset.record)
    decisions, rejects = decide_caseload(probe, hh, mm, today=dt.date(2019, 8, 1))
    assert rejects.height == 0
    assert decisions.get_column("probe_total").to_list() == scalar
