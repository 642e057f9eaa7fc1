"""Declarations from programs/*.yaml: every derived value, rule, table, outcome, output and
finding, with its keys checked; expressions stay unread until the type check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import ProblemKind
from engine.plan import Derived, Finding, Output, Rule
from engine.source import Pos, YList, YMap, pos_of
from engine.types import BOOL

from .decisions import declare_outcome, declare_table
from .draft import Draft
from .items import explained, messages, report, scope
from .shapes import check_keys, checked_name, declared_type, item_id, text
from .state import Declared

__all__ = ["declare_program"]

Declare = Callable[[Declared, YMap, str, str], None]


def declare_program(d: Declared, display: str, doc: Any) -> None:
    """A program file: its head, then each section's items in the order written."""
    if doc is None:
        return
    if not check_keys(doc, "program", d.problems, where=Pos(display, 1, 1)):
        return
    program = str(doc.get("program"))
    if "program" in doc:
        checked_name(doc["program"], pos_of(doc, "program"), d.problems, "program")
    basis = str(doc.get("legal_basis", ""))
    d.programs.append({"id": program, "title": text(doc, "title", d.problems), "legal_basis": basis, "file": display})
    for section, (kind, declare) in _SECTIONS.items():
        items = doc.get(section)
        if items is None:
            continue
        if not isinstance(items, YList):
            d.problems.append(pos_of(doc, section).problem(ProblemKind.BAD_TYPE, f"`{section}` must be a list"))
            continue
        for i, item in enumerate(items):
            rid = item_id(d.problems, item, items.item_pos[i])
            if check_keys(item, kind, d.problems, rid, items.item_pos[i]) and rid:
                declare(d, item, program, basis)


def _derived(d: Declared, item: YMap, program: str, basis: str) -> None:
    rid = str(item["id"])
    d.add(
        Draft(
            rid,
            scope(d, item, rid),
            Derived,
            title=text(item, "title", d.problems),
            legal_basis=basis,
            program=program,
            pos=item.pos,
            raw=item,
        )
    )


def _rule(d: Declared, item: YMap, program: str, basis: str) -> None:
    rid = str(item["id"])
    per = scope(d, item, rid)
    d.add(
        explained(
            d,
            item,
            rid,
            per,
            Rule,
            None,
            program,
            basis,
            report=report(d, item, rid, "fail"),
            messages=messages(d, item, rid),
        )
    )


def _output(d: Declared, item: YMap, program: str, basis: str) -> None:
    rid = str(item["id"])
    t = declared_type(item.get("type"), pos_of(item, "type"), d.problems, rid)
    d.add(
        Draft(
            rid,
            "household",
            Output,
            None,
            title=text(item, "title", d.problems),
            legal_basis=basis,
            program=program,
            pos=item.pos,
            raw={"item": item, "declared": t},
        )
    )


def _finding(d: Declared, item: YMap, program: str, basis: str) -> None:
    rid = str(item["id"])
    code = _code(d, item, rid)
    d.add(
        explained(
            d,
            item,
            rid,
            "household",
            Finding,
            BOOL,
            program,
            basis,
            report="fire",
            code=code,
            messages=messages(d, item, rid),
        )
    )


def _code(d: Declared, item: YMap, rid: str) -> str:
    """A finding's code: a plain name, as it is listed in bulk output."""
    if "code" not in item:
        return ""  # reported as a missing key
    return checked_name(item["code"], pos_of(item, "code"), d.problems, "code", rid, dotted=False) or ""


# section of a program file: (the key set its items follow, how each is declared)
_SECTIONS: dict[str, tuple[str, Declare]] = {
    "derived": ("derived", _derived),
    "rules": ("rule", _rule),
    "tables": ("table", declare_table),
    "outcomes": ("outcome", declare_outcome),
    "outputs": ("output", _output),
    "findings": ("finding", _finding),
}
