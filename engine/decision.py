"""A decision for one household, with its explanation, and how it is written out."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar, overload

from engine.parameters import ParameterUse

__all__ = ["Decision", "RuleTrace", "format_value"]

_FEN = Decimal("0.01")
T = TypeVar("T")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")
_OUTCOME_WORDS = {
    "pass": ("符合", "met"),
    "fail": ("不符合", "not met"),
    "fired": ("适用", "applies"),
    "not_fired": ("不适用", "does not apply"),
    "not_applicable": ("不涉及", "not applicable"),
}


class _Once(Generic[T]):
    """``functools.cached_property`` without its lock: on Python 3.11 one lock serves every
    instance, so threads reading different decisions at once would wait on each other. A race
    at worst computes the same value twice."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Once[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | _Once[T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


def format_value(v: Any) -> Any:
    """JSON form of an engine value: money/decimals as strings, dates ISO."""
    if isinstance(v, Decimal):
        if v == v.quantize(_FEN):
            return f"{v.quantize(_FEN):.2f}"
        return str(v.normalize())
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, frozenset | set):
        return f"<{len(v)} entries>"
    if isinstance(v, list):
        return [m.get("person_id", "?") if isinstance(m, dict) else format_value(m) for m in v]
    return v


def _human(v: Any, lang: str) -> str:
    if isinstance(v, bool):
        return ("是" if v else "否") if lang == "zh" else ("yes" if v else "no")
    if v is None:
        return "无" if lang == "zh" else "none"
    f = format_value(v)
    if isinstance(f, list):
        return "、".join(map(str, f)) if lang == "zh" else ", ".join(map(str, f))
    return str(f)


@dataclass
class RuleTrace:
    """One evaluated rule: outcome, the values it read, where it comes from."""

    rule_id: str
    kind: str
    program: str
    outcome: str  # pass fail fired not_fired not_applicable
    values: dict[str, Any]
    title: dict[str, str]
    legal_basis: str
    messages: dict[str, dict[str, str]]
    person_id: str | None = None
    row: str | None = None
    reported: bool = False
    order: tuple[int, int, int] = (0, 0, 0)  # (scope, definition, table row): the bulk `reasons` order
    # a value as a message shows it, codes read through the rule files' labels (``Labels.human``)
    human: Callable[[str, Any, str], str] | None = field(default=None, repr=False, compare=False)

    def message(self, lang: str) -> str:
        key = "pass" if self.outcome in ("pass", "fired") else "fail"
        template = self.messages.get(key, {}).get(lang)
        if template:
            human = self.human
            if human is not None:
                return _PLACEHOLDER.sub(lambda m: human(m.group(1), self.values.get(m.group(1)), lang), template)
            return _PLACEHOLDER.sub(lambda m: _human(self.values.get(m.group(1)), lang), template)
        title = self.title.get(lang) or self.rule_id
        word = _OUTCOME_WORDS[self.outcome][0 if lang == "zh" else 1]
        sep = "：" if lang == "zh" else ": "
        return f"{title}{sep}{word}" + (f" ({self.row})" if self.row else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, messages in both languages; made once (a decision's reasons appear in its
        fields and in its explanation). Callers must not change what it returns."""
        cached = self.__dict__.get("_as_dict")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        d = self._fields({"zh": self.message("zh"), "en": self.message("en")})
        self.__dict__["_as_dict"] = d
        return d

    def in_language(self, lang: str) -> dict[str, Any]:
        """As ``as_dict`` with the message in ``lang`` only: what an answer in one language
        shows, without rendering the other language's message."""
        cached = self.__dict__.get("_as_dict")
        if cached is not None:
            return {**cached, "message": cached["message"][lang]}
        return self._fields(self.message(lang))

    def _fields(self, message: Any) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rule": self.rule_id,
            "program": self.program,
            "outcome": self.outcome,
            "title": self.title,
            "values": {k: format_value(v) for k, v in self.values.items()},
            "legal_basis": self.legal_basis,
            "message": message,
        }
        if self.person_id is not None:
            d["person_id"] = self.person_id
        if self.row is not None:
            d["row"] = self.row
        return d


@dataclass
class Decision:
    household_id: str
    decision_date: dt.date
    ruleset_version: str
    fields: dict[str, Any]  # decision fields in order, engine values
    findings: list[str]
    parameters: tuple[ParameterUse, ...]
    registries: dict[str, str] = field(default_factory=dict)
    field_order: list[str] = field(default_factory=list)
    trace: Callable[[], list[RuleTrace]] = field(default=list, repr=False, compare=False)
    # per-member lists of `reports.member_lists` (``engine.member_lists``), computed when the decision is written out
    computed_lists: Callable[[], dict[str, list[dict[str, Any]]]] = field(default=dict, repr=False, compare=False)
    # the ruleset's labels (``engine.labels.Labels``) and the validated members, for the text an officer reads
    labels: Any = field(default=None, repr=False, compare=False)
    members: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    @_Once
    def rules(self) -> list[RuleTrace]:
        """Every rule of the ruleset as evaluated for this household."""
        return self.trace()

    @_Once
    def reasons(self) -> list[RuleTrace]:
        """Rules that failed or fired and are reported (RECORDS.md `reasons`)."""
        return [r for r in self.rules if r.reported]

    def top_level(self) -> dict[str, Any]:
        """The RECORDS.md decision fields, in the declared order, JSON-ready."""
        base = {
            "household_id": self.household_id,
            "decision_date": self.decision_date.isoformat(),
            "ruleset_version": self.ruleset_version,
            "findings": list(self.findings),
            "reasons": [r.as_dict() for r in self.reasons],
        }
        out: dict[str, Any] = {}
        for name in self.field_order:
            out[name] = base[name] if name in base else format_value(self.fields.get(name))
        return out

    def to_dict(self, explain: bool = True) -> dict[str, Any]:
        out = self.top_level()
        out.update(self.computed_lists())
        if explain:
            out["explanation"] = self.explanation()
        return out

    def explanation(self, lang: str | None = None) -> dict[str, Any]:
        """Every rule as evaluated, the parameter versions and the registries used; each rule's
        message in both languages, or only in ``lang`` (with ``"language": lang``)."""
        out: dict[str, Any] = {
            "ruleset_version": self.ruleset_version,
            "parameters": [p.as_dict() for p in self.parameters],
            "registries": dict(self.registries),
            "rules": [r.as_dict() for r in self.rules] if lang is None else [r.in_language(lang) for r in self.rules],
        }
        if lang is not None:
            out["language"] = lang
        return out

    def flat(self) -> dict[str, Any]:
        """One row for bulk output: lists joined with `;`, reasons as rule ids."""
        row = self.top_level()
        row["findings"] = ";".join(self.findings)
        ordered = sorted({r.rule_id: r.order for r in self.reasons}.items(), key=lambda kv: kv[1])
        row["reasons"] = ";".join(rule_id for rule_id, _ in ordered)
        return row

    def explain_text(self, lang: str = "zh") -> str:
        """The explanation as an officer reads it aloud (``engine.explain``); a decision made
        without the ruleset's labels falls back to a plain listing of fields and rules."""
        if self.labels is not None:
            from engine.explain import render

            return render(self, self.labels, lang)
        zh = lang == "zh"
        lines = [
            (f"户编号 {self.household_id}  决定日期 {self.decision_date}  规则版本 {self.ruleset_version}")
            if zh
            else f"Household {self.household_id}  decision date {self.decision_date}  ruleset {self.ruleset_version}"
        ]
        lines.append("== 决定 ==" if zh else "== Decision ==")
        for name, value in self.top_level().items():
            if name in ("reasons", "household_id", "decision_date", "ruleset_version"):
                continue
            lines.append(f"  {name}: {_human(value, lang) if not isinstance(value, list) else ', '.join(value) or '-'}")
        lines.append("== 理由 ==" if zh else "== Reasons ==")
        current = None
        for r in self.rules:
            if r.program != current:
                current = r.program
                lines.append(f"[{current}]")
            who = f" {r.person_id}" if r.person_id else ""
            mark = {"pass": "✓", "fired": "✓", "fail": "✗", "not_fired": "·", "not_applicable": "-"}[r.outcome]
            vals = ", ".join(
                f"{k}={_human(v, lang)}" for k, v in r.values.items() if not isinstance(v, list | frozenset)
            )
            basis = f"  〔{r.legal_basis}〕" if r.legal_basis and r.outcome in ("fail", "fired") else ""
            lines.append(f"  {mark} {r.rule_id}{who}: {r.message(lang)}" + (f"  ({vals})" if vals else "") + basis)
        lines.append("== 参数 ==" if zh else "== Parameters ==")
        for p in self.parameters:
            d = p.as_dict()
            lines.append(f"  {p.name} = {d['value']}  ({p.region}, {d['version']}; {p.reference})")
        return "\n".join(lines)
