"""What officers read instead of names and codes: every label the rule files declare (record
fields and their values in ``record.yaml``, decision fields and their values in
``ruleset.yaml``, programs, findings, parameters and named values in the program files),
gathered once per ruleset, and values written as a sentence shows them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from engine.plan import Case, Finding, Rule, Traced

if TYPE_CHECKING:
    from engine.record import FieldSpec
    from engine.ruleset import Ruleset

__all__ = ["Labels", "mask_id", "plain_reference"]

Text = dict[str, str]
_FEN = Decimal("0.01")
_SHOWN_PLACES = Decimal("0.0001")  # a figure not exact to the fen: four places, cut, then "…"
# a curation note staff keep in a reference: `[default]`, `[verified: …]`, `[verified only in …]`
_TAG = re.compile(r"\[(?:[a-z_]+)(?::\s*([^\]]*)|[^\]]*)\]")
_WORDS = {
    "zh": {"yes": "是", "no": "否", "none": "无", "yuan": " 元", "list": "、", "id": "身份证号"},
    "en": {"yes": "yes", "no": "no", "none": "none", "yuan": " yuan", "list": ", ", "id": "ID"},
}


def mask_id(value: str) -> str:
    """A resident ID as an explanation shows it: the first and last four characters.

    >>> mask_id("320684195001010014")
    '3206**********0014'
    """
    return "*" * len(value) if len(value) < 8 else value[:4] + "*" * (len(value) - 8) + value[-4:]


def plain_reference(reference: str) -> str:
    """A parameter's reference without the curation tags (``[default]``) staff keep in the files.

    >>> plain_reference("[default] 海门市城乡低保标准 2019 年调整")
    '海门市城乡低保标准 2019 年调整'
    >>> plain_reference("[verified: MZ/T 039-2013 4.3.5] 每6个月")
    'MZ/T 039-2013 4.3.5 每6个月'
    """
    return " ".join(_TAG.sub(lambda m: m.group(1) or "", reference).split()).strip("；; ")


@dataclass(frozen=True)
class Labels:
    """Every label of one ruleset, read from its plan once."""

    titles: dict[tuple[str, str], Text]  # (scope, name) of a record field or named value -> title
    kinds: dict[tuple[str, str], str]  # (scope, name) -> type kind (money, bool, ...)
    values: dict[str, dict[str, Text]]  # a field (record or decision) -> code -> label
    field_titles: dict[str, Text]  # decision field -> title
    programs: dict[str, dict[str, Any]]  # program id -> {title, legal_basis}
    program_fields: dict[str, list[str]]  # program id -> its decision fields, in decision order
    conditions: frozenset[str] = field(default_factory=frozenset)  # rules whose failing is a reason
    findings: dict[str, Text] = field(default_factory=dict)  # finding code -> title
    traced: frozenset[str] = field(default_factory=frozenset)  # rules, cases, tables, findings
    notable: frozenset[str] = field(default_factory=frozenset)  # rules worth telling only when they hold
    otherwise: frozenset[str] = field(default_factory=frozenset)  # the `otherwise` case of each outcome
    # a member is named by the record's resident-ID field and its text field (its name)
    person_field: str = ""
    name_field: str = ""

    @classmethod
    def of(cls, ruleset: Ruleset) -> Labels:
        titles: dict[tuple[str, str], Text] = {}
        kinds: dict[tuple[str, str], str] = {}
        values: dict[str, dict[str, Text]] = {}

        def record(specs: list[FieldSpec], scope: str) -> None:
            for spec in specs:
                titles[(scope, spec.name)] = spec.title
                kinds[(scope, spec.name)] = spec.kind
                if spec.labels:
                    values[spec.name] = spec.labels
                record(spec.fields, scope)

        for (scope, name), d in ruleset.plan.definitions.items():
            if d.title:
                titles.setdefault((scope, name), d.title)
            kinds.setdefault((scope, name), d.type.kind)
        record(ruleset.record.household, "household")
        record(ruleset.record.member, "member")
        field_titles: dict[str, Text] = {}
        for name, spec in ruleset.labels.items():
            field_titles[name] = spec.get("title") or {}
            if spec.get("values"):
                values[name] = spec["values"]
        program_fields: dict[str, list[str]] = {}
        for f in ruleset.plan.fields:
            program_fields.setdefault(f.definition.program, []).append(f.name)
        order = {n: i for i, n in enumerate(ruleset.decision_fields)}
        for names in program_fields.values():
            names.sort(key=lambda n: order.get(n, len(order)))
        conditions = frozenset(
            d.name for d in ruleset.plan.definitions.values() if isinstance(d, Rule) and "fail" in d.reported_on
        )
        findings = {d.code: d.title for d in ruleset.plan.definitions.values() if isinstance(d, Finding)}
        programs = {p["id"]: {"title": p["title"], "legal_basis": p["legal_basis"]} for p in ruleset.programs}
        traced = frozenset(d.name for d in ruleset.plan.definitions.values() if isinstance(d, Traced))
        person = next((s.name for s in ruleset.record.member if s.kind == "resident_id"), "")
        name = next((s.name for s in ruleset.record.member if s.kind == "str"), "")
        notable = frozenset(
            d.name for d in ruleset.plan.definitions.values() if isinstance(d, Rule) and d.report in ("fire", "pass")
        )
        otherwise = frozenset(
            d.name for d in ruleset.plan.definitions.values() if isinstance(d, Case) and d.arm.cond is None
        )
        return cls(
            titles, kinds, values, field_titles, programs, program_fields, conditions, findings, traced, notable,
            otherwise, person, name,
        )  # fmt: skip

    def title(self, name: str, lang: str, scope: str = "household") -> str:
        """A named value's title (a member's own field first where the scope is a member)."""
        t = self.titles.get((scope, name)) or self.titles.get(("household", name)) or self.titles.get(("member", name))
        return (t or {}).get(lang) or name

    def kind(self, name: str) -> str:
        return self.kinds.get(("household", name)) or self.kinds.get(("member", name)) or ""

    def code(self, name: str, code: Any, lang: str) -> str | None:
        """The label of a code of a field (``name`` a record or decision field), if declared."""
        label = self.values.get(name, {}).get(str(code))
        return label.get(lang) if label else None

    def person(self, m: dict[str, Any], lang: str) -> str:
        """A member named as an explanation names one: name (if recorded) and masked ID."""
        pid = mask_id(str(m.get(self.person_field) or ""))
        name = m.get(self.name_field) if self.name_field else None
        w = _WORDS[lang]
        return f"{name}（{w['id']} {pid}）" if name and lang == "zh" else f"{name} ({w['id']} {pid})" if name else pid

    def with_unit(self, name: str, v: Any, lang: str) -> str:
        """``human``, with 元 after an amount (messages write their own units)."""
        text = self.human(name, v, lang)
        return text + _WORDS[lang]["yuan"] if self.kind(name) == "money" and isinstance(v, Decimal | int) else text

    def human(self, name: str, v: Any, lang: str) -> str:
        """The value of ``name`` as a sentence shows it: codes as labels, money to the fen,
        yes/no, people by name and masked ID, figures never rounded into a contradiction."""
        w = _WORDS[lang]
        if isinstance(v, bool):
            return w["yes"] if v else w["no"]
        if v is None:
            return w["none"]
        if isinstance(v, list | tuple):
            if v and all(isinstance(m, dict) for m in v):
                return w["list"].join(self.person(m, lang) for m in v)
            return w["list"].join(self.human(name, x, lang) for x in v) or w["none"]
        if isinstance(v, frozenset | set):
            return str(len(v))
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, Decimal | int) and not isinstance(v, bool) and self.kind(name) == "money":
            return money(Decimal(v))
        if isinstance(v, Decimal):
            return figure(v)
        label = self.code(name, v, lang) if isinstance(v, str) else None
        return label if label is not None else str(v)


def money(v: Decimal) -> str:
    """An amount exact to the fen, or, if it has more places, four of them cut and "…".

    >>> money(Decimal("790")), money(Decimal("2000") / 3)
    ('790.00', '666.6666…')
    """
    if v == v.quantize(_FEN):
        return f"{v.quantize(_FEN):.2f}"
    return figure(v)


def figure(v: Decimal) -> str:
    """A decimal figure as it is, or cut to four places with "…" (never rounded up past a line).

    >>> figure(Decimal("0.25")), figure(Decimal(1) / 3)
    ('0.25', '0.3333…')
    """
    if v == v.quantize(_SHOWN_PLACES):
        return str(v.normalize()) if v != v.to_integral_value() else str(v.to_integral_value())
    return f"{v.quantize(_SHOWN_PLACES, ROUND_DOWN)}…"
