"""The names the record-type modules use for the plan's record-type classes
(``engine.plan_records``): the reader builds those, so there is one declaration."""

from __future__ import annotations

from engine.plan import Text
from engine.plan_records import (
    LABELS,
    WINDOWS,
    Category,
    Column,
    DatedParameter,
    DatedRegistry,
    ParamVersion,
    RecordInput,
    RecordType,
    SubjectRule,
)

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

RecordField = RecordInput
Parameter = DatedParameter
RegistryDecl = DatedRegistry
RecordTypeSpec = RecordType
