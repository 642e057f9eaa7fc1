"""Definitions of a ruleset analysed for code generation, each rendered as one expression.

For every definition (a ``Node``: scope, name, and ``applies`` for a definition's gate) the
``Builder`` knows, from ``engine.codegen.walk``, its dependencies in evaluation order, which
of them are *strict* (always evaluated when the definition is) and whether evaluating it may
fail (an absent value, a division, a table with no row). ``engine.codegen.program`` uses this
to decide what is a local variable and what stays lazy, exactly as lazy as the closure backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import ir
from engine.codegen.exprs import ExprCompiler, Namespace
from engine.codegen.walk import Node, Walk, raises_itself
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
    TableRow,
    applies_of,
)
from engine.ruleset import Ruleset

__all__ = ["LEAVES", "Builder", "Node"]

LEAVES = (InputField, ParameterRef, RegistryRef)  # values ``_decide`` is given
_ONE_EXPR = (Derived, Output, Finding, Rule)  # definitions that are one expression


class Builder:
    """Analysis of a ruleset's definitions and one Python expression per definition."""

    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs
        self.walk = Walk(rs)
        self.ns = Namespace()
        self._deps: dict[Node, list[tuple[Node, bool, bool]]] = {}
        self._fallible: dict[Node, bool] = {}
        self._ids: dict[Node, int] = {}
        self._needs: dict[Node, list[Node]] = {}
        self.main = False  # rendering the body of ``_decide`` itself
        self.memo: set[Node] = set()  # lazy values ``_decide`` keeps once computed
        self.leaf_locals: set[Node] = set()  # inputs and parameters ``_decide`` reads often
        self.member_memo: set[Node] = set()  # per-member values ``_decide`` asks for more than once
        self.eager: set[Node] = set()
        self.inline: set[Node] = set()  # member nodes computed as locals of the function being built
        self._walrus = 0

    # ------------------------------------------------------------ analysis

    def sym(self, n: Node) -> Definition:
        return self.rs.symbol(n[1], n[0])

    def deps(self, n: Node) -> list[tuple[Node, bool, bool]]:
        if n not in self._deps:
            self._deps[n] = self.walk.node(n)
        return self._deps[n]

    def fallible(self, n: Node) -> bool:
        if n not in self._fallible:
            self._fallible[n] = raises_itself(self.sym(n), n[2]) or any(self.fallible(d) for d, _, _ in self.deps(n))
        return self._fallible[n]

    def ident(self, n: Node) -> int:
        return self._ids.setdefault(n, len(self._ids))

    def needs(self, n: Node) -> list[Node]:
        """Eager household values that must be at hand to evaluate ``n``, in order: they are
        the arguments of a function that computes ``n``."""
        if n not in self._needs:
            out: dict[Node, None] = {}
            for d, _, _ in self.deps(n):
                if d[0] == "household" and d in self.eager:
                    out[d] = None
                elif not (d[2] == "" and isinstance(self.sym(d), LEAVES)):
                    out.update(dict.fromkeys(self.needs(d)))
            self._needs[n] = list(out)
        return self._needs[n]

    def call(self, n: Node, first: str = "") -> str:
        """A call of the function computing ``n``, passing what it needs."""
        prefix = "M" if n[0] == "member" else "L"
        args = ", ".join(
            [*([first] if first else []), "H, MEMBERS, P, R", *(f"v{self.ident(x)}" for x in self.needs(n))]
        )
        return f"{prefix}{self.ident(n)}({args})"

    def params(self, n: Node, first: str = "") -> str:
        return self.call(n, first).split("(", 1)[1][:-1]

    def closure(self, starts: list[Node]) -> list[Node]:
        """Every node reachable from ``starts``, ``starts`` included, in first-seen order."""
        seen: dict[Node, None] = {}
        stack = list(reversed(starts))
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen[n] = None
            stack += [d for d, _, _ in reversed(self.deps(n))]
        return list(seen)

    # ------------------------------------------------------------ rendering values

    def raw(self, n: Node, m: str) -> str:
        """The value of ``n`` as the source reads it (a table's row index, not its row id)."""
        sym = self.sym(n)
        if n[0] == "household":
            if isinstance(sym, LEAVES) and n[2] == "":
                if self.main and n in self.leaf_locals:
                    return f"v{self.ident(n)}"
                if isinstance(sym, InputField):
                    return "MEMBERS" if sym.type.kind == "members" else f"H[{n[1]!r}]"
                return f"{'P' if isinstance(sym, ParameterRef) else 'R'}[{n[1]!r}]"
            if n in self.eager:
                return f"v{self.ident(n)}"
            if self.main:  # computed at most once per household: kept in a local after the first call
                v = f"v{self.ident(n)}"
                self.memo.add(n)
                return f"({v} if {v} is not _U else ({v} := {self.call(n)}))"
            return self.call(n)
        if isinstance(sym, InputField) and n[2] == "":
            return f"{m}[{n[1]!r}]"
        if m == "m" and n in self.inline:
            return f"u{self.ident(n)}"
        if self.main and n in self.member_memo:  # asked for more than once per member: kept by member
            c = f"_c{self.ident(n)}"
            return f"({c}[_k] if (_k := id({m})) in {c} else {c}.setdefault(_k, {self.call(n, m)}))"
        return self.call(n, m)

    def val(self, n: Node, m: str) -> str:
        text = self.raw(n, m)
        sym = self.sym(n)
        if isinstance(sym, Table) and n[2] == "":
            ids = self.ns.obj(tuple(r.id for r in sym.all_rows))
            return f"_row_id({text}, {ids})"
        return text

    def _owner(self, n: Node, owner: Definition, m: str) -> tuple[str, str]:
        """How to read the owning table or outcome first, and then again (bound by ``:=``)."""
        text = self.raw((n[0], owner.name, ""), m)
        if text.isidentifier():
            return text, text
        self._walrus += 1
        return f"(_o{self._walrus} := {text})", f"_o{self._walrus}"

    @staticmethod
    def _chain(owner: tuple[str, str], arms: list[tuple[int, str]], last: str) -> str:
        """``a0 if owner == 0 else a1 if owner == 1 ... else last``, the owner read once."""
        first, bound = owner
        parts = [f"{text} if {first if i == 0 else bound} == {k} else" for i, (k, text) in enumerate(arms)]
        return f"({' '.join(parts)} {last})" if parts else f"({first}, {last})[1]"

    def statements(self, n: Node, m: str, target: str) -> list[str]:
        """Statements assigning ``n`` to ``target``: an aggregation as a loop, else one expression."""
        sym = self.sym(n)
        e = sym.expr if isinstance(sym, _ONE_EXPR) else None
        simple = n[2] == "" and applies_of(sym) is None
        if simple and isinstance(e, ir.Agg) and (e.fn != "count" or e.cond is not None):
            c = ExprCompiler(self.ns, lambda r, mv: self.val((r.scope, r.name, ""), mv))
            return c.loop(e, target, m)
        return [f"{target} = {self.definition(n, m)}"]

    def definition(self, n: Node, m: str) -> str:
        """One Python expression computing ``n`` (``m``: the member's Python name, or "")."""
        sym = self.sym(n)
        c = ExprCompiler(self.ns, lambda r, mv: self.val((r.scope, r.name, ""), mv))
        if n[2] == "applies":
            applies = applies_of(sym)
            assert applies is not None
            return c.expr(applies, m)
        return _DEFINITIONS[type(sym)](self, n, sym, c, m)

    def _leaf(self, n: Node, sym: Definition, c: ExprCompiler, m: str) -> str:
        return self.raw(n, m)

    def _one_expr(self, n: Node, sym: Derived | Output | Finding, c: ExprCompiler, m: str) -> str:
        return c.expr(sym.expr, m)

    def _rule(self, n: Node, sym: Rule, c: ExprCompiler, m: str) -> str:
        body = c.expr(sym.expr, m)
        if sym.applies is None:
            return body
        return f"({body} if {self.raw((n[0], sym.name, 'applies'), m)} else False)"

    def _outcome(self, n: Node, sym: Outcome, c: ExprCompiler, m: str) -> str:
        cases = sym.cases
        arms = " ".join(f"{i} if {c.cond(x.cond, m)} else" for i, x in enumerate(cases) if x.cond is not None)
        return f"({arms} {len(cases) - 1})"

    def _case(self, n: Node, sym: Case, c: ExprCompiler, m: str) -> str:
        return f"({self.raw((n[0], sym.outcome.name, ''), m)} == {sym.index})"

    def _case_value(self, n: Node, sym: CaseValue, c: ExprCompiler, m: str) -> str:
        values = ", ".join(self.ns.const(x.value) for x in sym.outcome.cases)
        return f"({values},)[{self.raw((n[0], sym.outcome.name, ''), m)}]"

    def _case_set(self, n: Node, sym: CaseSet, c: ExprCompiler, m: str) -> str:
        exprs = [c.expr(x.sets[sym.column], m) for x in sym.outcome.cases]
        return self._chain(self._owner(n, sym.outcome, m), list(enumerate(exprs[:-1])), exprs[-1])

    def _table_output(self, n: Node, sym: TableOutput, c: ExprCompiler, m: str) -> str:
        t = sym.table
        owner = self._owner(n, t, m)
        cells = [(i, c.expr(r.cells[sym.column], m)) for i, r in enumerate(t.all_rows) if sym.column in r.cells]
        return self._chain(owner, cells, f"_no_cell({owner[1]}, {t.name!r}, {sym.column!r})")

    def _table_value(self, n: Node, sym: Table, c: ExprCompiler, m: str) -> str:
        body = self._table(sym, c, m)
        if sym.applies is None:
            return body
        return f"({body} if {self.raw((n[0], sym.name, 'applies'), m)} else None)"

    def _table(self, t: Table, c: ExprCompiler, m: str) -> str:
        other = str(len(t.rows)) if t.otherwise is not None else "None"
        if t.hit_policy == "unique":
            assert t.input is not None
            intervals = self.ns.obj(tuple(r.interval for r in t.rows))
            return f"_unique({c.guarded(t.input, m)}, {intervals}, {other}, {t.name!r})"
        rows = [(i, r) for i, r in enumerate(t.rows) if r.cond is not None]
        if t.hit_policy == "first":
            arms = " ".join(f"{i} if {c.cond(r.cond, m)} else" for i, r in rows if r.cond is not None)
            return f"({arms} {other})"
        col = t.max_by or ""

        def cell(i: int, r: TableRow) -> str:
            return c.expr(r.cells[col], m) if col in r.cells else f"_no_cell({i}, '', '')"

        pairs = "".join(f"(({i}, {cell(i, r)}) if {c.cond(r.cond, m)} else None), " for i, r in rows if r.cond)
        return f"_best(({pairs}), {other})"


# one Python expression per kind of definition
_DEFINITIONS: dict[type[Definition], Callable[[Builder, Node, Any, ExprCompiler, str], str]] = {
    InputField: Builder._leaf,
    ParameterRef: Builder._leaf,
    RegistryRef: Builder._leaf,
    Derived: Builder._one_expr,
    Output: Builder._one_expr,
    Finding: Builder._one_expr,
    Rule: Builder._rule,
    Outcome: Builder._outcome,
    Case: Builder._case,
    CaseValue: Builder._case_value,
    CaseSet: Builder._case_set,
    TableOutput: Builder._table_output,
    Table: Builder._table_value,
}
