"""The frozen spec of a record type besides the household, as ``engine.subjects.spec`` reads it."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LABELS",
    "WINDOWS",
    "Category",
    "Column",
    "ParamVersion",
    "Parameter",
    "RecordField",
    "RecordTypeSpec",
    "RegistryDecl",
    "SubjectRule",
    "Text",
]

Text = dict[str, str]
LABELS = ("seed", "verified", "decision", "illustrative")
WINDOWS = ("ever", "active", "active_on", "within_years_of_start", "within_years_of_end")


@dataclass(frozen=True)
class RecordField:
    name: str
    kind: str
    title: Text
    values: tuple[str, ...] = ()
    nullable: bool = False
    required_when: tuple[tuple[str, str], ...] = ()
    min: str | None = None  # another date field this one may not precede
    max: str | None = None  # another date field this one may not follow


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # an input kind, or `category`
    nullable: bool = False
    after: str | None = None  # a date column this one must be strictly after


@dataclass(frozen=True)
class RegistryDecl:
    name: str
    title: Text
    match_column: str
    match_field: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class ParamVersion:
    start: dt.date
    value: Any
    label: str
    reference: str


@dataclass(frozen=True)
class Parameter:
    name: str
    title: Text
    unit: str
    regions: Mapping[str, tuple[ParamVersion, ...]]

    def version(self, region: str, on: dt.date) -> ParamVersion | None:
        versions = self.regions.get(region) or self.regions.get("*") or ()
        i = bisect.bisect_right([v.start for v in versions], on) - 1
        return versions[i] if i >= 0 else None


@dataclass(frozen=True)
class Category:
    id: str
    title: Text
    window: str
    window_arg: str | None  # a field (active_on) or a parameter (within_years_of_*)
    label: str
    legal_basis: str


@dataclass(frozen=True)
class SubjectRule:
    id: str
    title: Text
    applies: tuple[tuple[str, str], ...]
    test: str  # below_age | is_false | records
    args: Mapping[str, Any]
    each_category: bool
    action: str | None  # a fixed action
    action_by: tuple[str, Mapping[str, str]] | None  # (field, value -> action)
    label: str
    legal_basis: str
    message: Text


@dataclass(frozen=True)
class RecordTypeSpec:
    name: str
    file: str
    table: str  # the table (or file stem) that holds these records in bulk
    title: Text
    legal_basis: str
    roles: Mapping[str, str]
    fields: tuple[RecordField, ...]
    registries: Mapping[str, RegistryDecl]
    returns: Mapping[str, str]
    parameters: Mapping[str, Parameter]
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
