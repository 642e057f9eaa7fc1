"""A ruleset compiled once into one generated Python function that decides a household.

``compile_ruleset`` writes the source of ``_decide(H, MEMBERS, P, R)`` (validated household
values, its members, parameters in force, registry key sets) from the analysed definitions
of ``engine.codegen.defs``:

- a household value that a decision always needs, or that can never fail, is a local
  variable, computed once, in the order the closure backend meets it;
- a value that may fail (an absent input, a division, a table with no row) and is needed
  only on some paths is a nested function ``L<n>()``, called on those paths;
- a per-member definition is a nested function ``M<n>(m)``, its own per-member
  dependencies inlined as locals;
- ``_explain()``, returned and called only when an explanation is asked for, gives every
  traced definition's value, not-applicable flag and shown values, for the household and
  for each explained member.

It returns ``(fields, findings, _explain)``. Identifiers in the source are generated;
names from rule files appear only as ``repr()`` literals.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.codegen.defs import LEAVES, Builder, Node
from engine.plan import Table, Traced, applies_of
from engine.ruleset import Ruleset

__all__ = ["Program", "TooLargeToCompile", "compile_ruleset"]

_H, _M = "household", "member"
Decide = Callable[
    [dict[str, Any], list[dict[str, Any]], dict[str, Any], dict[str, Any]],
    tuple[dict[str, Any], list[str], tuple[Any, ...]],
]


@dataclass
class Program:
    """The generated function, its source, and what its results line up with."""

    source: str
    decide: Decide
    explain: Callable[..., Any]
    fields: list[str]
    household_trace: list[Traced]
    member_trace: list[Traced]
    namespace: dict[str, Any] = field(repr=False, default_factory=dict)


class _Emit:
    def __init__(self, rs: Ruleset, fields: list[str]) -> None:
        self.rs = rs
        self.b = Builder(rs)
        self.fields = fields
        self.lines: list[str] = []
        self.hh_trace = rs.plan.traced(_H)
        self.mm_trace = rs.plan.traced(_M)

    def leaf(self, n: Node) -> bool:
        return n[2] == "" and isinstance(self.b.sym(n), LEAVES)

    def assign(self, indent: str, target: str, n: Node, m: str) -> None:
        body = self.b.statements(n, m, target)
        if not self.b.fallible(n):
            self.lines += [indent + line for line in body]
            return
        self.lines += [
            f"{indent}try:",
            *(f"{indent}    {line}" for line in body),
            f"{indent}except _EvaluateError as _e:",  # name the innermost definition, as before
            f"{indent}    _tag(_e, {n[1]!r})",
            f"{indent}    raise",
        ]

    # ------------------------------------------------------------ plan

    def plan(self) -> tuple[list[Node], list[Node], list[Node], list[Node]]:
        b = self.b
        roots = [(_H, f, "") for f in self.fields]
        roots += [(_H, s.name, "") for s in self.rs.findings()]
        roots += [(_H, s.name, "") for s in self.hh_trace]
        roots.append((_H, self.rs.explain_members, ""))
        checked = [(_M, s.name, "") for s in self.mm_trace if b.fallible((_M, s.name, ""))]
        reach = b.closure(roots + checked)
        strict: set[Node] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n not in strict:
                strict.add(n)
                stack += [d for d, st, _ in b.deps(n) if st and d[0] == _H]
        eager = {n for n in reach if n[0] == _H and not self.leaf(n) and (n in strict or not b.fallible(n))}
        shown = [(sc, name, "") for s in self.hh_trace + self.mm_trace for sc, name in s.shown]
        shown = [n for n in shown if (n[0], n[1]) in self.rs.symbols]
        every = b.closure(roots + [(_M, s.name, "") for s in self.mm_trace] + shown)
        while True:  # a value that may fail is a plain statement only where the closure backend
            # would certainly evaluate it: not read on some path only, nor by a nested function
            late = {
                d
                for p in every
                for d, st, _ in b.deps(p)
                if d in eager and b.fallible(d) and (not st or p not in eager)
            }
            if not late:
                break
            eager -= late
        b.eager = eager
        lazy = [n for n in every if n[0] == _H and not self.leaf(n) and n not in b.eager]
        members = [n for n in every if n[0] == _M and not self.leaf(n)]
        order: list[Node] = []
        seen: set[Node] = set()

        def visit(n: Node) -> None:
            if n in seen:
                return
            seen.add(n)
            for d in b.needs(n):
                visit(d)
            if n in b.eager or n in roots:  # a root that stays lazy is forced in its turn
                order.append(n)

        for n in roots + checked + [x for x in every if x in b.eager]:
            visit(n)
        uses: dict[Node, int] = {}
        for n in order:
            for d in dict.fromkeys(d for d, _, _ in b.deps(n)):
                if d[0] == _H and self.leaf(d) and d[1] != "members" and not d[1].startswith("registry."):
                    uses[d] = uses.get(d, 0) + 1
        b.leaf_locals = {d for d, k in uses.items() if k > 1}  # read once into a local, not per use
        calls = [d for n in order for d, _, _ in b.deps(n) if d[0] == _M and not self.leaf(d)]
        b.member_memo = {d for d in calls if calls.count(d) > 1}
        return order, lazy, members, checked

    def member_function(self, d: Node) -> None:
        b = self.b
        inline = {d}
        stack = [d]
        while stack:  # inline what ``d`` always needs, and what can never fail
            for x, strict, own in b.deps(stack.pop()):
                if own and x[0] == _M and not self.leaf(x) and x not in inline and (strict or not b.fallible(x)):
                    inline.add(x)
                    stack.append(x)
        order: list[Node] = []

        def visit(n: Node) -> None:
            if n in order:
                return
            for x, _, own in b.deps(n):
                if own and x in inline:
                    visit(x)
            order.append(n)

        visit(d)
        b.inline = inline
        self.lines.append(f"def M{b.ident(d)}({b.params(d, 'm')}):")
        for n in order:
            self.assign("    ", f"u{b.ident(n)}", n, "m")
        self.lines.append(f"    return u{b.ident(d)}")
        b.inline = set()

    def lazy_function(self, n: Node) -> None:
        self.lines.append(f"def L{self.b.ident(n)}({self.b.params(n)}):")
        self.assign("    ", "_v", n, "")
        self.lines.append("    return _v")

    # ------------------------------------------------------------ explanation

    def _shown(self, scope: str, name: str, m: str) -> str:
        b = self.b
        n = (scope, name, "")
        if (scope, name) not in self.rs.symbols or (scope == _M and not m):
            return "None"  # the closure backend could not show a member's value at household level
        if scope == _M and self.leaf(n):
            return f"{m}.get({name!r})"
        if self.leaf(n) or n in b.eager:
            return b.val(n, m)
        text = f"_try({'M' if scope == _M else 'L'}{b.ident(n)}, {b.params(n, m if scope == _M else '')})"
        sym = b.sym(n)
        if isinstance(sym, Table):
            return f"_row_id({text}, {b.ns.obj(tuple(r.id for r in sym.all_rows))})"
        return text

    def _traced(self, s: Traced, m: str) -> str:
        b = self.b
        scope = _M if m else _H
        value = b.raw((scope, s.name, ""), m)
        na = f"(not {b.raw((scope, s.name, 'applies'), m)})" if applies_of(s) is not None else "False"
        shown = "".join(f"{self._shown(sc, name, m)}, " for sc, name in s.shown)
        return f"({value}, {na}, ({shown}))"

    def explain(self, eager: list[Node]) -> list[Node]:
        """Write ``_explain``; return the values ``_decide`` must keep for it."""
        hh = "".join(f"{self._traced(s, '')}, " for s in self.hh_trace)
        mm = "".join(f"{self._traced(s, '_x')}, " for s in self.mm_trace)
        members = self.b.raw((_H, self.rs.explain_members, ""), "")
        body = f"    return (({hh}), [(_x, ({mm})) for _x in {members}])"
        used = set(re.findall(r"\bv(\d+)\b", body))
        kept = [n for n in eager if str(self.b.ident(n)) in used]
        self.lines += [f"def _explain(H, MEMBERS, P, R, {''.join(f'v{self.b.ident(n)}, ' for n in kept)}):", body]
        return kept

    # ------------------------------------------------------------ the function

    def source(self) -> str:
        b = self.b
        order, lazy, members, checked = self.plan()
        for n in lazy:
            self.lazy_function(n)
        for n in members:
            self.member_function(n)
        kept_nodes = self.explain([n for n in order if n in b.eager])
        self.lines.append("def _decide(H, MEMBERS, P, R):")
        start = len(self.lines)
        for n in (x for x in b.closure(order) if x in b.leaf_locals):  # cannot fail: read up front
            self.lines.append(f"    v{b.ident(n)} = {b.raw(n, '')}")
        b.main = True
        for n in order:
            if n in b.eager:
                self.assign("    ", f"v{b.ident(n)}", n, "")
            else:  # as the closure backend, evaluate this root in its turn
                self.lines.append(f"    {b.raw(n, '')}")
        if checked:  # per-member rules that may fail are evaluated now, as before, not when explained
            self.lines.append(f"    for _x in {b.raw((_H, self.rs.explain_members, ''), '')}:")
            self.lines += [f"        {b.call(n, '_x')}" for n in checked]
        self.lines.append("    _F = []")
        for s in self.rs.findings():
            self.lines.append(f"    if {b.val((_H, s.name, ''), '')}:")
            self.lines.append(f"        _F.append({s.code!r})")
        out = []
        for f in self.fields:
            t = self.rs.symbol(f).type
            text = b.val((_H, f, ""), "")
            out.append(f"{f!r}: " + (f"_money({text})" if t.kind == "money" else text))
        b.main = False
        self.lines[start:start] = [f"    v{b.ident(n)} = _U" for n in lazy if n in b.memo] + [
            f"    _c{b.ident(n)} = {{}}" for n in members if n in b.member_memo
        ]
        kept = "".join(f"v{b.ident(n)}, " for n in kept_nodes)
        self.lines.append(f"    return ({{{', '.join(out)}}}, _F, (H, MEMBERS, P, R, {kept}))")
        return "\n".join(self.lines) + "\n"


_COMPILED: dict[int, tuple[weakref.ref[Ruleset], tuple[str, ...], Program]] = {}
_LOCK = threading.Lock()


def compile_ruleset(rs: Ruleset, fields: list[str]) -> Program:
    """The household function of ``rs`` deciding ``fields``: generated and compiled once per
    ruleset object, then shared by every evaluator of it (the service makes one per set of
    registry versions)."""
    key = id(rs)
    with _LOCK:
        hit = _COMPILED.get(key)
    if hit is not None and hit[0]() is rs and hit[1] == tuple(fields):
        return hit[2]
    program = _compile(rs, fields)
    with _LOCK:
        _COMPILED[key] = (weakref.ref(rs, lambda _: _COMPILED.pop(key, None)), tuple(fields), program)
    return program


class TooLargeToCompile(RecursionError):
    """Python cannot compile the generated source (nested too deep, too many parentheses or
    blocks, out of memory): the evaluator then decides with the closure backend, as it does
    on a ``RecursionError``, which this is a kind of so that every caller falls back alike."""


def _compile(rs: Ruleset, fields: list[str]) -> Program:
    try:
        emit = _Emit(rs, fields)
        source = emit.source()
        namespace = emit.b.ns.values
        code = compile(source, "<jiuzhu generated ruleset>", "exec")
    except (RecursionError, SyntaxError, MemoryError) as exc:
        # the loader's expression limits keep rule files far from this; a crafted plan is not
        raise TooLargeToCompile(f"the generated ruleset cannot be compiled: {type(exc).__name__}: {exc}") from exc
    exec(code, namespace)
    return Program(source, namespace["_decide"], namespace["_explain"], fields, emit.hh_trace, emit.mm_trace, namespace)
