"""A household decision as an officer reads it aloud to the applicant: per program one
sentence (result, amount, why), then the conditions met and not met with the values compared
and the standards' versions, the legal basis, the findings naming the people they concern,
and the standards used. Every name and code is read through ``engine.labels``."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.labels import Labels, mask_id, plain_reference

if TYPE_CHECKING:
    from engine.decision import Decision, RuleTrace

__all__ = ["render"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")
_MET, _NOT_MET, _CHECK = "✓", "✗", "•"
_W = {
    "zh": {
        "head": "户编号 {hid}，决定日期 {date}，规则版本 {version}",
        "legend": "图例：✓ 符合的条件　✗ 不符合的条件　• 核查情况（说明，不是条件）",
        "summary": "一、认定结论",
        "conditions": "二、认定条件",
        "findings": "三、专项治理发现",
        "parameters": "四、所用标准",
        "met": "符合的条件：",
        "not_met": "不符合的条件：",
        "checks": "核查情况：",
        "result": "结果：",
        "basis": "依据：",
        "member": "成员 ",
        "none": "无",
        "not_involved": "不涉及：",
        "colon": "：",
        "sep": "，",
        "semi": "；",
        "stop": "。",
        "gap": "",
        "vopen": "〔",
        "vclose": "〕",
        "list": "、",
        "open": "（",
        "close": "）",
        "from": "{date} 起执行",
        "everywhere": "各地区",
        "yes": "是",
        "no": "否",
        "holds": "符合",
        "fails": "不符合",
    },
    "en": {
        "head": "Household {hid}, decision date {date}, ruleset {version}",
        "legend": "Legend: ✓ condition met   ✗ condition not met   • checked (for information, not a condition)",
        "summary": "1. Decision",
        "conditions": "2. Conditions",
        "findings": "3. Re-screening findings",
        "parameters": "4. Standards used",
        "met": "Met:",
        "not_met": "Not met:",
        "checks": "Checked:",
        "result": "Result: ",
        "basis": "Basis: ",
        "member": "Member ",
        "none": "none",
        "not_involved": "Not involved: ",
        "colon": ": ",
        "sep": ", ",
        "semi": "; ",
        "stop": ".",
        "gap": " ",
        "vopen": " [",
        "vclose": "]",
        "list": ", ",
        "open": " (",
        "close": ")",
        "from": "in force from {date}",
        "everywhere": "every region",
        "yes": "yes",
        "no": "no",
        "holds": "met",
        "fails": "not met",
    },
}


def render(d: Decision, labels: Labels, lang: str = "zh") -> str:
    """The decision ``d`` as text in ``lang`` (zh or en)."""
    return _Renderer(d, labels, lang if lang in _W else "en").text()


class _Renderer:
    def __init__(self, d: Decision, labels: Labels, lang: str) -> None:
        self.d, self.l, self.lang, self.w = d, labels, lang, _W[lang]
        self.params = {p.name: p for p in d.parameters}
        self.people = {str(m.get(labels.person_field)): m for m in d.members if labels.person_field}
        self.by_program: dict[str, list[RuleTrace]] = {}
        for r in d.rules:
            self.by_program.setdefault(r.program, []).append(r)

    # ---------------------------------------------------------------- the whole text

    def text(self) -> str:
        d, w = self.d, self.w
        lines = [
            w["head"].format(hid=d.household_id, date=d.decision_date.isoformat(), version=d.ruleset_version),
            w["legend"],
            w["summary"],
        ]
        lines += self.summaries()
        lines.append(w["conditions"])
        for program in self.program_order():
            lines += self.block(program)
        lines.append(w["findings"])
        lines += self.findings() or [f"  {w['none']}"]
        lines.append(w["parameters"])
        used = {n for r in d.rules if r.outcome != "not_applicable" for n in r.values if n in self.params}
        lines += [f"  {self.parameter(p)}" for p in d.parameters if p.name in used]
        return "\n".join(lines)

    def program_order(self) -> list[str]:
        """Programs without decision fields (shared tests) first, then in decision-field order."""
        order = {n: i for i, n in enumerate(self.d.field_order)}
        first = {p: min((order.get(f, 999) for f in fs), default=-1) for p, fs in self.l.program_fields.items()}
        return sorted(self.by_program, key=lambda p: first.get(p, -1))

    # ---------------------------------------------------------------- section one

    def summaries(self) -> list[str]:
        w, out, idle = self.w, [], []
        for program in self.program_order():
            fields = self.l.program_fields.get(program)
            if not fields:
                continue
            line = self.summary(program, fields)
            if line is None:
                idle.append(self.program_title(program))
            else:
                out.append(f"  {line}")
        if idle:
            out.append(f"  {w['not_involved']}{w['list'].join(idle)}")
        return out

    def summary(self, program: str, fields: list[str]) -> str | None:
        """One sentence: the result, the amounts, why; None when the program does not concern the household."""
        w, values = self.w, self.d.fields
        case = next(
            (
                r
                for r in self.by_program.get(program, [])
                if r.kind == "case" and r.outcome == "fired" and not r.person_id
            ),
            None,
        )
        positive = case is not None and bool(case.messages.get("pass"))
        parts: list[str] = []
        status = False
        for name in fields:
            v = values.get(name)
            label = self.l.code(name, v, self.lang) if isinstance(v, str) else None
            if label is not None and name in self.l.values and not parts:
                parts.append(label)
                status = True
                continue
            if v is None or v is False or (not positive and _zero(v)):
                continue
            parts.append(f"{self.field_title(name)}{w['colon']}{self.l.with_unit(name, v, self.lang)}")
        if not parts:
            return None
        sentence = f"{self.program_title(program)}{w['colon']}{w['sep'].join(parts)}{w['stop']}"
        why = self.why(program, case) if status and case is not None else ""
        return sentence + (f"{w['gap']}{why}{w['stop']}" if why else "")

    def why(self, program: str, case: RuleTrace) -> str:
        """The fired case's own message; for the `otherwise` case, the conditions that failed:
        the program's own and the shared tests (programs without decision fields of their own)."""
        if case.messages.get("pass"):
            return self.message(case)
        if case.rule_id not in self.l.otherwise:
            return ""
        shared = {p for p in self.by_program if not self.l.program_fields.get(p)} | {program}
        failed = [
            r
            for r in self.d.rules
            if r.program in shared and r.rule_id in self.l.conditions and r.outcome == "fail" and not r.person_id
        ]
        return self.w["semi"].join(self.message(r) for r in failed)

    # ---------------------------------------------------------------- section two

    def block(self, program: str) -> list[str]:
        """One program's conditions: household ones, then each member's."""
        entries = [r for r in self.by_program[program] if r.kind != "finding"]
        house = [r for r in entries if not r.person_id]
        lines = self.grouped(house, "  ")
        members: dict[str, list[RuleTrace]] = {}
        for r in entries:
            if r.person_id:
                members.setdefault(r.person_id, []).append(r)
        for pid, rs in members.items():
            inner = self.grouped(rs, "    ")
            if inner:
                lines += [f"  {self.w['member']}{self.person(pid)}{self.w['colon'].rstrip()}", *inner]
        if not lines:
            return []
        basis = self.l.programs.get(program, {}).get("legal_basis", "")
        head = f"【{self.program_title(program)}】" + (f"{self.w['basis']}{basis}" if basis else "")
        return [head, *lines]

    def grouped(self, entries: list[RuleTrace], indent: str) -> list[str]:
        met: list[RuleTrace] = []
        not_met: list[RuleTrace] = []
        checks: list[RuleTrace] = []
        results: list[RuleTrace] = []
        for r in entries:
            if r.outcome == "not_applicable":
                continue
            if r.kind == "rule" and r.rule_id in self.l.conditions:
                (met if r.outcome == "pass" else not_met).append(r)
            elif r.kind == "rule":  # a check: told when it holds, or when it says what its failing means
                if r.outcome == "pass" or (self.has_message(r) and r.rule_id not in self.l.notable):
                    checks.append(r)
            elif r.kind == "case" and r.outcome == "fired":
                results.append(r)
            elif r.kind == "table" and r.outcome == "fired":
                checks.append(r)
        w, out = self.w, []
        for header, mark, group in (
            (w["met"], _MET, met),
            (w["not_met"], _NOT_MET, not_met),
            (w["checks"], _CHECK, checks),
        ):
            if group:  # two tables may choose rows of one title: each line once
                out.append(f"{indent}{header}")
                out += [f"{indent}  {mark} {line}" for line in dict.fromkeys(self.line(r) for r in group)]
        for r in results:
            said = self.message(r) if self.has_message(r) else r.title.get(self.lang) or r.rule_id
            basis = r.legal_basis if r.legal_basis and r.legal_basis != self._program_basis(r.program) else ""
            tail = f"{w['open']}{w['basis']}{basis}{w['close']}" if basis else ""
            out.append(f"{indent}{w['result']}{said}{tail}")
        return out

    def line(self, r: RuleTrace) -> str:
        """A condition or check: its message (or title) with the values compared and the versions of the standards."""
        w = self.w
        own = self.has_message(r)
        text = self.message(r) if own else (r.title.get(self.lang) or r.rule_id)
        if not own and r.kind == "rule" and r.rule_id not in self.l.conditions:
            text += w["colon"] + (w["yes"] if r.outcome == "pass" else w["no"])
        shown = [
            n for n in r.values if n not in self.l.traced and n not in self.params and not isinstance(r.values[n], list)
        ]
        if not own and shown and r.kind == "rule":
            vals = w["semi"].join(
                f"{self.l.title(n, self.lang)} {self.l.with_unit(n, r.values[n], self.lang)}" for n in shown
            )
            text += f"{w['open']}{vals}{w['close']}"
        versions = [self.version(n) for n in r.values if n in self.params]
        if versions:
            text += f"{w['vopen']}{w['semi'].join(versions)}{w['vclose']}"
        return text

    # ---------------------------------------------------------------- section three and four

    def findings(self) -> list[str]:
        out = []
        for r in self.d.rules:
            if r.kind != "finding" or r.outcome != "fired":
                continue
            text = r.title.get(self.lang) or r.rule_id
            if self.has_message(r):
                text += f"{self.w['colon']}{self.message(r)}"
            who = f"{self.w['member']}{self.person(r.person_id)}{self.w['colon']}" if r.person_id else ""
            basis = f"{self.w['open']}{self.w['basis']}{r.legal_basis}{self.w['close']}" if r.legal_basis else ""
            out.append(f"  {_CHECK} {who}{text}{basis}")
        return out

    def parameter(self, p: Any) -> str:
        w = self.w
        when = w["from"].format(date=p.start.isoformat())
        ref = plain_reference(p.reference)
        return (
            f"{self.l.title(p.name, self.lang)}{w['colon']}{self.l.with_unit(p.name, p.value, self.lang)}"
            f"{w['open']}{w['everywhere'] if p.region == '*' else p.region}{w['sep']}{when}"
            + (f"{w['semi']}{ref}" if ref else "")
            + w["close"]
        )

    def version(self, name: str) -> str:
        p = self.params[name]
        value = self.l.with_unit(name, p.value, self.lang)
        return (
            f"{self.l.title(name, self.lang)} {value}{self.w['sep']}{self.w['from'].format(date=p.start.isoformat())}"
        )

    # ---------------------------------------------------------------- words

    def has_message(self, r: RuleTrace) -> bool:
        key = "pass" if r.outcome in ("pass", "fired") else "fail"
        return bool(r.messages.get(key, {}).get(self.lang))

    def message(self, r: RuleTrace) -> str:
        """The rule's message for its outcome, its values read through the labels; else its title and outcome."""
        key = "pass" if r.outcome in ("pass", "fired") else "fail"
        template = r.messages.get(key, {}).get(self.lang)
        if not template:
            word = self.w["holds"] if key == "pass" else self.w["fails"]
            return f"{r.title.get(self.lang) or r.rule_id}{self.w['colon']}{word}"
        return _PLACEHOLDER.sub(lambda m: self.l.human(m.group(1), r.values.get(m.group(1)), self.lang), template)

    def person(self, pid: str | None) -> str:
        m = self.people.get(str(pid))
        return self.l.person(m, self.lang) if m is not None else mask_id(str(pid or ""))

    def program_title(self, program: str) -> str:
        t = self.l.programs.get(program, {}).get("title") or {}
        return str(t.get(self.lang) or program)

    def field_title(self, name: str) -> str:
        return self.l.field_titles.get(name, {}).get(self.lang) or self.l.title(name, self.lang)

    def _program_basis(self, program: str) -> str:
        return str(self.l.programs.get(program, {}).get("legal_basis", ""))


def _zero(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return v == 0 if isinstance(v, int | Decimal) else False
