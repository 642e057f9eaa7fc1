"""A ruleset as people read it: each rule's condition written back from the plan, with the
titles of the names it reads, and each parameter as dated values per region.

The rules explorer and the diff between two versions show these; both work on the plain
values returned here (text, dates as ISO strings), never on the plan's classes.

>>> from engine import load
>>> rs = load("rules")
>>> rule = next(r for r in describe_rules(rs) if r["id"] == "dibao.income_below_standard")
>>> rule["conditions"][0]["text"]["zh"]
'T < dibao.standard × n'
>>> [n["name"] for n in rule["names"]]
['T', 'dibao.standard', 'n']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from engine import ir
from engine.decision import format_value
from engine.plan import Case, Definition, Finding, Key, Rule, Table, Traced
from engine.ruleset import Ruleset

__all__ = ["describe_expr", "describe_parameters", "describe_rules"]

_COMPARE = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
_ARITH = {"+": "+", "-": "−", "*": "×", "/": "÷"}
# binding strength: a child weaker than its parent's slot is put in parentheses
_PREC = {"if": 0, "or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "atom": 9}
_WORDS = {
    "zh": {
        "and": "且",
        "or": "或",
        "not": "非",
        "none": "为空",
        "not_none": "不为空",
        "in": "属于",
        "not_in": "不属于",
        "if": "若",
        "else": "否则",
        "where": "满足",
        "any": "存在",
        "all": "所有",
        "sum": "合计",
        "count": "人数",
        "of": "中",
    },
    "en": {
        "and": "and",
        "or": "or",
        "not": "not",
        "none": "is empty",
        "not_none": "is given",
        "in": "in",
        "not_in": "not in",
        "if": "if",
        "else": "else",
        "where": "where",
        "any": "any",
        "all": "every",
        "sum": "sum",
        "count": "count",
        "of": "in",
    },
}


def _const(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    shown = format_value(value)
    return str(shown)


class _Writer:
    """Writes one expression in one language, collecting the names it reads."""

    def __init__(self, lang: str) -> None:
        self.w = _WORDS[lang]
        self.names: list[Key] = []

    def text(self, e: ir.Expr, slot: int = 0) -> str:
        prec, out = self._write(e)
        return f"({out})" if prec < slot else out

    def _write(self, e: ir.Expr) -> tuple[int, str]:
        return _WRITERS[type(e)](self, e)

    def ref(self, e: ir.Ref) -> tuple[int, str]:
        key = ("member" if e.scope == "member" else "household", e.name)
        if key not in self.names:
            self.names.append(key)
        return _PREC["atom"], f"{e.var}.{e.name}" if e.var else e.name

    def const(self, e: ir.Const) -> tuple[int, str]:
        return _PREC["atom"], _const(e.value)

    def not_(self, e: ir.Not) -> tuple[int, str]:
        return _PREC["not"], f"{self.w['not']} {self.text(e.operand, _PREC['not'])}"

    def boolop(self, e: ir.BoolOp) -> tuple[int, str]:
        p = _PREC[e.op]
        return p, f" {self.w[e.op]} ".join(self.text(x, p + 1) for x in e.operands)

    def binop(self, e: ir.BinOp) -> tuple[int, str]:
        p = _PREC[e.op]
        # left-associative: the right operand of an equal-strength operator needs parentheses
        return p, f"{self.text(e.left, p)} {_ARITH[e.op]} {self.text(e.right, p + 1)}"

    def compare(self, e: ir.Compare) -> tuple[int, str]:
        p = _PREC["cmp"]
        return p, f"{self.text(e.left, p + 1)} {_COMPARE[e.op]} {self.text(e.right, p + 1)}"

    def inset(self, e: ir.InSet) -> tuple[int, str]:
        word = self.w["not_in" if e.negate else "in"]
        if e.registry is not None:
            where = e.registry
        else:
            where = "{" + ", ".join(sorted(_const(v) for v in e.values or ())) + "}"
        return _PREC["cmp"], f"{self.text(e.item, _PREC['cmp'] + 1)} {word} {where}"

    def isnone(self, e: ir.IsNone) -> tuple[int, str]:
        return _PREC["cmp"], f"{self.text(e.operand, _PREC['cmp'] + 1)} {self.w['not_none' if e.negate else 'none']}"

    def ifelse(self, e: ir.IfElse) -> tuple[int, str]:
        p = _PREC["if"]
        then, cond, other = self.text(e.then, p + 1), self.text(e.cond, p + 1), self.text(e.other, p)
        return p, f"{then} {self.w['if']} {cond}, {self.w['else']} {other}"

    def call(self, e: ir.Call) -> tuple[int, str]:
        return _PREC["atom"], f"{e.fn}({', '.join(self.text(a) for a in e.args)})"

    def _over(self, var: str, source: ir.Expr, cond: ir.Expr | None) -> str:
        head = f"{var} ∈ {self.text(source, _PREC['atom'])}" if var else self.text(source, _PREC["atom"])
        return head + (f" {self.w['where']} {self.text(cond, _PREC['and'])}" if cond is not None else "")

    def filter(self, e: ir.Filter) -> tuple[int, str]:
        return _PREC["atom"], "{" + self._over(e.var, e.source, e.cond) + "}"

    def agg(self, e: ir.Agg) -> tuple[int, str]:
        over = self._over(e.var, e.source, e.cond)
        if e.elt is None:
            return _PREC["atom"], f"{self.w[e.fn]}({over})"
        return _PREC["atom"], f"{self.w[e.fn]}({over}: {self.text(e.elt)})"


_WRITERS: Mapping[type, Callable[[_Writer, Any], tuple[int, str]]] = {
    ir.Ref: _Writer.ref,
    ir.Const: _Writer.const,
    ir.Not: _Writer.not_,
    ir.BoolOp: _Writer.boolop,
    ir.BinOp: _Writer.binop,
    ir.Compare: _Writer.compare,
    ir.InSet: _Writer.inset,
    ir.IsNone: _Writer.isnone,
    ir.IfElse: _Writer.ifelse,
    ir.Call: _Writer.call,
    ir.Filter: _Writer.filter,
    ir.Agg: _Writer.agg,
}


def describe_expr(e: ir.Expr) -> tuple[dict[str, str], list[Key]]:
    """An expression in Chinese and English words, and the (scope, name) of what it reads.

    >>> from engine.types import BOOL, INT
    >>> x = ir.Ref(INT, "x", "household")
    >>> e = ir.BoolOp(BOOL, "or", (ir.Compare(BOOL, ">=", x, ir.Const(INT, 3)), ir.IsNone(BOOL, x)))
    >>> describe_expr(e)[0]["en"]
    'x ≥ 3 or x is empty'
    """
    texts: dict[str, str] = {}
    names: list[Key] = []
    for lang in ("zh", "en"):
        w = _Writer(lang)
        texts[lang] = w.text(e)
        names = w.names
    return texts, names


# ------------------------------------------------------------------ rules


def _conditions(d: Traced) -> list[tuple[str, ir.Expr | None, str]]:
    """(what the condition is for, the expression, a value it gives) of one definition."""
    if isinstance(d, Rule):
        out: list[tuple[str, ir.Expr | None, str]] = []
        if d.applies is not None:
            out.append(("applies", d.applies, ""))
        return [*out, ("when", d.expr, "")]
    if isinstance(d, Finding):
        return [("when", d.expr, d.code)]
    if isinstance(d, Case):
        arm = d.arm
        return [("when" if arm.cond is not None else "otherwise", arm.cond, _const(arm.value))]
    if isinstance(d, Table):
        rows: list[tuple[str, ir.Expr | None, str]] = []
        if d.applies is not None:
            rows.append(("applies", d.applies, ""))
        for row in d.all_rows:
            cells = ", ".join(f"{k} = {describe_expr(v)[0]['en']}" for k, v in row.cells.items())
            if row.interval is not None and d.input is not None:
                rows.append((row.id, None, f"{describe_expr(d.input)[0]['en']} ∈ {row.interval} → {cells}"))
            else:
                rows.append((row.id, row.cond, cells))
        return rows
    return []


def _legend(rs: Ruleset, keys: list[Key]) -> list[dict[str, Any]]:
    out = []
    for scope, name in keys:
        d: Definition | None = rs.symbols.get((scope, name))
        out.append(
            {
                "name": name,
                "scope": scope,
                "kind": d.kind if d is not None else "",
                "title": dict(d.title) if d is not None else {},
            }
        )
    return out


def describe_rules(rs: Ruleset) -> list[dict[str, Any]]:
    """Every explained definition (rules, outcome cases, tables, findings), in file order:
    id, kind, program, title, legal basis, where it is written, and its conditions in words."""
    out = []
    for d in rs.rules():
        conditions = []
        keys: list[Key] = []
        for label, expr, gives in _conditions(d):
            if expr is None:
                text = {"zh": "", "en": ""}
            else:
                text, names = describe_expr(expr)
                keys += [k for k in names if k not in keys]
            conditions.append({"label": label, "text": text, "gives": gives})
        out.append(
            {
                "id": d.name,
                "kind": d.kind,
                "program": d.program,
                "scope": d.scope,
                "title": dict(d.title),
                "legal_basis": d.legal_basis,
                "report": d.report,
                "file": d.pos.file,
                "line": d.pos.line,
                "conditions": conditions,
                "names": _legend(rs, keys),
            }
        )
    return out


# ------------------------------------------------------------------ parameters


def describe_parameters(rs: Ruleset) -> list[dict[str, Any]]:
    """Every parameter with its values per region, each dated: from, until (the day before
    the next value starts, or ``None``), value or formula, and the reference it cites."""
    out = []
    for name in rs.parameter_order:
        p = rs.parameters[name]
        regions = []
        for region, versions in p.regions.items():
            rows = []
            for i, v in enumerate(versions):
                nxt = versions[i + 1].start if i + 1 < len(versions) else None
                rows.append(
                    {
                        "from": v.start.isoformat(),
                        "until": (nxt - dt.timedelta(days=1)).isoformat() if nxt is not None else None,
                        "value": None if v.formula is not None else _const(v.value),
                        "formula": v.formula_text or None,
                        "reference": v.reference,
                        "line": v.pos.line,
                    }
                )
            regions.append({"region": region, "values": rows})
        out.append(
            {
                "name": name,
                "title": dict(p.title),
                "unit": p.type.kind,
                "file": p.pos.file,
                "line": p.pos.line,
                "regions": regions,
            }
        )
    return out
