"""The typed, frozen plan of a ruleset: one immutable definition per named value.

The loader checks drafts and freezes each, once, into its class here; every backend (the
generated Python, the closures, the columnar kernel) and every job reads only these. A
backend dispatches on a definition's class through a table (``{Rule: ..., Table: ...}``),
never on a name. Whether a traced definition is a reason in an explanation is decided in
one place, ``Traced.reported``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from engine import ir
from engine.source import Pos
from engine.types import Type

if TYPE_CHECKING:
    from engine.plan_records import RecordType

__all__ = [
    "BUILTIN_FIELDS",
    "HOUSEHOLD",
    "OUTCOMES",
    "Arm",
    "Case",
    "CaseSet",
    "CaseValue",
    "DecisionField",
    "Definition",
    "Derived",
    "Finding",
    "InputField",
    "Interval",
    "Outcome",
    "Output",
    "ParameterRef",
    "Plan",
    "RegistryRef",
    "Rule",
    "Table",
    "TableOutput",
    "TableRow",
    "Traced",
    "applies_of",
    "expressions",
]

Text = dict[str, str]  # {"zh": ..., "en": ...}
HOUSEHOLD = "household"  # the record type every ruleset has
Key = tuple[str, str]  # (scope, name)

# fields every decision has, whatever the rules define
BUILTIN_FIELDS = ("household_id", "decision_date", "ruleset_version", "findings", "reasons")

# what a traced definition did for one household (or member), as explanations name it
OUTCOMES = ("pass", "fail", "fired", "not_fired", "not_applicable")

# `report:` of a rule file -> the outcomes for which the definition is a reason
_REPORTED: Mapping[str, frozenset[str]] = {
    "always": frozenset(OUTCOMES),
    "fail": frozenset({"fail"}),
    "fire": frozenset({"pass", "fired"}),
    "pass": frozenset({"pass", "fired"}),
    "never": frozenset(),
}


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


@dataclass(frozen=True, slots=True, eq=False)
class TableRow:
    id: str
    title: Text
    interval: Interval | None
    cond: ir.Expr | None
    cells: Mapping[str, ir.Expr]
    pos: Pos


@dataclass(frozen=True, slots=True, eq=False)
class Lookup:
    """A unique table over several inputs as a lookup: the first row (its index, -1 for
    none) for each combination of the inputs' values, each input's domain followed by one
    slot for a null or any other value (which only a row that leaves that input out covers)."""

    inputs: tuple[ir.Expr, ...]
    domains: tuple[tuple[Any, ...], ...]
    rows: tuple[int, ...]  # row-major over the domains, the last input varying fastest


@dataclass(frozen=True, slots=True, eq=False)
class Arm:
    """One case of an outcome as its outcome evaluates it: condition, value, fields it sets."""

    id: str
    value: Any
    cond: ir.Expr | None  # None for `otherwise`
    sets: Mapping[str, ir.Expr]
    title: Text
    legal_basis: str
    messages: Mapping[str, Text]
    pos: Pos


# ------------------------------------------------------------------ definitions


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Definition:
    """A named value. Its class says where it comes from and how a backend computes it."""

    kind: ClassVar[str]  # the name explanations and listings show for the class

    name: str
    scope: str  # household | member
    type: Type
    title: Text = field(default_factory=dict)
    program: str = ""
    legal_basis: str = ""
    pos: Pos = Pos("<engine>", 0, 0)
    deps: tuple[Key, ...] = ()  # the definitions it reads (its owner first, if it has one)

    @property
    def key(self) -> Key:
        return (self.scope, self.name)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class InputField(Definition):
    """A field of the household record (or of each member)."""

    kind: ClassVar[str] = "input"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ParameterRef(Definition):
    """A dated parameter; its value is resolved per region and date (``engine.parameters``)."""

    kind: ClassVar[str] = "parameter"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RegistryRef(Definition):
    """The keys of a registry (``registry.NAME``), supplied with each decision."""

    kind: ClassVar[str] = "registry"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Derived(Definition):
    kind: ClassVar[str] = "derived"
    expr: ir.Expr


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Output(Definition):
    """A decision field computed by one expression."""

    kind: ClassVar[str] = "output"
    expr: ir.Expr


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Traced(Definition):
    """A definition an explanation lists: a rule, a case, a table or a finding."""

    # its outcome when it holds (a case or finding, a table row chosen), and when not
    outcomes: ClassVar[tuple[str, str]] = ("fired", "not_fired")
    report: str = "never"  # fail | fire | pass | always | never: when it is a reason
    messages: dict[str, Text] = field(default_factory=dict)
    shown: tuple[Key, ...] = ()  # values its explanation shows

    @property
    def reported_on(self) -> frozenset[str]:
        """The outcomes (``OUTCOMES``) for which this definition is a reason."""
        return _REPORTED[self.report]

    def reported(self, outcome: str) -> bool:
        """Whether this definition, with this outcome, is a reason: the one reporting rule."""
        return outcome in _REPORTED[self.report]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Rule(Traced):
    kind: ClassVar[str] = "rule"
    outcomes: ClassVar[tuple[str, str]] = ("pass", "fail")
    expr: ir.Expr
    applies: ir.Expr | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Finding(Traced):
    kind: ClassVar[str] = "finding"
    expr: ir.Expr
    code: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Table(Traced):
    """A decision table; its value is the chosen row (index into ``all_rows``)."""

    kind: ClassVar[str] = "table"
    hit_policy: str  # unique | first | max
    input: ir.Expr | None
    outputs: Mapping[str, Type]
    rows: tuple[TableRow, ...]
    otherwise: TableRow | None
    max_by: str | None = None
    applies: ir.Expr | None = None
    lookup: Lookup | None = None  # a unique table over several inputs: its rows' conditions as a lookup

    @property
    def all_rows(self) -> tuple[TableRow, ...]:
        """The rows then the ``otherwise`` row: the index a table value stands for."""
        return (*self.rows, self.otherwise) if self.otherwise is not None else self.rows


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TableOutput(Definition):
    """One output column of a table (``table.column``): the chosen row's cell."""

    kind: ClassVar[str] = "table_output"
    table: Table
    column: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Outcome(Definition):
    """An outcome: its value is the index of the first case whose condition holds."""

    kind: ClassVar[str] = "outcome_index"
    hit_policy: str  # first: the cases in the order written, `otherwise` last
    field: str  # the decision field its cases give a value to
    cases: tuple[Arm, ...]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Case(Traced):
    """Whether a case of an outcome is the one that applies."""

    kind: ClassVar[str] = "case"
    outcome: Outcome
    index: int

    @property
    def arm(self) -> Arm:
        return self.outcome.cases[self.index]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CaseValue(Definition):
    """An outcome's field: the value of the case that applies."""

    kind: ClassVar[str] = "outcome"
    outcome: Outcome


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CaseSet(Definition):
    """A field the cases of an outcome set: the expression of the case that applies."""

    kind: ClassVar[str] = "set"
    outcome: Outcome
    column: str


def applies_of(defn: Definition) -> ir.Expr | None:
    """The condition under which a definition applies (rules and tables may have one)."""
    return defn.applies if isinstance(defn, Rule | Table) else None


def expressions(defn: Definition) -> list[ir.Expr]:
    """Every expression a definition evaluates, its own and (for a table column or a case
    field) the parts of its table or outcome it reads."""
    return [e for e in _EXPRESSIONS.get(type(defn), _none)(defn) if e is not None]


def _none(defn: Any) -> list[ir.Expr | None]:
    return []


def _table_exprs(t: Table) -> list[ir.Expr | None]:
    return [t.applies, t.input, *(r.cond for r in t.all_rows), *(x for r in t.all_rows for x in r.cells.values())]


def _outcome_exprs(o: Outcome) -> list[ir.Expr | None]:
    return [*(c.cond for c in o.cases), *(x for c in o.cases for x in c.sets.values())]


_EXPRESSIONS: Mapping[type, Any] = {
    Derived: lambda d: [d.expr],
    Output: lambda d: [d.expr],
    Finding: lambda d: [d.expr],
    Rule: lambda d: [d.expr, d.applies],
    Table: _table_exprs,
    TableOutput: lambda d: _table_exprs(d.table),
    Outcome: _outcome_exprs,
    Case: lambda d: _outcome_exprs(d.outcome),
    CaseValue: lambda d: _outcome_exprs(d.outcome),
    CaseSet: lambda d: _outcome_exprs(d.outcome),
}


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True, slots=True, eq=False)
class DecisionField:
    """A decision field a program defines, with its type."""

    name: str
    type: Type
    definition: Definition


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """Every definition of a ruleset, as written and in dependency order."""

    definitions: Mapping[Key, Definition]  # in the order the rule files declare them
    order: tuple[Definition, ...]  # each after every definition it reads
    fields: tuple[DecisionField, ...]  # decision fields the programs define, in output order
    # the record types besides the household, each with its own typed symbols (``engine.plan_records``)
    record_types: Mapping[str, RecordType] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def record_type_names(self) -> tuple[str, ...]:
        """Every record type the plan declares: the household first."""
        return (HOUSEHOLD, *self.record_types)

    def inputs(self, record_type: str = "household") -> list[InputField]:
        """The input fields of one record type (the household's: its own and each member's)."""
        if record_type == HOUSEHOLD:
            return [d for d in self.definitions.values() if isinstance(d, InputField)]
        return list(self.record_types[record_type].fields)

    def get(self, name: str, scope: str = "household") -> Definition:
        return self.definitions[(scope, name)]

    def traced(self, scope: str) -> list[Traced]:
        return [d for (sc, _), d in self.definitions.items() if sc == scope and isinstance(d, Traced)]

    def reported(self, scope: str) -> list[Traced]:
        return [d for d in self.traced(scope) if d.reported_on]

    def findings(self) -> list[Finding]:
        return [d for d in self.definitions.values() if isinstance(d, Finding)]

    def __iter__(self) -> Iterator[Definition]:
        return iter(self.definitions.values())
