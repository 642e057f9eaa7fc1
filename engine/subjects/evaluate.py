"""Deciding one record of a declared record type against its registries.

Interprets the record type of the plan (``engine.plan_records``): the rules in the order
written (none short-circuits), each test an ``engine.ir`` expression, each registry row of an
``ir.Records`` tested in its category's window, the departments the
evaluated categories need, the status by declared precedence, the action, and the validity.
Dates are half-open: a status holds on day X iff ``start <= X`` and (``end`` empty or
``X < end``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import ir
from engine.errors import FieldProblem, InputError
from engine.messages import text as catalogue_text
from engine.scalar import add_months, years_between

from .record import SubjectRegistry, empty_registry, validate
from .spec import Category, ParamVersion, RecordTypeSpec, SubjectRule

__all__ = ["SubjectDecision", "SubjectEvaluator"]


@dataclass
class SubjectDecision:
    """A decision on one record: its fields in the declared order, reasons and explanation."""

    spec: RecordTypeSpec
    fields: dict[str, Any]
    reasons: list[dict[str, Any]]
    required_departments: list[str]
    explanation: list[dict[str, Any]]
    parameters: list[dict[str, Any]]
    registry_versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self, explain: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.spec.decision:
            out[name] = self.reasons if name == "reasons" else _json(self.fields.get(name))
        out["required_departments"] = self.required_departments
        if explain:
            out["explanation"] = {
                "rules": self.explanation,
                "parameters": self.parameters,
                "registry_versions": self.registry_versions,
            }
        return out

    def row(self) -> dict[str, Any]:
        """The bulk row: lists joined with ``;``."""
        out: dict[str, Any] = {}
        for name in self.spec.decision:
            v = [r["id"] for r in self.reasons] if name == "reasons" else self.fields.get(name)
            out[name] = ";".join(v) if isinstance(v, list) else _json(v)
        return out


def _json(v: Any) -> Any:
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return [_json(x) for x in v]
    return v


class SubjectEvaluator:
    """Decides records of one record type with given registry versions."""

    def __init__(
        self, spec: RecordTypeSpec, registries: Mapping[str, SubjectRegistry] | None = None, ruleset_version: str = ""
    ) -> None:
        self.spec = spec
        self.ruleset_version = ruleset_version
        regs = dict(registries or {})
        for name, decl in spec.registries.items():
            regs.setdefault(name, empty_registry(decl))
        self.registries = regs
        # the registry of findings is the one with a category column
        self._findings = next(n for n, d in spec.registries.items() if any(c.kind == "category" for c in d.columns))

    def decide(self, raw: Any) -> SubjectDecision:
        rec = validate(self.spec, raw)
        return _Run(self, rec).decide()


class _Run:
    """One evaluation: the record, its date, and the parameter versions it used."""

    def __init__(self, ev: SubjectEvaluator, rec: dict[str, Any]) -> None:
        self.ev, self.spec, self.rec = ev, ev.spec, rec
        self.day: dt.date = rec[self.spec.role("date")]
        self.region = str(rec[self.spec.role("region")])
        self.used: dict[str, ParamVersion] = {}
        self.evaluated: list[str] = []  # categories whose departments are required
        self.last_categories: list[str] = []  # the categories the last records test looked at

    def param(self, name: str) -> Any:
        p = self.spec.parameters[name]
        if not any(r in p.regions for r in (self.region, "*")):
            raise InputError(
                [
                    FieldProblem(
                        self.spec.role("region"),
                        catalogue_text("input.no_value_region", "en", name=name, region=self.region),
                    )
                ]
            )
        v = p.version(self.region, self.day)
        if v is None:
            raise InputError(
                [
                    FieldProblem(
                        self.spec.role("date"), catalogue_text("input.no_version_on", "en", name=name, day=self.day)
                    )
                ]
            )
        self.used[name] = v
        return v.value

    def decide(self) -> SubjectDecision:
        spec, rec = self.spec, self.rec
        rows = self.ev.registries[self.ev._findings].of(rec[spec.role("person")])
        reasons: list[dict[str, Any]] = []
        explanation: list[dict[str, Any]] = []
        for rule in spec.rules:
            if rule.applies is not None and not self.value(rule.applies):
                explanation.append(_explained(rule, rule.id, "not_applicable"))
                continue
            found = self.test(rule, rows)
            ids = {r["id"] for r in found}
            reasons.extend(found)
            if rule.each_category:
                for cid in self.last_categories:
                    rid = f"{rule.id}.{cid}"
                    explanation.append(_explained(rule, rid, "fail" if rid in ids else "pass"))
            else:
                explanation.append(_explained(rule, rule.id, "fail" if found else "pass"))
        departments = self.param_departments()
        required = sorted({departments[c] for c in self.evaluated})
        missing = sorted(set(required) - self.reported())
        status = next(
            value
            for value, when, _ in spec.status_cases
            if when is None or (when == "reasons" and reasons) or (when == "missing_departments" and missing)
        )
        action = spec.actions[str(rec[spec.role("subject")])][status]
        if action == "from_reasons":
            asked = {r["action"] for r in reasons if r.get("action")}
            action = next((a for a in spec.action_precedence if a in asked), next(iter(sorted(asked)), "none"))
        fields: dict[str, Any] = {
            spec.role("id"): rec[spec.role("id")],
            spec.role("date"): self.day,
            spec.role("subject"): rec[spec.role("subject")],
            "ruleset_version": self.ev.ruleset_version,
            spec.status_field: status,
            spec.action_field: action,
            "missing_departments": missing,
        }
        fields.update(self.validity())
        params = [
            {
                "name": n,
                "valid_from": v.start.isoformat(),
                "value": _json(v.value),
                "label": v.label,
                "reference": v.reference,
            }
            for n, v in self.used.items()
        ]
        versions = {n: r.version for n, r in sorted(self.ev.registries.items())}
        return SubjectDecision(spec, fields, reasons, required, explanation, params, versions)

    # ------------------------------------------------------------ tests

    def value(self, e: ir.Expr) -> Any:
        """The value of a record type's expression for this record."""
        if isinstance(e, ir.Const):
            return e.value
        if isinstance(e, ir.Ref):
            return self.param(e.name) if e.name in self.spec.parameters else self.rec.get(e.name)
        if isinstance(e, ir.Call) and e.fn == "years_between":
            return years_between(*(self.value(a) for a in e.args))
        if isinstance(e, ir.Compare):
            return _COMPARE[e.op](self.value(e.left), self.value(e.right))
        if isinstance(e, ir.BoolOp):
            parts = (bool(self.value(x)) for x in e.operands)
            return all(parts) if e.op == "and" else any(parts)
        raise TypeError(f"a record type's rule cannot evaluate {type(e).__name__}")

    def test(self, rule: SubjectRule, rows: tuple[Mapping[str, Any], ...]) -> list[dict[str, Any]]:
        self.last_categories = []
        if not isinstance(rule.test, ir.Records):
            if not self.value(rule.test):
                return []
            return [self.reason(rule, rule.id, [], {k: self.value(e) for k, e in rule.values.items()})]
        node = rule.test
        wanted = list(node.categories) if node.categories_from is None else self.value(node.categories_from)
        cats = [c for c in self.spec.categories if c.id in {str(w) for w in wanted}]  # table order
        self.last_categories = [c.id for c in cats]
        self.evaluated.extend(c.id for c in cats)
        out, hits = [], []
        for cat in cats:
            matched = [r for r in rows if r["category"] == cat.id and self.in_window(r, cat, node)]
            if matched and rule.each_category:
                out.append(self.reason(rule, f"{rule.id}.{cat.id}", matched, {"category": cat.title}, cat))
            hits.extend(matched)
        if hits and not rule.each_category:
            out.append(self.reason(rule, rule.id, hits, {}))
        return out

    def in_window(self, r: Mapping[str, Any], cat: Category, node: ir.Records) -> bool:
        start, end, day = r["start_date"], r["end_date"], self.day
        if start > day:
            return False  # not yet known on the review date
        after, before = node.start_on_or_after, node.start_before
        if after is not None and not start >= self.value(after):
            return False
        if before is not None and not start < self.value(before):
            return False
        kind, arg = (node.window, None) if node.window is not None else (cat.window, cat.window_arg)
        if kind == "ever":
            return True
        if kind == "active":
            return end is None or day < end
        if kind == "active_on":
            on = self.rec[str(arg)]
            return end is None or on is None or on < end
        years = self.param(str(arg))
        if kind == "within_years_of_start":
            return day < add_months(start, 12 * int(years))
        return years is None or end is None or day < add_months(end, 12 * int(years))  # within_years_of_end

    def reason(
        self,
        rule: SubjectRule,
        rid: str,
        rows: list[Mapping[str, Any]],
        values: dict[str, Any],
        cat: Category | None = None,
    ) -> dict[str, Any]:
        shown = {k: _json(v) for k, v in values.items()}
        action = rule.action
        if rule.action_by is not None:
            action = rule.action_by[1].get(str(self.rec.get(rule.action_by[0])))
        out: dict[str, Any] = {
            "id": rid,
            "title": cat.title if cat else rule.title,
            "legal_basis": cat.legal_basis if cat else rule.legal_basis,
            "label": cat.label if cat else rule.label,
            "message": {lang: text.format(**_in(shown, lang)) for lang, text in rule.message.items()},
            "values": shown,
            "records": [
                {k: _json(r[k]) for k in ("category", "department", "start_date", "end_date", "reference")}
                for r in rows
            ],
        }
        if action:
            out["action"] = action
        return out

    # ------------------------------------------------------------ departments and validity

    def param_departments(self) -> Mapping[str, str]:
        name = next(n for n, p in self.spec.parameters.items() if p.unit == "departments")
        return {str(k): str(v) for k, v in self.param(name).items()}

    def reported(self) -> set[str]:
        ret = self.spec.returns
        if not ret:
            return set()
        rows = self.ev.registries[ret["registry"]].of(self.rec[self.spec.role("batch")])
        return {str(r[ret["department"]]) for r in rows if r[ret["date"]] <= self.day}

    def validity(self) -> dict[str, Any]:
        v = self.spec.validity
        out: dict[str, Any] = {}
        until = v.get("valid_until")
        if isinstance(until, Mapping):
            base = self.rec[str(until["field"])]
            out["valid_until"] = base + dt.timedelta(days=int(self.param(str(until["add_days"]))))
        recheck = v.get("recheck_required")
        if isinstance(recheck, Mapping) and "valid_until" in out:
            applies = all(str(self.rec.get(k)) == str(x) for k, x in (recheck.get("applies") or {}).items())
            after = self.rec.get(str(recheck["after"]))
            out["recheck_required"] = bool(applies and after is not None and after > out["valid_until"])
        return out


_COMPARE: Mapping[str, Any] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _in(values: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """Values for a message in one language: a {zh, en} text gives its own."""
    return {k: v.get(lang, "") if isinstance(v, dict) else v for k, v in values.items()}


def _explained(rule: SubjectRule, rid: str, outcome: str) -> dict[str, Any]:
    return {"id": rid, "outcome": outcome, "title": rule.title, "legal_basis": rule.legal_basis, "label": rule.label}
