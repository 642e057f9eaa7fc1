"""Record types besides the household: ``ruleset.yaml`` names each (``record_types: {NAME:
FILE}``) and its file, under ``record_types/``, declares the record, registries, parameters,
rules and decision (``engine.subjects.spec``). Their rule tests are the test files with a
``record_type`` key."""

from __future__ import annotations

from typing import Any

from engine.errors import Problem, ProblemKind, did_you_mean
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
    docs: list[Doc], types: dict[str, RecordTypeSpec], problems: list[Problem], head_doc: Any = None
) -> dict[str, list[Doc]]:
    """The test files of each record type (a test file with a ``record_type`` key). The tests
    of a record type ``ruleset.yaml`` names but whose file has problems are not checked: those
    problems are reported, not their follow-ons."""
    named = head_doc.get("record_types") if isinstance(head_doc, YMap) else None
    declared = {str(n) for n in named} if isinstance(named, YMap) else set()
    out: dict[str, list[Doc]] = {}
    for display, doc in docs:
        if isinstance(doc, YMap) and "record_type" in doc:
            name = str(doc["record_type"])
            if name not in types and name in declared:
                continue
            if name not in types:
                problems.append(
                    pos_of(doc, "record_type").problem(ProblemKind.UNKNOWN_NAME, f"no record type `{name}`")
                )
                continue
            _check_tests(doc, types[name], problems)
            out.setdefault(name, []).append((display, doc))
    return out


_TEST_KEYS = {"name", "extends", "set", "add", "registries", "parameters", "expected"}


def _check_tests(doc: YMap, spec: RecordTypeSpec, problems: list[Problem]) -> None:
    """Names a test uses (keys, template, fields, registries, parameters, expected fields)."""
    templates: YMap = doc["templates"] if isinstance(doc.get("templates"), YMap) else YMap()
    fields = {f.name for f in spec.fields}
    expected_names = {*spec.decision, "required_departments", "error"}
    tests = doc.get("tests")
    for i, t in enumerate(tests if isinstance(tests, list) else []):
        if not isinstance(t, YMap):
            problems.append(pos_of(tests, i).problem(ProblemKind.BAD_TYPE, "a test must be a mapping"))
            continue
        rid = str(t.get("name", ""))
        checks: list[tuple[Any, set[str], str]] = [
            (t, _TEST_KEYS, "test key"),
            (t.get("set"), fields, "record field"),
            (t.get("add"), set(spec.registries), "registry"),
            (t.get("registries"), set(spec.registries), "registry"),
            (t.get("parameters"), set(spec.parameters), "parameter"),
            (t.get("expected"), expected_names, "decision field"),
        ]
        for m, known, what in checks:
            for key in m if isinstance(m, YMap) else []:
                if str(key) not in known:
                    hint = did_you_mean(str(key), known)
                    problems.append(
                        m.key_pos[key].problem(ProblemKind.UNKNOWN_NAME, f"unknown {what} `{key}`{hint}", rid)
                    )
        if "extends" in t and str(t["extends"]) not in templates:
            problems.append(
                pos_of(t, "extends").problem(ProblemKind.UNKNOWN_NAME, f"no template `{t['extends']}`", rid)
            )
        if "expected" not in t or "name" not in t:
            problems.append(t.pos.problem(ProblemKind.MISSING_KEY, "a test needs `name` and `expected`", rid))
