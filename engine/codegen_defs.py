"""Definitions of a ruleset analysed for code generation, each rendered as one expression.

For every definition (a ``Node``: scope, name, and ``applies`` for a definition's gate) the
``Builder`` knows its dependencies in evaluation order, which of them are *strict* (always
evaluated when the definition is) and whether evaluating it may fail (an absent value, a
division, a table with no row). ``engine.codegen_program`` uses this to decide what is a
local variable and what stays lazy, exactly as lazy as the closure backend.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine import ir
from engine.codegen import ExprCompiler, Namespace, narrowed, table_rows
from engine.ruleset import Ruleset, Symbol, TableRow

__all__ = ["Builder", "Node"]

Node = tuple[str, str, str]  # (scope, name, part): part "applies" is a definition's gate
_LEAVES = ("input", "parameter", "registry")


class _Walk:
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

    def node(self, n: Node) -> list[tuple[Node, bool, bool]]:
        scope, name, part = n
        sym = self.rs.symbols[(scope, name)]
        if part == "applies":
            return list(self.expr(sym.applies, True))
        kind = sym.kind
        own = scope == "member"
        gate: list[tuple[Node, bool, bool]] = []
        body_strict = True
        if kind in ("rule", "table") and sym.applies is not None:
            gate, body_strict = [((scope, name, "applies"), True, own)], False
        if kind in _LEAVES:
            return []
        if kind in ("derived", "output", "finding", "rule"):
            return gate + list(self.expr(sym.expr, body_strict))
        owner: list[tuple[Node, bool, bool]] = [((scope, sym.owner, ""), True, own)] if sym.owner else []
        if kind == "outcome_index":
            assert sym.outcome is not None
            conds = [c.cond for c in sym.outcome.cases if c.cond is not None]
            return [d for i, c in enumerate(conds) for d in self.expr(c, i == 0)]
        if kind in ("case", "outcome"):
            return owner
        if kind == "set":
            outcome = self.rs.symbols[(scope, sym.owner)].outcome
            assert outcome is not None
            return owner + [d for c in outcome.cases for d in self.expr(c.sets[sym.column], False)]
        if kind == "table_output":
            table = self.rs.symbols[(scope, sym.owner)].table
            assert table is not None
            cells = [r.cells[sym.column] for r in table_rows(table) if sym.column in r.cells]
            return owner + [d for c in cells for d in self.expr(c, False)]
        assert kind == "table"
        assert sym.table is not None
        t = sym.table
        out = list(gate)
        if t.hit_policy == "unique":
            out += self.expr(t.input, body_strict)
        else:
            conds = [r.cond for r in t.rows if r.cond is not None]
            for i, c in enumerate(conds):
                out += self.expr(c, body_strict and (i == 0 or t.hit_policy == "max"))
            if t.hit_policy == "max":
                out += [d for r in t.rows for x in r.cells.values() for d in self.expr(x, False)]
        return out


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


class Builder:
    """Analysis of a ruleset's definitions and one Python expression per definition."""

    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs
        self.walk = _Walk(rs)
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

    def sym(self, n: Node) -> Symbol:
        return self.rs.symbols[(n[0], n[1])]

    def deps(self, n: Node) -> list[tuple[Node, bool, bool]]:
        if n not in self._deps:
            self._deps[n] = self.walk.node(n)
        return self._deps[n]

    def fallible(self, n: Node) -> bool:
        if n not in self._fallible:
            self._fallible[n] = self._raises_itself(n) or any(self.fallible(d) for d, _, _ in self.deps(n))
        return self._fallible[n]

    def _raises_itself(self, n: Node) -> bool:
        sym = self.sym(n)
        if n[2] == "applies":
            return _raises(sym.applies)
        if sym.kind in ("derived", "output", "finding", "rule"):
            return _raises(sym.expr)
        if sym.kind == "outcome_index":
            assert sym.outcome is not None
            return any(_raises(c.cond) for c in sym.outcome.cases)
        if sym.kind == "set":
            outcome = self.sym((n[0], sym.owner, "")).outcome
            assert outcome is not None
            return any(_raises(c.sets[sym.column]) for c in outcome.cases)
        if sym.kind == "table":
            t = sym.table
            assert t is not None
            if t.hit_policy == "unique":
                return t.otherwise is None or t.input is None or t.input.type.nullable or _raises(t.input)
            cells = [x for r in t.rows for x in r.cells.values()] if t.hit_policy == "max" else []
            return any(_raises(x) for x in [r.cond for r in t.rows] + cells)
        if sym.kind == "table_output":
            owner = self.sym((n[0], sym.owner, ""))
            t = owner.table
            assert t is not None
            rows = table_rows(t)
            can_miss = owner.applies is not None or (t.hit_policy != "unique" and t.otherwise is None)
            return can_miss or any(sym.column not in r.cells or _raises(r.cells[sym.column]) for r in rows)
        return False

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
                elif not (d[2] == "" and self.sym(d).kind in _LEAVES):
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
            if sym.kind in _LEAVES and n[2] == "":
                if self.main and n in self.leaf_locals:
                    return f"v{self.ident(n)}"
                if sym.kind == "input":
                    return "MEMBERS" if sym.type is not None and sym.type.kind == "members" else f"H[{n[1]!r}]"
                return f"{'P' if sym.kind == 'parameter' else 'R'}[{n[1]!r}]"
            if n in self.eager:
                return f"v{self.ident(n)}"
            if self.main:  # computed at most once per household: kept in a local after the first call
                v = f"v{self.ident(n)}"
                self.memo.add(n)
                return f"({v} if {v} is not _U else ({v} := {self.call(n)}))"
            return self.call(n)
        if sym.kind == "input" and n[2] == "":
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
        if sym.kind == "table" and n[2] == "":
            assert sym.table is not None
            ids = self.ns.obj(tuple(r.id for r in table_rows(sym.table)))
            return f"_row_id({text}, {ids})"
        return text

    def _owner(self, n: Node, m: str) -> tuple[str, str]:
        """How to read the owning table or outcome first, and then again (bound by ``:=``)."""
        text = self.raw((n[0], self.sym(n).owner, ""), m)
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
        e = sym.expr
        simple = n[2] == "" and sym.kind in ("derived", "output", "finding", "rule") and sym.applies is None
        if simple and isinstance(e, ir.Agg) and (e.fn != "count" or e.cond is not None):
            c = ExprCompiler(self.ns, lambda r, mv: self.val((r.scope, r.name, ""), mv))
            return c.loop(e, target, m)
        return [f"{target} = {self.definition(n, m)}"]

    def definition(self, n: Node, m: str) -> str:
        """One Python expression computing ``n`` (``m``: the member's Python name, or "")."""
        sym = self.sym(n)
        c = ExprCompiler(self.ns, lambda r, mv: self.val((r.scope, r.name, ""), mv))
        scope = n[0]
        if n[2] == "applies":
            assert sym.applies is not None
            return c.expr(sym.applies, m)
        kind = sym.kind
        if kind in _LEAVES:
            return self.raw(n, m)
        gate = self.raw((scope, sym.name, "applies"), m) if sym.applies is not None else None
        if kind in ("derived", "output", "finding", "rule"):
            assert sym.expr is not None
            body = c.expr(sym.expr, m)
            return f"({body} if {gate} else False)" if gate and kind == "rule" else body
        if kind == "outcome_index":
            assert sym.outcome is not None
            cases = sym.outcome.cases
            arms = " ".join(f"{i} if {c.cond(x.cond, m)} else" for i, x in enumerate(cases) if x.cond is not None)
            return f"({arms} {len(cases) - 1})"
        if kind == "case":
            outcome = self.sym((scope, sym.owner, "")).outcome
            assert outcome is not None
            index = next(i for i, x in enumerate(outcome.cases) if x.id == sym.name)
            return f"({self.raw((scope, sym.owner, ''), m)} == {index})"
        if kind == "outcome":
            outcome = self.sym((scope, sym.owner, "")).outcome
            assert outcome is not None
            values = ", ".join(self.ns.const(x.value) for x in outcome.cases)
            return f"({values},)[{self.raw((scope, sym.owner, ''), m)}]"
        if kind == "set":
            outcome = self.sym((scope, sym.owner, "")).outcome
            assert outcome is not None
            exprs = [c.expr(x.sets[sym.column], m) for x in outcome.cases]
            return self._chain(self._owner(n, m), list(enumerate(exprs[:-1])), exprs[-1])
        if kind == "table_output":
            t = self.sym((scope, sym.owner, "")).table
            assert t is not None
            owner = self._owner(n, m)
            cells = [(i, c.expr(r.cells[sym.column], m)) for i, r in enumerate(table_rows(t)) if sym.column in r.cells]
            return self._chain(owner, cells, f"_no_cell({owner[1]}, {sym.owner!r}, {sym.column!r})")
        assert kind == "table"
        assert sym.table is not None
        body = self._table(sym, c, m)
        return f"({body} if {gate} else None)" if gate else body

    def _table(self, sym: Symbol, c: ExprCompiler, m: str) -> str:
        t = sym.table
        assert t is not None
        other = str(len(t.rows)) if t.otherwise is not None else "None"
        if t.hit_policy == "unique":
            assert t.input is not None
            intervals = self.ns.obj(tuple(r.interval for r in t.rows))
            return f"_unique({c.guarded(t.input, m)}, {intervals}, {other}, {sym.name!r})"
        rows = [(i, r) for i, r in enumerate(t.rows) if r.cond is not None]
        if t.hit_policy == "first":
            arms = " ".join(f"{i} if {c.cond(r.cond, m)} else" for i, r in rows if r.cond is not None)
            return f"({arms} {other})"
        col = t.max_by or ""

        def cell(i: int, r: TableRow) -> str:
            return c.expr(r.cells[col], m) if col in r.cells else f"_no_cell({i}, '', '')"

        pairs = "".join(f"(({i}, {cell(i, r)}) if {c.cond(r.cond, m)} else None), " for i, r in rows if r.cond)
        return f"_best(({pairs}), {other})"
