"""Rule tests of a record type as data: a test file with ``record_type: NAME``.

A test names a template (``extends``) holding a record and registry rows, changes fields
with ``set``, adds registry rows with ``add`` (or replaces a registry with ``registries``),
may give a parameter another value for the test (``parameters``), and lists the expected
decision fields; ``reasons`` is the exact list of reason ids in order, ``error`` the field
a rejected record names.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import InputError
from engine.source import Pos, YMap, pos_of

from .evaluate import SubjectEvaluator
from .record import registry_from_rows
from .spec import ParamVersion, RecordTypeSpec

__all__ = ["SubjectTest", "SubjectTestResult", "read_subject_tests", "run_record_type_tests", "run_subject_test"]


@dataclass
class SubjectTest:
    name: str
    file: str
    pos: Pos
    record: dict[str, Any]
    registries: dict[str, list[dict[str, Any]]]
    parameters: dict[str, Any]
    expected: dict[str, Any]


@dataclass
class SubjectTestResult:
    test: SubjectTest
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return str(v)
    return v


def read_subject_tests(docs: list[tuple[str, Any]]) -> list[SubjectTest]:
    """Every test of the files, with its template applied."""
    out: list[SubjectTest] = []
    for display, doc in docs:
        templates = {str(k): _plain(v) for k, v in (doc.get("templates") or {}).items()}
        for item in doc.get("tests") or []:
            t = _plain(item)
            base = copy.deepcopy(templates.get(str(t.get("extends")), {"record": {}, "registries": {}}))
            record = dict(base.get("record") or {})
            record.update(t.get("set") or {})
            regs: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in (base.get("registries") or {}).items()}
            regs.update({k: list(v) for k, v in (t.get("registries") or {}).items()})
            for name, rows in (t.get("add") or {}).items():
                regs.setdefault(name, []).extend(rows)
            pos = item.pos if isinstance(item, YMap) else pos_of(doc)
            out.append(
                SubjectTest(str(t["name"]), display, pos, record, regs, dict(t.get("parameters") or {}), t["expected"])
            )
    return out


def _with_parameters(spec: RecordTypeSpec, values: Mapping[str, Any]) -> RecordTypeSpec:
    """The spec with each named parameter set to one value in every version."""
    params = dict(spec.parameters)
    for name, value in values.items():
        p = params[name]
        regions = {
            r: tuple(ParamVersion(v.start, value, v.label, f"{v.reference} [rule test]") for v in vs)
            for r, vs in p.regions.items()
        }
        params[name] = replace(p, regions=regions)
    return replace(spec, parameters=params)


def run_subject_test(spec: RecordTypeSpec, test: SubjectTest, ruleset_version: str = "") -> SubjectTestResult:
    result = SubjectTestResult(test)
    if test.parameters:
        unknown = [n for n in test.parameters if n not in spec.parameters]
        if unknown:
            result.failures.append(f"unknown parameter(s) {unknown}")
            return result
        spec = _with_parameters(spec, test.parameters)
    regs = {}
    for name, rows in test.registries.items():
        if name not in spec.registries:
            result.failures.append(f"unknown registry {name}")
            return result
        reg = registry_from_rows(spec, spec.registries[name], rows, "test")
        result.failures.extend(f"{name} row {r.line - 1}: {r.field} {r.reason}" for r in reg.rejects)
        regs[name] = reg
    try:
        got = SubjectEvaluator(spec, regs, ruleset_version).decide(test.record).to_dict(explain=False)
    except InputError as exc:
        fields = [p.field for p in exc.problems]
        if test.expected.get("error") not in fields:
            result.failures.append(f"rejected: {'; '.join(str(p) for p in exc.problems)}")
        return result
    if "error" in test.expected:
        result.failures.append(f"expected a rejection naming {test.expected['error']}, got a decision")
        return result
    for key, want in test.expected.items():
        have = [r["id"] for r in got["reasons"]] if key == "reasons" else got.get(key, "<no such field>")
        if want != have:
            result.failures.append(f"{key}: expected {want!r}, got {have!r}")
    return result


def run_record_type_tests(ruleset: Any) -> list[SubjectTestResult]:
    """Run every rule test of every record type a ruleset declares."""
    return [
        run_subject_test(ruleset.record_types[kind], t, ruleset.ruleset_version)
        for kind, docs in ruleset.record_type_tests.items()
        for t in read_subject_tests(docs)
    ]
