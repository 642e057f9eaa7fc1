"""Rule tests: read their files with the declarations, then, once the decision fields are
known, turn each into a household and its expected decision, checking every name it uses."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem, ProblemKind, did_you_mean
from engine.plan import BUILTIN_FIELDS, CaseSet, CaseValue, Output
from engine.ruleset import RuleTest
from engine.source import Pos, YList, YMap, pos_of

from .shapes import check_keys, plain
from .state import Declared

__all__ = ["TestSources", "build_tests", "read_test_file"]


@dataclass
class TestSources:
    """The tests and templates as read, before the names they use are checked."""

    templates: dict[str, tuple[Any, Pos]] = field(default_factory=dict)
    tests: list[tuple[str, YMap]] = field(default_factory=list)


def read_test_file(into: TestSources, problems: list[Problem], display: str, doc: Any) -> None:
    if doc is None:
        return
    if not isinstance(doc, YMap):
        problems.append(
            Problem(ProblemKind.BAD_FILE, "a test file maps `tests:` (and optional `templates:`)", display, 1, 1)
        )
        return
    if "record_type" in doc:
        return  # another record type's tests (``engine.subjects.tests``)
    for key in doc:
        if key not in ("tests", "templates"):
            problems.append(
                doc.key_pos[key].problem(
                    ProblemKind.UNKNOWN_KEY, f"unknown key `{key}`{did_you_mean(str(key), ['tests', 'templates'])}"
                )
            )
    templates = doc.get("templates") or YMap()
    if not isinstance(templates, YMap):
        problems.append(pos_of(doc, "templates").problem(ProblemKind.BAD_TYPE, "`templates` maps names to households"))
        templates = YMap()
    for name, household in templates.items():
        into.templates[str(name)] = (household, templates.value_pos[name])
    tests = doc.get("tests") or YList()
    if not isinstance(tests, YList):
        problems.append(pos_of(doc, "tests").problem(ProblemKind.BAD_TYPE, "`tests` must be a list"))
        tests = YList()
    for i, t in enumerate(tests):
        name = str(t.get("name")) if isinstance(t, YMap) else None
        if check_keys(t, "test", problems, name, tests.item_pos[i]) and "name" in t:
            into.tests.append((display, t))


def build_tests(d: Declared, sources: TestSources) -> list[RuleTest]:
    decision = {
        n for (sc, n), s in d.symbols.items() if sc == "household" and s.kind in (Output, CaseValue, CaseSet)
    } | set(BUILTIN_FIELDS)
    out = []
    for display, t in sources.tests:
        test = _build(d, sources, decision, display, t)
        if test is not None:
            out.append(test)
    return out


def _build(d: Declared, sources: TestSources, decision: set[str], display: str, t: YMap) -> RuleTest | None:
    name = str(t["name"])
    household = plain(t.get("household")) if "household" in t else None
    if "extends" in t:
        tpl = sources.templates.get(str(t["extends"]))
        if tpl is None:
            d.problems.append(
                pos_of(t, "extends").problem(
                    ProblemKind.UNKNOWN_NAME,
                    f"no template `{t['extends']}`{did_you_mean(str(t['extends']), sources.templates)}",
                    name,
                )
            )
            return None
        household = plain(tpl[0])
    if household is None:
        d.problems.append(t.pos.problem(ProblemKind.MISSING_KEY, "a test needs `household` or `extends`", name))
        return None
    if not _shape(d, household, dict, "a test household is a mapping", t, "household", name):
        return None
    changes = t.get("set") or YMap()
    if not _shape(d, changes, YMap, "`set` maps paths like `members[0].age` to values", t, "set", name):
        changes = YMap()
    for path, value in changes.items():
        if not _set_path(household, str(path), plain(value)):
            d.problems.append(
                changes.key_pos[path].problem(
                    ProblemKind.UNKNOWN_NAME, f"cannot set `{path}`: no such place in the household", name
                )
            )
    date = t.get("date")
    if date is not None:
        household["decision_date"] = date.isoformat() if isinstance(date, dt.date) else str(date)
    expected = t.get("expected")
    if expected is not None and not _shape(
        d, expected, YMap, "`expected` maps decision fields to values", t, "expected", name
    ):
        return None
    if isinstance(expected, YMap):
        for key in expected:
            if key not in decision and key not in ("reasons_include", "error"):
                d.problems.append(
                    expected.key_pos[key].problem(
                        ProblemKind.UNKNOWN_NAME,
                        f"`{key}` is not a decision field{did_you_mean(str(key), decision)}",
                        name,
                    )
                )
    on = date if isinstance(date, dt.date) else None
    if on is not None:
        _check_parameters_on(d, t, name, str(household.get("region") or d.default_region()), on)
    raw_regs = t.get("registries") or YMap()
    if not _shape(d, raw_regs, YMap, "`registries` maps registry names to lists", t, "registries", name):
        raw_regs = YMap()
    regs = {str(k): [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in raw_regs.items()}
    for k in regs:
        if k not in d.registries:
            d.problems.append(
                raw_regs.key_pos[k].problem(
                    ProblemKind.UNKNOWN_NAME, f"unknown registry `{k}`{did_you_mean(k, d.registries)}", name
                )
            )
    return RuleTest(name, display, t.pos, on, household, plain(expected) or {}, regs)


def _check_parameters_on(d: Declared, t: YMap, name: str, region: str, on: dt.date) -> None:
    """A test dated ``on`` finds every parameter in force for its region."""
    for p in d.parameters.values():
        if p.version(region, on) is None and (region in p.regions or "*" in p.regions):
            d.problems.append(
                t.pos.problem(
                    ProblemKind.MISSING_PARAMETER_VERSION,
                    f"parameter `{p.name}` has no value for region {region} on {on}",
                    name,
                )
            )


def _shape(d: Declared, value: Any, want: type, message: str, where: YMap, key: str, rule_id: str) -> bool:
    """Whether ``value`` (``where[key]``) is a ``want``; if not, say so."""
    if isinstance(value, want):
        return True
    d.problems.append(pos_of(where, key).problem(ProblemKind.BAD_TYPE, message, rule_id))
    return False


_PATH = re.compile(r"([A-Za-z_]\w*)(?:\[(\d+)\])?")


def _set_path(doc: dict[str, Any], path: str, value: Any) -> bool:
    """Set ``members[0].monthly_income``-style paths inside a household copy."""
    parts = path.split(".")
    cur: Any = doc
    for i, part in enumerate(parts):
        m = _PATH.fullmatch(part)
        if not m or not isinstance(cur, dict):
            return False
        key, idx = m.group(1), m.group(2)
        last = i == len(parts) - 1
        if idx is not None:
            seq = cur.get(key)
            if not isinstance(seq, list) or int(idx) > len(seq):
                return False
            if int(idx) == len(seq):
                seq.append(dict(seq[-1]) if seq and isinstance(seq[-1], dict) else {})
            if last:
                seq[int(idx)] = value
                return True
            cur = seq[int(idx)]
        elif last:
            cur[key] = value
            return True
        else:
            if cur.get(key) is None:
                cur[key] = {}
            cur = cur[key]
    return True
