"""What each definition of a ruleset depends on, and whether evaluating it may fail.

For every definition (a ``Node``: scope, name, and ``applies`` for a definition's gate) the
walk lists its dependencies in evaluation order, each marked *strict* (always evaluated when
the definition is) or not; ``raises_itself`` says whether evaluating the definition itself
may fail (an absent value, a division, a table with no row). ``engine.codegen.defs`` uses
both to decide what is a local variable and what stays lazy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from engine import ir
from engine.codegen.exprs import narrowed
from engine.plan import (
    Case,
    CaseSet,
    CaseValue,
    Definition,
    Derived,
    Finding,
    InputField,
    Outcome,
    Output,
    ParameterRef,
    RegistryRef,
    Rule,
    Table,
    TableOutput,
    applies_of,
)
from engine.ruleset import Ruleset

__all__ = ["Dep", "Node", "Walk", "raises_itself"]

Node = tuple[str, str, str]  # (scope, name, part): part "applies" is a definition's gate
Dep = tuple[Node, bool, bool]  # (node, strict, own member)


class Walk:
    """Dependencies of definitions: (node, strict, own member) in evaluation order."""

    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs

    def expr(self, e: ir.Expr | None, strict: bool, comp: bool = False) -> Iterator[tuple[Node, bool, bool]]:
        if e is None:
            return
        if isinstance(e, ir.Ref):
            yield (e.scope, e.name, ""), strict, e.scope == "member" and not comp
        elif isinstance(e, ir.BoolOp):
            for i, x in enumerate(e.operands):
                yield from self.expr(x, strict and i == 0, comp)
        elif isinstance(e, ir.IfElse):
            yield from self.expr(e.cond, strict, comp)
            yield from self.expr(e.then, False, comp)
            yield from self.expr(e.other, False, comp)
        elif isinstance(e, ir.Filter | ir.Agg):
            yield from self.expr(e.source, strict, comp)
            yield from self.expr(e.cond, False, True)
            yield from self.expr(getattr(e, "elt", None), False, True)
        else:
            for part in (getattr(e, a, None) for a in ("operand", "left", "right", "item")):
                yield from self.expr(part, strict, comp)
            for arg in getattr(e, "args", ()):
                yield from self.expr(arg, strict, comp)

    def node(self, n: Node) -> list[Dep]:
        scope, name, part = n
        sym = self.rs.symbol(name, scope)
        if part == "applies":
            return list(self.expr(applies_of(sym), True))
        return _DEPS[type(sym)](self, sym)

    def _gate(self, sym: Rule | Table) -> tuple[list[Dep], bool]:
        """The gate a rule or table is evaluated behind, and whether its body is then strict."""
        if sym.applies is None:
            return [], True
        return [((sym.scope, sym.name, "applies"), True, sym.scope == "member")], False

    def _owner(self, sym: Definition, owner: Definition) -> list[Dep]:
        return [((sym.scope, owner.name, ""), True, sym.scope == "member")]

    def leaf(self, sym: Definition) -> list[Dep]:
        return []

    def one_expr(self, sym: Derived | Output | Finding) -> list[Dep]:
        return list(self.expr(sym.expr, True))

    def rule(self, sym: Rule) -> list[Dep]:
        gate, strict = self._gate(sym)
        return gate + list(self.expr(sym.expr, strict))

    def outcome(self, sym: Outcome) -> list[Dep]:
        conds = [c.cond for c in sym.cases if c.cond is not None]
        return [d for i, c in enumerate(conds) for d in self.expr(c, i == 0)]

    def case(self, sym: Case | CaseValue) -> list[Dep]:
        return self._owner(sym, sym.outcome)

    def case_set(self, sym: CaseSet) -> list[Dep]:
        exprs = [c.sets[sym.column] for c in sym.outcome.cases]
        return self._owner(sym, sym.outcome) + [d for e in exprs for d in self.expr(e, False)]

    def table_output(self, sym: TableOutput) -> list[Dep]:
        cells = [r.cells[sym.column] for r in sym.table.all_rows if sym.column in r.cells]
        return self._owner(sym, sym.table) + [d for c in cells for d in self.expr(c, False)]

    def table(self, t: Table) -> list[Dep]:
        out, body_strict = self._gate(t)
        if t.hit_policy == "unique":
            out += self.expr(t.input, body_strict)
        else:
            conds = [r.cond for r in t.rows if r.cond is not None]
            for i, c in enumerate(conds):
                out += self.expr(c, body_strict and (i == 0 or t.hit_policy == "max"))
            if t.hit_policy == "max":
                out += [d for r in t.rows for x in r.cells.values() for d in self.expr(x, False)]
        return out


# what each kind of definition depends on
_DEPS: dict[type[Definition], Callable[[Walk, Any], list[Dep]]] = {
    InputField: Walk.leaf,
    ParameterRef: Walk.leaf,
    RegistryRef: Walk.leaf,
    Derived: Walk.one_expr,
    Output: Walk.one_expr,
    Finding: Walk.one_expr,
    Rule: Walk.rule,
    Outcome: Walk.outcome,
    Case: Walk.case,
    CaseValue: Walk.case,
    CaseSet: Walk.case_set,
    TableOutput: Walk.table_output,
    Table: Walk.table,
}


def _raises(e: ir.Expr | None, safe: frozenset[ir.Ref] = frozenset()) -> bool:
    """Whether evaluating ``e`` itself may raise (not counting what its names may raise)."""
    if e is None:
        return False

    def absent(x: ir.Expr) -> bool:
        return x.type.nullable and x not in safe

    if isinstance(e, ir.BinOp) and (e.op == "/" or absent(e.left) or absent(e.right)):
        return True
    if isinstance(e, ir.Compare) and e.op not in ("==", "!=") and (absent(e.left) or absent(e.right)):
        return True
    if isinstance(e, ir.Call) and any(absent(a) for a in e.args):
        return True
    if isinstance(e, ir.BoolOp):
        for x in e.operands:
            if _raises(x, safe):
                return True
            if (known := narrowed(x, e.op)) is not None:
                safe = safe | {known}
        return False
    if isinstance(e, ir.IfElse):
        then_known, other_known = narrowed(e.cond, "and"), narrowed(e.cond, "or")
        return (
            _raises(e.cond, safe)
            or _raises(e.then, safe | ({then_known} if then_known else set()))
            or _raises(e.other, safe | ({other_known} if other_known else set()))
        )
    if isinstance(e, ir.Filter | ir.Agg):
        elt = getattr(e, "elt", None)
        if isinstance(e, ir.Agg) and elt is not None and e.fn != "count" and elt.type.nullable:
            return True
        return _raises(e.source, safe) or _raises(e.cond) or _raises(elt)
    children = [getattr(e, a, None) for a in ("operand", "left", "right", "item")] + list(getattr(e, "args", ()))
    return any(_raises(c, safe) for c in children if isinstance(c, ir.Expr))


def _never(sym: Definition) -> bool:
    return False


def _table_raises(t: Table) -> bool:
    if t.hit_policy == "unique":
        return t.otherwise is None or t.input is None or t.input.type.nullable or _raises(t.input)
    cells = [x for r in t.rows for x in r.cells.values()] if t.hit_policy == "max" else []
    return any(_raises(x) for x in [r.cond for r in t.rows] + cells)


def _column_raises(sym: TableOutput) -> bool:
    t = sym.table
    can_miss = t.applies is not None or (t.hit_policy != "unique" and t.otherwise is None)
    return can_miss or any(sym.column not in r.cells or _raises(r.cells[sym.column]) for r in t.all_rows)


# whether evaluating a definition itself may raise (not counting what it reads)
_RAISES: dict[type[Definition], Callable[[Any], bool]] = {
    Derived: lambda d: _raises(d.expr),
    Output: lambda d: _raises(d.expr),
    Finding: lambda d: _raises(d.expr),
    Rule: lambda d: _raises(d.expr),
    Outcome: lambda d: any(_raises(c.cond) for c in d.cases),
    CaseSet: lambda d: any(_raises(c.sets[d.column]) for c in d.outcome.cases),
    Table: _table_raises,
    TableOutput: _column_raises,
}


def raises_itself(sym: Definition, part: str) -> bool:
    """Whether evaluating ``sym`` (or its gate, for part "applies") may itself raise."""
    if part == "applies":
        return _raises(applies_of(sym))
    return _RAISES.get(type(sym), _never)(sym)
