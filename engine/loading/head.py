"""Declarations from ruleset.yaml: name and version, the decision fields in order, what
explanations list, and what reports show. Read after the programs: it names what they define."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import ProblemKind, did_you_mean
from engine.plan import BUILTIN_FIELDS, CaseSet, CaseValue, Output
from engine.source import Pos, YList, YMap, pos_of

from .labels import read_labels
from .shapes import check_keys, plain
from .state import Declared

__all__ = ["BUILTIN_FIELDS", "Head", "read_head"]


@dataclass
class Head:
    decision: list[str] = field(default_factory=list)
    name: str = ""
    version: str = ""
    explain_members: str = ""
    default_region: str = ""
    reports: dict[str, Any] = field(default_factory=dict)
    # each decision field's title and the labels of its codes (``labels.read_labels``)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_head(d: Declared, display: str, doc: Any) -> Head:
    """The ruleset head; every field it names must be defined."""
    head = Head()
    if not check_keys(doc, "ruleset.yaml", d.problems, where=Pos(display, 1, 1)):
        return head
    meta = doc.get("ruleset")
    if check_keys(meta, "ruleset", d.problems, where=doc.pos):
        head.name, head.version = str(meta.get("name", "")), str(meta.get("version", ""))
    fields = doc.get("decision")
    if not isinstance(fields, YList):
        d.problems.append(
            pos_of(doc, "decision").problem(ProblemKind.BAD_TYPE, "`decision` must list the decision fields in order")
        )
        return head
    known = [n for (sc, n), s in d.symbols.items() if sc == "household" and s.kind in (Output, CaseValue, CaseSet)]
    for i, f in enumerate(fields):
        f = str(f)
        if f not in BUILTIN_FIELDS and ("household", f) not in d.symbols:
            d.problems.append(
                fields.item_pos[i].problem(
                    ProblemKind.UNKNOWN_NAME,
                    f"decision field `{f}` is not defined by any program{did_you_mean(f, known)}",
                )
            )
        head.decision.append(f)
    head.explain_members = str(doc.get("explain_members", "members"))
    if ("household", head.explain_members) not in d.symbols:
        d.problems.append(
            pos_of(doc, "explain_members").problem(
                ProblemKind.UNKNOWN_NAME, f"`{head.explain_members}` is not a member list"
            )
        )
    head.default_region = str(doc.get("default_region", ""))
    head.reports = _reports(d, doc.get("reports"), pos_of(doc, "reports"), head.decision)
    head.labels = read_labels(d, doc.get("labels"), pos_of(doc, "labels"), head.decision)
    return head


def _reported_lists(d: Declared, raw: Any, where: Pos) -> None:
    """`reports.member_lists` (computed lists): each list's `when` and fields name member or household values."""
    if raw is None:
        return
    if not isinstance(raw, YMap):
        d.problems.append(where.problem(ProblemKind.BAD_TYPE, "`member_lists` maps list names to `when` and `fields`"))
        return
    known = {n for (_, n) in d.symbols}

    def check(name: Any, pos: Pos) -> None:
        if str(name) not in known:
            d.problems.append(
                pos.problem(
                    ProblemKind.UNKNOWN_NAME,
                    f"member_lists: `{name}` is not a named value{did_you_mean(str(name), known)}",
                )
            )

    for list_name, spec in raw.items():
        if not isinstance(spec, YMap) or "when" not in spec:
            d.problems.append(
                raw.value_pos[list_name].problem(ProblemKind.BAD_TYPE, f"member list `{list_name}` needs `when`")
            )
            continue
        check(spec["when"], spec.value_pos["when"])
        fields = spec.get("fields")
        if not isinstance(fields, YMap):
            continue
        for label, what in fields.items():
            if isinstance(what, YMap):
                for k, name in what.items():
                    check(name, what.value_pos[k])
            else:
                check(what, fields.value_pos[label])


def _reports(d: Declared, raw: Any, where: Pos, decision: list[str]) -> dict[str, Any]:
    """The `reports` section: every name must be a decision field or a named value."""
    if raw is None:
        return {}
    if not isinstance(raw, YMap):
        d.problems.append(where.problem(ProblemKind.BAD_TYPE, "`reports` must be a mapping"))
        return {}
    known = set(decision) | {n for (sc, n) in d.symbols if sc == "household"}
    out = plain(raw)

    def check(name: Any, pos: Pos) -> None:
        if str(name) not in known:
            d.problems.append(
                pos.problem(
                    ProblemKind.UNKNOWN_NAME,
                    f"reports: `{name}` is not a decision field or named value{did_you_mean(str(name), known)}",
                )
            )

    for key in ("statuses", "amounts", "disclosure"):
        section = raw.get(key)
        if isinstance(section, YMap):
            for name in section:
                check(name, section.key_pos[name])
    for key in ("paid_before", "income", "approval"):
        section = raw.get(key)
        if isinstance(section, YMap):
            for k, v in section.items():
                check(v, section.value_pos[k])
    _reported_lists(d, raw.get("member_lists"), pos_of(raw, "member_lists"))
    monitored = raw.get("monitored")
    if isinstance(monitored, YList):
        for i, name in enumerate(monitored):
            check(name, monitored.item_pos[i])
    return out if isinstance(out, dict) else {}
