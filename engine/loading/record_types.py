"""Record types besides the household: ``ruleset.yaml`` names each (``record_types: {NAME:
FILE}``) and its file, under ``record_types/``, declares the record, registries, parameters,
rules and decision (``engine.subjects.spec``). Their rule tests are the test files with a
``record_type`` key."""

from __future__ import annotations

from typing import Any

from engine.errors import Problem, ProblemKind
from engine.source import Pos, YMap, pos_of
from engine.subjects.spec import RecordTypeSpec, read_record_type

from .files import Doc

__all__ = ["read_record_types", "record_type_tests"]


def read_record_types(head_doc: Any, docs: list[Doc], problems: list[Problem]) -> dict[str, RecordTypeSpec]:
    """The record types ``ruleset.yaml`` names, each read and checked from its file."""
    named = head_doc.get("record_types") if isinstance(head_doc, YMap) else None
    if named is None:
        return {}
    if not isinstance(named, YMap):
        problems.append(
            pos_of(head_doc, "record_types").problem(ProblemKind.BAD_TYPE, "`record_types` maps names to files")
        )
        return {}
    by_file = dict(docs)
    out: dict[str, RecordTypeSpec] = {}
    for name, file in named.items():
        where = named.value_pos.get(name, Pos("ruleset.yaml", 1, 1))
        if str(file) not in by_file:
            problems.append(where.problem(ProblemKind.MISSING_FILE, f"record type {name}: {file} is missing"))
            continue
        spec = read_record_type(str(file), by_file[str(file)], problems)
        if spec is not None and spec.name != str(name):
            problems.append(
                where.problem(ProblemKind.BAD_VALUE, f"{file} declares record type `{spec.name}`, not `{name}`")
            )
        elif spec is not None:
            out[str(name)] = spec
    for display, _ in docs:
        if display not in {str(f) for f in named.values()}:
            problems.append(
                Pos(display, 1, 1).problem(ProblemKind.UNKNOWN_NAME, "not named in ruleset.yaml `record_types`")
            )
    return out


def record_type_tests(
    docs: list[Doc], types: dict[str, RecordTypeSpec], problems: list[Problem]
) -> dict[str, list[Doc]]:
    """The test files of each record type (a test file with a ``record_type`` key)."""
    out: dict[str, list[Doc]] = {}
    for display, doc in docs:
        if isinstance(doc, YMap) and "record_type" in doc:
            name = str(doc["record_type"])
            if name not in types:
                problems.append(
                    pos_of(doc, "record_type").problem(ProblemKind.UNKNOWN_NAME, f"no record type `{name}`")
                )
                continue
            out.setdefault(name, []).append((display, doc))
    return out
