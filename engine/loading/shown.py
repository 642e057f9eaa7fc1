"""What an explanation shows beside each traced definition: the values its condition reads,
then the values its messages name."""

from __future__ import annotations

from engine import ir
from engine.plan import Case, Table

from .check import PLACEHOLDER
from .draft import Draft
from .state import Declared, ref_nodes

__all__ = ["set_shown"]


def set_shown(d: Declared) -> None:
    for sym in d.symbols.values():
        exprs: list[ir.Expr | None] = [sym.expr, sym.applies]
        if sym.kind is Case:
            owner = d.symbols.get((sym.scope, sym.owner))
            case = next((c for c in owner.outcome.cases if c.id == sym.name), None) if owner and owner.outcome else None
            exprs = [case.cond] if case else []
        if sym.kind is Table and sym.table is not None:
            exprs = [sym.table.input, *(r.cond for r in sym.table.rows)]
        sym.shown = _shown(d, sym, exprs)


def _shown(d: Declared, sym: Draft, exprs: list[ir.Expr | None]) -> tuple[tuple[str, str], ...]:
    shown: dict[tuple[str, str], None] = {}
    for e in exprs:
        for ref in ref_nodes(e):
            if ref.scope == "household" or (sym.scope == "member" and not ref.var):
                shown.setdefault((ref.scope, ref.name))
    for texts in sym.messages.values():
        for text in texts.values():
            for name in PLACEHOLDER.findall(text):
                scope = "member" if sym.scope == "member" and ("member", name) in d.symbols else "household"
                shown.setdefault((scope, name))
    return tuple(k for k in shown if not k[1].startswith("registry."))
