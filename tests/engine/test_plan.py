"""The typed plan: frozen definitions, typed owners, dependency order, one reporting rule."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine import Evaluator, Ruleset
from engine.plan import (
    BUILTIN_FIELDS,
    OUTCOMES,
    Case,
    CaseSet,
    CaseValue,
    Definition,
    Derived,
    Finding,
    InputField,
    Outcome,
    Output,
    ParameterRef,
    RegistryRef,
    Rule,
    Table,
    TableOutput,
    Traced,
)
from tests.conftest import FIXTURES


def test_definitions_are_frozen(ruleset: Ruleset) -> None:
    for defn in ruleset.plan:
        with pytest.raises(dataclasses.FrozenInstanceError):
            defn.name = "x"  # type: ignore[misc]
        assert not hasattr(defn, "__dict__")  # slots: no attribute can be added later


def test_owners_are_the_definitions_in_the_plan(ruleset: Ruleset) -> None:
    plan = ruleset.plan
    owned = [o for o in plan if isinstance(o, TableOutput | Case | CaseValue | CaseSet)]
    assert owned
    for o in owned:
        owner: Definition = o.table if isinstance(o, TableOutput) else o.outcome
        assert plan.get(owner.name, owner.scope) is owner
        assert o.deps[0] == owner.key
    for c in plan:
        if isinstance(c, Case):
            assert c.outcome.cases[c.index].id == c.name


def test_each_definition_comes_after_what_it_reads(ruleset: Ruleset) -> None:
    seen: set[tuple[str, str]] = set()
    for d in ruleset.plan.order:
        assert set(d.deps) <= seen, d.name
        seen.add(d.key)
    assert seen == set(ruleset.symbols)


def test_decision_fields_are_typed(ruleset: Ruleset) -> None:
    fields = ruleset.plan.fields
    assert [f.name for f in fields] == [f for f in ruleset.decision_fields if f not in BUILTIN_FIELDS]
    for f in fields:
        assert f.type is f.definition.type
    outcome_fields = {f.name: f for f in fields if isinstance(f.definition, CaseValue)}
    assert outcome_fields
    assert all(f.type.kind == "enum" for f in outcome_fields.values())


def test_kind_names_stay_what_listings_show(ruleset: Ruleset) -> None:
    kinds = {type(d): d.kind for d in ruleset.plan}
    assert kinds == {
        InputField: "input",
        ParameterRef: "parameter",
        RegistryRef: "registry",
        Derived: "derived",
        Rule: "rule",
        Table: "table",
        TableOutput: "table_output",
        Outcome: "outcome_index",
        Case: "case",
        CaseValue: "outcome",
        CaseSet: "set",
        Output: "output",
        Finding: "finding",
    }


@pytest.mark.parametrize(
    ("report", "reasons"),
    [
        ("always", set(OUTCOMES)),
        ("fail", {"fail"}),
        ("fire", {"pass", "fired"}),
        ("pass", {"pass", "fired"}),
        ("never", set()),
    ],
)
def test_one_reporting_rule(ruleset: Ruleset, report: str, reasons: set[str]) -> None:
    rule = next(d for d in ruleset.plan if isinstance(d, Rule))
    other = dataclasses.replace(rule, report=report)
    assert {o for o in OUTCOMES if other.reported(o)} == reasons == set(other.reported_on)


def test_every_reason_follows_the_reporting_rule(evaluator: Evaluator) -> None:
    rs = evaluator.ruleset
    tables = {r.id: d for d in rs.plan if isinstance(d, Table) for r in d.all_rows}
    seen = 0
    for path in sorted((FIXTURES / "households").glob("*.json")):
        for r in evaluator.decide(json.loads(path.read_text(encoding="utf-8"))).rules:
            scope = "household" if r.person_id is None else "member"
            defn = tables[r.rule_id] if r.row is not None else rs.symbol(r.rule_id, scope)
            assert isinstance(defn, Traced)
            assert r.reported == defn.reported(r.outcome)
            seen += 1
    assert seen > 100
