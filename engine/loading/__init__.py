"""Load a rules folder into a checked ``Ruleset``: every problem at once, with ``file:line:col``.

Layout of a rules folder::

    ruleset.yaml          name, version, decision field order
    record.yaml           household and member fields, registries
    parameters/*.yaml     dated parameters per region
    programs/*.yaml       derived values, rules, tables, outcomes, outputs, findings
    tests/*.yaml          rule tests as data

One module per phase, in the order ``load`` runs them: read the files (``files``), declare
every name with its keys and shapes checked (``record``, ``parameters``, ``programs``,
``head``, ``rule_tests``), type-check them (``typecheck``), check the parameters' coverage,
build the rule tests, and freeze the checked drafts into the ruleset's ``Plan``
(``freeze``). Each phase reads and extends one ``Declared`` object.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from engine.errors import Problem, ProblemKind, RuleLoadError
from engine.events import load_events
from engine.record import load_record_schema
from engine.ruleset import Ruleset
from engine.source import YMap

from .bounds import check_computed
from .files import read_all
from .freeze import freeze
from .head import read_head
from .parameters import check_coverage, check_regions, declare_parameters, parameter_order
from .programs import declare_program
from .record import declare_inputs, declare_registries
from .record_types import read_record_types, record_type_tests
from .rule_tests import TestSources, build_tests, read_test_file
from .state import Declared
from .typecheck import typecheck

__all__ = ["load"]


def load(path: str | Path) -> Ruleset:
    """Load and check a rules folder; raise ``RuleLoadError`` listing every problem.

    >>> rs = load("rules")
    >>> rs.name
    'haimen-social-assistance'
    """
    problems: list[Problem] = []
    try:
        return _load(Path(path), problems)
    except RuleLoadError:
        raise
    except Exception as exc:  # a check that met a shape it did not expect: still only our error
        message = (
            f"the checks stopped on an unexpected {type(exc).__name__} ({exc}); the problems listed"
            " with it are the likely cause. Please report this with the rule files"
        )
        raise RuleLoadError([*problems, Problem(ProblemKind.INTERNAL, message, ".", 0, 0)]) from exc


def _load(root: Path, problems: list[Problem]) -> Ruleset:
    sources = read_all(root)
    problems.extend(sources.problems)
    d = Declared(problems)
    record_file, record_doc = sources.record
    d.record = load_record_schema(record_doc, record_file, problems)
    if d.record:
        declare_inputs(d, d.record)
    if isinstance(record_doc, YMap) and "registries" in record_doc:
        declare_registries(d, record_doc["registries"])
    for display, doc in sources.parameters:
        declare_parameters(d, display, doc)
    for display, doc in sources.programs:
        declare_program(d, display, doc)
    tests = TestSources()
    for display, doc in sources.tests:
        read_test_file(tests, problems, display, doc)
    head = read_head(d, *sources.head)
    record_types = read_record_types(sources.head[1], sources.record_types, problems)
    type_tests = record_type_tests(sources.tests, record_types, problems, sources.head[1])
    typecheck(d)
    check_coverage(d)
    check_regions(d)
    check_computed(d)
    rule_tests = build_tests(d, tests)
    events = {}
    if sources.events is not None and sources.events[1] is not None and d.record is not None:
        programs = {str(p["id"]) for p in d.programs}
        events = load_events(sources.events[1], sources.events[0], d.record, programs, set(d.registries), problems)
    if problems or d.record is None:
        raise RuleLoadError(problems)
    digest = hashlib.sha256()
    for display in sorted(sources.files):
        digest.update(display.encode() + b"\0" + sources.files[display].encode() + b"\0")
    return Ruleset(
        name=head.name,
        version=head.version,
        digest=digest.hexdigest(),
        record=d.record,
        plan=replace(freeze(d, head.decision), record_types=MappingProxyType(record_types)),
        parameters=d.parameters,
        parameter_order=parameter_order(d.parameters),
        registries=d.registries,
        decision_fields=head.decision,
        explain_members=head.explain_members,
        programs=d.programs,
        tests=rule_tests,
        files=dict(sources.files),
        default_region=head.default_region,
        events=events,
        reports=head.reports,
        record_type_tests=type_tests,
        labels=head.labels,
    )
