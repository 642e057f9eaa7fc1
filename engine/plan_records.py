"""Record types besides the household in the typed plan.

A record type besides the household (DOMAIN-2.md §11) declares its own typed symbols, scoped by the
record type's name: the record's fields (``RecordInput``), its dated parameters, list-valued
ones included (``DatedParameter``), its registries of dated rows (``DatedRegistry``) and its
rules (``SubjectRule``), each test an ``engine.ir`` expression (``ir.Records`` for the rows
of a category in a time window). The loader checks them once (``engine.subjects.spec``);
every backend reads only these.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine import ir
from engine.plan import Definition, InputField, Key, ParameterRef, Text, Traced

__all__ = [
    "LABELS",
    "WINDOWS",
    "Category",
    "Column",
    "DatedParameter",
    "DatedRegistry",
    "ParamVersion",
    "RecordInput",
    "RecordType",
    "SubjectRule",
]

LABELS = ("seed", "verified", "decision", "illustrative")
WINDOWS = ("ever", "active", "active_on", "within_years_of_start", "within_years_of_end")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RecordInput(InputField):
    """A field of a record type's record, with the checks its validator makes."""

    required_when: tuple[tuple[str, str], ...] = ()
    min: str | None = None  # another date field this one may not precede
    max: str | None = None  # another date field this one may not follow


@dataclass(frozen=True)
class ParamVersion:
    start: dt.date
    value: Any
    label: str
    reference: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DatedParameter(ParameterRef):
    """A dated parameter of a record type with its versions; ``unit`` is int, int?,
    categories (a list of category ids) or departments (a department for each category)."""

    unit: str
    regions: Mapping[str, tuple[ParamVersion, ...]]

    def version(self, region: str, on: dt.date) -> ParamVersion | None:
        versions = self.regions.get(region) or self.regions.get("*") or ()
        i = bisect.bisect_right([v.start for v in versions], on) - 1
        return versions[i] if i >= 0 else None


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # an input kind, or `category`
    nullable: bool = False
    after: str | None = None  # a date column this one must be strictly after


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DatedRegistry(Definition):
    """A registry of dated rows (not a key set), matched on one record field."""

    kind: ClassVar[str] = "dated_registry"
    match_column: str
    match_field: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Category:
    id: str
    title: Text
    window: str
    window_arg: str | None  # a field (active_on) or a parameter (within_years_of_*)
    label: str
    legal_basis: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SubjectRule(Traced):
    """A rule of a record type: a reason (one per category with ``each_category``) when
    ``test`` holds; ``values`` are the values its message shows."""

    kind: ClassVar[str] = "rule"
    outcomes: ClassVar[tuple[str, str]] = ("pass", "fail")
    test: ir.Expr
    applies: ir.Expr | None = None
    values: Mapping[str, ir.Expr] = field(default_factory=dict)
    each_category: bool = False
    action: str | None = None  # a fixed action
    action_by: tuple[str, Mapping[str, str]] | None = None  # (field, value -> action)
    label: str = ""
    message: Text = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.name


@dataclass(frozen=True)
class RecordType:
    """One record type of the plan: its symbols, categories, status and actions."""

    name: str
    file: str
    table: str  # the table (or file stem) that holds these records in bulk
    title: Text
    legal_basis: str
    roles: Mapping[str, str]
    fields: tuple[RecordInput, ...]
    registries: Mapping[str, DatedRegistry]
    returns: Mapping[str, str]
    parameters: Mapping[str, DatedParameter]
    categories: tuple[Category, ...]
    rules: tuple[SubjectRule, ...]
    status_field: str
    status_cases: tuple[tuple[str, str | None, Text], ...]  # (value, when, title)
    action_field: str
    actions: Mapping[str, Mapping[str, str]]
    action_precedence: tuple[str, ...]
    action_titles: Mapping[str, Text]
    validity: Mapping[str, Any]
    decision: tuple[str, ...]
    department_titles: Mapping[str, Text] = field(default_factory=dict)  # what officers read for a department code

    def role(self, name: str) -> str:
        return self.roles[name]

    def category(self, cid: str) -> Category:
        return next(c for c in self.categories if c.id == cid)

    @property
    def category_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)

    @property
    def symbols(self) -> dict[Key, Definition]:
        """Every typed symbol of the record type by (record type, name), as declared."""
        defs: list[Definition] = [*self.fields, *self.parameters.values(), *self.registries.values(), *self.rules]
        return {d.key: d for d in defs}
