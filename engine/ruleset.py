"""The checked ruleset: what ``load`` returns. Its definitions are the frozen ``Plan``
(``engine.plan``); beside them, the dated parameters, registries, rule tests and files."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine import ir
from engine.plan import Definition, Finding, Interval, Key, Plan, TableRow, Text, Traced
from engine.record import FieldSpec, RecordSchema
from engine.source import Pos
from engine.types import Type
from engine.validation.rules import parameter_coverage

if TYPE_CHECKING:
    from engine.plan_records import RecordType

__all__ = [
    "Interval",
    "Parameter",
    "ParameterVersion",
    "RegistrySpec",
    "RuleTest",
    "Ruleset",
    "TableRow",
]


@dataclass(frozen=True)
class ParameterVersion:
    start: dt.date
    value: Any
    formula: ir.Expr | None
    formula_text: str
    reference: str
    pos: Pos


@dataclass(frozen=True)
class Parameter:
    name: str
    title: Text
    type: Type
    regions: Mapping[str, Sequence[ParameterVersion]]  # sorted by start; "*" = any region
    pos: Pos

    def version(self, region: str, on: dt.date) -> tuple[str, ParameterVersion] | None:
        key = region if region in self.regions else "*"
        versions = self.regions.get(key)
        if not versions:
            return None
        i = bisect.bisect_right([v.start for v in versions], on) - 1
        return (key, versions[i]) if i >= 0 else None


@dataclass
class RegistrySpec:
    name: str
    title: Text
    key: str
    columns: list[FieldSpec]
    computed: str | None = None  # e.g. "duplicates_of:person_id"


@dataclass
class RuleTest:
    name: str
    file: str
    pos: Pos
    date: dt.date | None
    household: dict[str, Any]
    expected: dict[str, Any]
    registries: dict[str, list[str]]


@dataclass
class Ruleset:
    name: str
    version: str
    digest: str
    record: RecordSchema
    plan: Plan
    parameters: dict[str, Parameter]
    parameter_order: list[str]
    registries: dict[str, RegistrySpec]
    decision_fields: list[str]
    explain_members: str
    programs: list[dict[str, Any]]
    tests: list[RuleTest]
    files: dict[str, str]  # display name -> text, for publishing and replay
    default_region: str = ""
    events: dict[str, Any] = field(default_factory=dict)  # event type -> engine.events.EventSpec
    reports: dict[str, Any] = field(default_factory=dict)  # what summaries and reports show
    # the rule test files of the record types besides the household
    record_type_tests: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    # each decision field's {title, values: {code: label}} (ruleset.yaml `labels`)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every validator rejects a region or date without parameters in force: computed once
        # per ruleset, on a copy of the record schema (a changed ruleset may cover other dates).
        self.record = replace(self.record, coverage=parameter_coverage(self), _row=None)

    @property
    def record_types(self) -> Mapping[str, RecordType]:
        """The record types besides the household, as the plan declares them."""
        return self.plan.record_types

    @property
    def ruleset_version(self) -> str:
        return f"{self.version}+{self.digest[:12]}"

    @property
    def symbols(self) -> Mapping[Key, Definition]:
        """Every definition by (scope, name), in the order the rule files declare them."""
        return self.plan.definitions

    def symbol(self, name: str, scope: str = "household") -> Definition:
        return self.plan.get(name, scope)

    def reported(self, scope: str) -> list[Traced]:
        return self.plan.reported(scope)

    def findings(self) -> list[Finding]:
        return self.plan.findings()

    def rules(self) -> list[Traced]:
        """Every explained definition (rules, cases, tables, findings): household ones, then per-member ones."""
        return self.plan.traced("household") + self.plan.traced("member")
