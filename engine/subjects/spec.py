"""A record type besides the household, read from its rule file into a frozen spec.

A ruleset names its record types in ``ruleset.yaml`` (``record_types: {NAME: FILE}``). Each
file declares a subject that is one record matched against registries of dated findings:
the record's fields, the registries, dated parameters with references and labels, the
categories of registry rows with their time windows, the rules in reporting order, the
status precedence, the actions and the decision fields. Nothing here knows a particular
record type: the names all come from the file. Every problem is reported with its
``file:line:col``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from engine.errors import Problem, ProblemKind, did_you_mean
from engine.source import Pos, YMap, pos_of
from engine.types import INPUT_KINDS, INT, Type

from .model import (
    LABELS,
    WINDOWS,
    Category,
    Column,
    Parameter,
    ParamVersion,
    RecordField,
    RecordTypeSpec,
    RegistryDecl,
    SubjectRule,
    Text,
)
from .spec_rules import read_rules

__all__ = [
    "LABELS",
    "WINDOWS",
    "Category",
    "Column",
    "ParamVersion",
    "RecordField",
    "RecordTypeSpec",
    "RegistryDecl",
    "SubjectRule",
    "read_record_type",
]

_PARAM_UNITS = ("int", "int?", "categories", "departments")
_TOP = {
    "record_type",
    "table",
    "title",
    "legal_basis",
    "roles",
    "record",
    "registries",
    "returns",
    "parameters",
    "categories",
    "rules",
    "status",
    "actions",
    "validity",
    "decision",
    "department_titles",
}
_ROLES = ("id", "date", "region", "person", "batch", "subject")
# the type of a parameter of each unit, as the plan types its symbol
_UNIT_TYPES = {"int": INT, "int?": Type("int", True), "categories": Type("list"), "departments": Type("map")}


class _Reader:
    """Collects problems while reading one record-type file."""

    def __init__(self, display: str, problems: list[Problem], scope: str = "") -> None:
        self.display = display
        self.problems = problems
        self.scope = scope  # the record type's name: the scope of its symbols

    def bad(self, where: Any, kind: ProblemKind, message: str, key: Any = None, rule_id: str | None = None) -> None:
        pos = pos_of(where, key) if key is not None else pos_of(where)
        if pos.file == "<unknown>":
            pos = Pos(self.display, 1, 1)
        self.problems.append(pos.problem(kind, message, rule_id))

    def mapping(self, m: Any, what: str, allowed: set[str], required: set[str], where: Any) -> YMap | None:
        if not isinstance(m, YMap):
            self.bad(where, ProblemKind.BAD_TYPE, f"{what} must be a mapping")
            return None
        for key in m:
            if key not in allowed:
                self.problems.append(
                    m.key_pos[key].problem(
                        ProblemKind.UNKNOWN_KEY, f"unknown key `{key}` in {what}{did_you_mean(str(key), allowed)}"
                    )
                )
        for key in sorted(required - set(m)):
            self.bad(m, ProblemKind.MISSING_KEY, f"{what} needs `{key}`")
        return m

    def label(self, m: YMap, what: str) -> str:
        label = str(m.get("label", ""))
        if label not in LABELS:
            self.bad(m, ProblemKind.BAD_VALUE, f"{what}: `label` must be one of {', '.join(LABELS)}", "label")
        return label


def _text(v: Any) -> Text:
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    return {"zh": str(v), "en": str(v)} if v is not None else {}


def _conds(v: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(x)) for k, x in v.items()) if isinstance(v, dict) else ()


def read_record_type(display: str, doc: Any, problems: list[Problem]) -> RecordTypeSpec | None:
    """Read and check one record-type file; ``None`` (with problems) if it cannot be used."""
    r = _Reader(display, problems)
    before = len(problems)
    top = r.mapping(doc, display, _TOP, _TOP - {"returns", "department_titles"}, doc)
    if top is None:
        return None
    name = r.scope = str(top.get("record_type", ""))
    roles_doc = r.mapping(top.get("roles"), "roles", set(_ROLES), set(_ROLES), top)
    roles = {k: str(v) for k, v in (roles_doc or {}).items()}
    fields = _fields(r, top.get("record"))
    field_names = {f.name for f in fields}
    for role, fname in roles.items():
        if fname not in field_names:
            r.bad(roles_doc, ProblemKind.UNKNOWN_NAME, f"role {role}: no record field `{fname}`", role)
    params = _parameters(r, top.get("parameters"))
    categories = _categories(r, top.get("categories"), params, field_names)
    cat_ids = {c.id for c in categories}
    registries = _registries(r, top.get("registries"), field_names)
    # the registry of dated rows the `records` tests read: the one with a category column
    findings = next((n for n, d in registries.items() if any(c.kind == "category" for c in d.columns)), "")
    by_name = {f.name: f for f in fields}
    rules = read_rules(r, top.get("rules"), name, by_name, params, cat_ids, findings)
    for p in params.values():
        for versions in p.regions.values():
            for v in versions:
                _check_value(r, top["parameters"], p, v, cat_ids)
    status: YMap = top["status"] if isinstance(top.get("status"), YMap) else YMap()
    cases = tuple(
        (str(c.get("value")), str(c["when"]) if "when" in c else None, _text(c.get("title")))
        for c in (status.get("cases") or [])
        if isinstance(c, dict)
    )
    if not cases or cases[-1][1] is not None:
        r.bad(status, ProblemKind.MISSING_KEY, "status: the last case has no `when` (it is the otherwise)")
    for value, when, _ in cases:
        if when not in (None, "reasons", "missing_departments"):
            r.bad(status, ProblemKind.BAD_VALUE, f"status case {value}: `when` is reasons or missing_departments")
    actions: YMap = top["actions"] if isinstance(top.get("actions"), YMap) else YMap()
    by_subject = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in (actions.get("by_subject") or {}).items()}
    decision = tuple(str(x) for x in top.get("decision") or [])
    returns = {str(k): str(v) for k, v in (top.get("returns") or {}).items()}
    if returns and returns.get("registry") not in registries:
        r.bad(top, ProblemKind.UNKNOWN_NAME, f"returns: no registry `{returns.get('registry')}`", "returns")
    if len(problems) > before:
        return None
    return RecordTypeSpec(
        name=name,
        file=display,
        table=str(top.get("table", "")),
        title=_text(top.get("title")),
        legal_basis=str(top.get("legal_basis", "")),
        roles=roles,
        fields=fields,
        registries=registries,
        returns=returns,
        parameters=params,
        categories=categories,
        rules=rules,
        status_field=str(status.get("field", "status")),
        status_cases=cases,
        action_field=str(actions.get("field", "action")),
        actions=by_subject,
        action_precedence=tuple(str(x) for x in actions.get("precedence") or []),
        action_titles={str(k): _text(v) for k, v in (actions.get("titles") or {}).items()},
        validity=dict(top.get("validity") or {}),
        decision=decision,
        department_titles={str(k): _text(v) for k, v in (top.get("department_titles") or {}).items()},
    )


def _fields(r: _Reader, doc: Any) -> tuple[RecordField, ...]:
    if not isinstance(doc, YMap):
        r.bad(doc, ProblemKind.MISSING_SECTION, "`record` must map field names to their declarations")
        return ()
    out = []
    allowed = {"type", "values", "nullable", "required_when", "min", "max", "title"}
    for name, spec in doc.items():
        m = r.mapping(spec, f"record field {name}", allowed, {"type", "title"}, doc.value_pos.get(name))
        if m is None:
            continue
        kind = str(m.get("type"))
        if kind not in INPUT_KINDS:
            r.bad(m, ProblemKind.UNKNOWN_TYPE, f"unknown type `{kind}`{did_you_mean(kind, INPUT_KINDS)}", "type")
        values = tuple(str(v) for v in m.get("values") or ())
        out.append(
            RecordField(
                name=str(name),
                scope=r.scope,
                type=Type(kind, bool(m.get("nullable", False)), values),
                title=_text(m.get("title")),
                pos=doc.key_pos[name],
                required_when=_conds(m.get("required_when")),
                min=str(m["min"]) if "min" in m else None,
                max=str(m["max"]) if "max" in m else None,
            )
        )
    names = {f.name for f in out}
    for f in out:
        for other in (f.min, f.max, *(k for k, _ in f.required_when)):
            if other is not None and other not in names:
                r.bad(doc, ProblemKind.UNKNOWN_NAME, f"record field {f.name}: no field `{other}`", f.name)
    return tuple(out)


def _registries(r: _Reader, doc: Any, field_names: set[str]) -> dict[str, RegistryDecl]:
    out: dict[str, RegistryDecl] = {}
    for name, spec in (doc or {}).items():
        m = r.mapping(spec, f"registry {name}", {"title", "match", "columns"}, {"title", "match", "columns"}, doc)
        if m is None:
            continue
        cols = []
        for cname, c in (m.get("columns") or {}).items():
            kind = str(c.get("type"))
            if kind not in INPUT_KINDS and kind != "category":
                r.bad(m["columns"], ProblemKind.UNKNOWN_TYPE, f"registry {name}: column {cname}: type `{kind}`", cname)
            after = str(c["after"]) if "after" in c else None
            cols.append(Column(str(cname), kind, bool(c.get("nullable", False)), after))
        match = m.get("match") or {}
        decl = RegistryDecl(
            name=str(name),
            scope=r.scope,
            type=Type("registry"),
            title=_text(m.get("title")),
            pos=pos_of(doc, name),
            match_column=str(match.get("column")),
            match_field=str(match.get("field")),
            columns=tuple(cols),
        )
        if decl.match_column not in {c.name for c in cols} or decl.match_field not in field_names:
            r.bad(m, ProblemKind.UNKNOWN_NAME, f"registry {name}: `match` names an unknown column or field", "match")
        out[str(name)] = decl
    return out


def _parameters(r: _Reader, doc: Any) -> dict[str, Parameter]:
    out: dict[str, Parameter] = {}
    for name, spec in (doc or {}).items():
        m = r.mapping(spec, f"parameter {name}", {"title", "unit", "values"}, {"title", "unit", "values"}, doc)
        if m is None:
            continue
        unit = str(m.get("unit"))
        if unit not in _PARAM_UNITS:
            r.bad(m, ProblemKind.UNKNOWN_TYPE, f"parameter {name}: unit is one of {', '.join(_PARAM_UNITS)}", "unit")
        regions: dict[str, tuple[ParamVersion, ...]] = {}
        for region, versions in (m.get("values") or {}).items():
            vs = []
            for start, v in (versions or {}).items():
                if not isinstance(start, dt.date):
                    r.bad(versions, ProblemKind.BAD_DATE, f"parameter {name}: a version starts on a date", start)
                    continue
                vm = r.mapping(
                    v,
                    f"parameter {name} {start}",
                    {"value", "label", "reference"},
                    {"value", "label", "reference"},
                    versions,
                )
                if vm is not None:
                    vs.append(
                        ParamVersion(
                            start, vm.get("value"), r.label(vm, f"parameter {name}"), str(vm.get("reference", ""))
                        )
                    )
            regions[str(region)] = tuple(sorted(vs, key=lambda x: x.start))
        out[str(name)] = Parameter(
            name=str(name),
            scope=r.scope,
            type=_UNIT_TYPES.get(unit, Type(unit)),
            title=_text(m.get("title")),
            pos=pos_of(doc, name),
            unit=unit,
            regions=regions,
        )
    return out


def _check_value(r: _Reader, where: Any, p: Parameter, v: ParamVersion, cat_ids: set[str]) -> None:
    value = v.value
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "int?": value is None or (isinstance(value, int) and not isinstance(value, bool)),
        "categories": isinstance(value, list) and all(str(x) in cat_ids for x in value),
        "departments": isinstance(value, dict) and set(map(str, value)) == cat_ids,
    }.get(p.unit, False)
    if not ok:
        why = {
            "categories": "a list of declared categories",
            "departments": "a department for every category, and only for them",
        }.get(p.unit, f"a value of unit {p.unit}")
        r.bad(where, ProblemKind.BAD_VALUE, f"parameter {p.name} from {v.start}: must be {why}", p.name)


def _categories(r: _Reader, doc: Any, params: Mapping[str, Parameter], field_names: set[str]) -> tuple[Category, ...]:
    out = []
    allowed = {"id", "title", "window", "label", "legal_basis"}
    for i, c in enumerate(doc or []):
        m = r.mapping(c, "category", allowed, allowed, pos_of(doc, i))
        if m is None:
            continue
        window, arg = _window(r, m.get("window"), m, params, field_names)
        out.append(
            Category(
                str(m.get("id")),
                _text(m.get("title")),
                window,
                arg,
                r.label(m, "category"),
                str(m.get("legal_basis", "")),
            )
        )
    return tuple(out)


def _window(
    r: _Reader, w: Any, where: Any, params: Mapping[str, Parameter], fields: set[str]
) -> tuple[str, str | None]:
    if isinstance(w, dict) and len(w) == 1:
        kind, arg = (str(x) for x in next(iter(w.items())))
    else:
        kind, arg = str(w), None
    if kind not in WINDOWS or (arg is None) != (kind in ("ever", "active")):
        r.bad(
            where,
            ProblemKind.BAD_VALUE,
            f"window `{w}`: one of {', '.join(WINDOWS)} (with its field or parameter)",
            "window",
        )
    elif kind == "active_on" and arg not in fields:
        r.bad(where, ProblemKind.UNKNOWN_NAME, f"window: no record field `{arg}`", "window")
    elif kind.startswith("within") and arg not in params:
        r.bad(
            where, ProblemKind.UNKNOWN_NAME, f"window: no parameter `{arg}`{did_you_mean(str(arg), params)}", "window"
        )
    return kind, arg
