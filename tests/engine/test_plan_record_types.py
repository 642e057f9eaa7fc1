"""The typed plan declares more than one record type: the candidate review (DOMAIN-2.md §11)
is loaded into it as typed symbols, and its interpreter decides from those symbols alone."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from engine import SubjectEvaluator, ir, load
from engine.plan_records import DatedParameter, DatedRegistry, RecordInput, RecordType, SubjectRule
from engine.ruleset import Ruleset
from engine.types import BOOL
from tests.conftest import RULES

FILE = RULES / "record_types" / "candidate.yaml"


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load(RULES)


def _raw() -> dict[str, Any]:
    doc = yaml.safe_load(FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_the_plan_declares_each_record_type(ruleset: Ruleset) -> None:
    plan = ruleset.plan
    assert plan.record_type_names[0] == "household"
    assert set(plan.record_type_names[1:]) == set(yaml.safe_load((RULES / "ruleset.yaml").read_text())["record_types"])
    # one declaration: the ruleset's record types are the plan's
    assert ruleset.record_types is plan.record_types
    household_inputs = {d.name for d in plan.inputs("household")}
    assert "household_id" in household_inputs
    assert "birth_date" not in {d.name for d in plan.inputs("household") if d.scope == "household"}


def test_candidate_fields_are_typed_symbols_of_their_record_type(ruleset: Ruleset) -> None:
    spec = ruleset.plan.record_types["candidate"]
    raw = _raw()["record"]
    assert isinstance(raw, dict)
    fields = ruleset.plan.inputs("candidate")
    assert [f.name for f in fields] == list(raw)
    for f in fields:
        assert isinstance(f, RecordInput)
        assert f.scope == "candidate"
        assert f.type.kind == raw[f.name]["type"]
        assert f.type.nullable == bool(raw[f.name].get("nullable", False))
        assert f.pos.file == "record_types/candidate.yaml"
        assert f.pos.line > 1
    assert spec.symbols[("candidate", "birth_date")].type.kind == "date"


def test_parameters_registries_and_rules_are_symbols_with_their_basis(ruleset: Ruleset) -> None:
    spec = ruleset.plan.record_types["candidate"]
    raw = _raw()
    kinds = {type(d) for d in spec.symbols.values()}
    assert kinds == {RecordInput, DatedParameter, DatedRegistry, SubjectRule}
    listed = spec.parameters["candidate.negative_list"]
    assert listed.type.kind == "list"  # a list-valued parameter is typed as such
    assert spec.parameters["candidate.criminal_lookback_years"].type.nullable
    assert set(spec.registries) == set(raw["registries"])
    for rule, written in zip(spec.rules, raw["rules"], strict=True):
        assert rule.id == written["id"]
        assert rule.legal_basis == written["legal_basis"]
        assert rule.pos.file == "record_types/candidate.yaml"
        assert rule.test.type.kind == "bool"
    negative = next(r for r in spec.rules if r.id == "candidate.negative")
    assert isinstance(negative.test, ir.Records)
    assert negative.test.categories_from is not None
    assert negative.test.categories_from.name == "candidate.negative_list"
    age = next(r for r in spec.rules if r.id == "candidate.statutory.age")
    assert isinstance(age.test, ir.Compare)
    assert isinstance(age.test.left, ir.Call)
    assert age.test.left.fn == "years_between"


RECORD = {
    "candidate_id": "P-1",
    "region": "320684",
    "township": None,
    "village": None,
    "committee": "villagers",
    "subject": "candidate",
    "person_id": "320684197503020190",
    "name": None,
    "birth_date": "1975-03-02",
    "registered_voter": True,
    "term_start": None,
    "review_batch_id": "B",
    "review_date": "2019-10-10",
    "election_date": "2019-11-05",
}


def _with_rule(spec: RecordType, rid: str, **changes: object) -> RecordType:
    rules = tuple(dataclasses.replace(r, **changes) if r.id == rid else r for r in spec.rules)  # type: ignore[arg-type]
    return dataclasses.replace(spec, rules=rules)


def test_the_interpreter_decides_from_the_plan_expressions(ruleset: Ruleset) -> None:
    """Change one rule's expression in the plan and the decision follows it: the interpreter
    has no declaration of its own."""
    spec = ruleset.plan.record_types["candidate"]
    before = SubjectEvaluator(spec).decide(RECORD).to_dict(explain=False)
    assert "candidate.statutory.voter" not in [r["id"] for r in before["reasons"]]
    voter = next(f for f in spec.fields if f.name == "registered_voter")
    flipped = ir.Compare(BOOL, "==", ir.Ref(voter.type, voter.name, "candidate"), ir.Const(voter.type, True))
    after = SubjectEvaluator(_with_rule(spec, "candidate.statutory.voter", test=flipped)).decide(RECORD)
    assert "candidate.statutory.voter" in [r["id"] for r in after.reasons]
    # a rule whose `applies` no longer holds is not applicable, whatever its test
    never = ir.Compare(BOOL, "==", ir.Ref(voter.type, voter.name, "candidate"), ir.Const(voter.type, False))
    out = SubjectEvaluator(_with_rule(spec, "candidate.statutory.voter", test=flipped, applies=never)).decide(RECORD)
    outcome = {e["id"]: e["outcome"] for e in out.explanation}
    assert outcome["candidate.statutory.voter"] == "not_applicable"
