"""The checked, typed model of a ruleset: what ``load`` returns and backends compile."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from engine import ir
from engine.record import FieldSpec, RecordSchema
from engine.source import Pos
from engine.types import Type
from engine.validation import parameter_coverage

__all__ = [
    "Case",
    "Interval",
    "Outcome",
    "Parameter",
    "ParameterVersion",
    "RegistrySpec",
    "RuleTest",
    "Ruleset",
    "Symbol",
    "Table",
    "TableRow",
]

Text = dict[str, str]  # {"zh": ..., "en": ...}


@dataclass(frozen=True)
class Interval:
    """A numeric interval; ``None`` bounds are infinite."""

    lo: Decimal | None
    lo_closed: bool
    hi: Decimal | None
    hi_closed: bool

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else str(self.lo)
        hi = "inf" if self.hi is None else str(self.hi)
        return f"{'[' if self.lo_closed else '('}{lo}, {hi}{']' if self.hi_closed else ')'}"

    def contains(self, v: Any) -> bool:
        if self.lo is not None and (v < self.lo or (v == self.lo and not self.lo_closed)):
            return False
        return not (self.hi is not None and (v > self.hi or (v == self.hi and not self.hi_closed)))


@dataclass
class TableRow:
    id: str
    title: Text
    interval: Interval | None
    cond: ir.Expr | None
    cells: dict[str, ir.Expr]
    pos: Pos


@dataclass
class Table:
    hit_policy: str  # unique | first | max
    input: ir.Expr | None
    outputs: dict[str, Type]
    rows: list[TableRow]
    otherwise: TableRow | None
    max_by: str | None = None


@dataclass
class Case:
    id: str
    value: Any
    cond: ir.Expr | None  # None for `otherwise`
    sets: dict[str, ir.Expr]
    title: Text
    legal_basis: str
    messages: dict[str, Text]
    pos: Pos


@dataclass
class Outcome:
    field: str
    cases: list[Case]  # the otherwise case is last, with cond None


@dataclass
class Symbol:
    """A named value. ``kind`` says where it comes from and how a backend computes it."""

    name: str
    scope: str  # household | member
    kind: str  # input parameter registry derived rule case table table_output outcome output set finding
    type: Type | None = None
    title: Text = field(default_factory=dict)
    legal_basis: str = ""
    program: str = ""
    pos: Pos = Pos("<engine>", 0, 0)
    expr: ir.Expr | None = None
    applies: ir.Expr | None = None
    report: str = "never"  # fail | fire | always | never
    messages: dict[str, Text] = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    shown: tuple[tuple[str, str], ...] = ()  # (scope, name) of values an explanation shows
    table: Table | None = None
    outcome: Outcome | None = None
    owner: str = ""  # table or outcome a table_output / set / case belongs to
    column: str = ""  # the table column or outcome field
    code: str = ""  # finding code
    raw: Any = None  # the definition as read from its file, for the checker


@dataclass
class ParameterVersion:
    start: dt.date
    value: Any
    formula: ir.Expr | None
    formula_text: str
    reference: str
    pos: Pos


@dataclass
class Parameter:
    name: str
    title: Text
    type: Type
    regions: dict[str, list[ParameterVersion]]  # sorted by start; "*" = any region
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
    symbols: dict[tuple[str, str], Symbol]
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

    def __post_init__(self) -> None:
        # Every validator rejects a region or date without parameters in force: computed once
        # per ruleset, on a copy of the record schema (a changed ruleset may cover other dates).
        self.record = replace(self.record, coverage=parameter_coverage(self), _row=None)

    @property
    def ruleset_version(self) -> str:
        return f"{self.version}+{self.digest[:12]}"

    def symbol(self, name: str, scope: str = "household") -> Symbol:
        return self.symbols[(scope, name)]

    def reported(self, scope: str) -> list[Symbol]:
        return [s for (sc, _), s in self.symbols.items() if sc == scope and s.report != "never"]

    def findings(self) -> list[Symbol]:
        return [s for s in self.symbols.values() if s.kind == "finding"]
