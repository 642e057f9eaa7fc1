"""The last phase: every checked draft frozen, once, into its ``engine.plan`` class; each
after the definitions it reads, so a table column or a case holds its table or outcome."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import TypedDict

from engine import ir
from engine.plan import (
    BUILTIN_FIELDS,
    Case,
    CaseSet,
    CaseValue,
    DecisionField,
    Definition,
    Derived,
    Finding,
    InputField,
    Key,
    Outcome,
    Output,
    ParameterRef,
    Plan,
    RegistryRef,
    Rule,
    Table,
    TableOutput,
    Text,
)
from engine.source import Pos
from engine.types import Type

from .draft import Draft
from .state import Declared, ref_nodes

__all__ = ["freeze"]

_NULL = Type("null", True)  # a field every case sets to None


def freeze(d: Declared, decision: list[str]) -> Plan:
    frozen: dict[Key, Definition] = {}
    order: list[Definition] = []
    visiting: set[Key] = set()

    def visit(key: Key) -> Definition:
        done = frozen.get(key)
        if done is not None:
            return done
        visiting.add(key)
        draft = d.symbols[key]
        deps = _reads(d, draft)
        for dep in deps:
            if dep not in frozen and dep not in visiting:
                visit(dep)
        defn = _FREEZE[draft.kind](draft, deps, frozen)
        frozen[key] = defn
        order.append(defn)
        return defn

    for key in d.symbols:
        visit(key)
    fields = tuple(
        DecisionField(f, frozen[("household", f)].type, frozen[("household", f)])
        for f in decision
        if f not in BUILTIN_FIELDS
    )
    return Plan(MappingProxyType({k: frozen[k] for k in d.symbols}), tuple(order), fields)


def _reads(d: Declared, draft: Draft) -> tuple[Key, ...]:
    """The definitions a draft reads: its owner first, then every name its expressions use."""
    exprs: list[ir.Expr | None] = [draft.expr, draft.applies]
    if draft.table is not None:
        t = draft.table
        rows = [*t.rows, *([t.otherwise] if t.otherwise else [])]
        exprs += [t.input, *(r.cond for r in rows), *(x for r in rows for x in r.cells.values())]
    if draft.outcome is not None:
        exprs += [c.cond for c in draft.outcome.cases] + [x for c in draft.outcome.cases for x in c.sets.values()]
    if draft.kind is ParameterRef:
        exprs += [v.formula for vs in d.parameters[draft.name].regions.values() for v in vs]
    keys = [(draft.scope, draft.owner)] if draft.owner else []
    keys += [(r.scope, r.name) for e in exprs for r in ref_nodes(e)]
    own = (draft.scope, draft.name)
    return tuple(k for k in dict.fromkeys(keys) if k in d.symbols and k != own)


Freeze = Callable[[Draft, tuple[Key, ...], dict[Key, Definition]], Definition]


class _Common(TypedDict):
    name: str
    scope: str
    type: Type
    title: Text
    program: str
    legal_basis: str
    pos: Pos
    deps: tuple[Key, ...]


class _TracedKw(TypedDict):
    report: str
    messages: dict[str, Text]
    shown: tuple[Key, ...]


def _common(s: Draft, deps: tuple[Key, ...]) -> _Common:
    return _Common(
        name=s.name,
        scope=s.scope,
        type=s.type or _NULL,
        title=s.title,
        program=s.program,
        legal_basis=s.legal_basis,
        pos=s.pos,
        deps=deps,
    )


def _traced(s: Draft) -> _TracedKw:
    return _TracedKw(report=s.report, messages=s.messages, shown=s.shown)


def _expr(s: Draft) -> ir.Expr:
    assert s.expr is not None, s.name  # set by the check, or the load failed
    return s.expr


def _table(s: Draft, deps: tuple[Key, ...], frozen: dict[Key, Definition]) -> Definition:
    t = s.table
    assert t is not None, s.name
    return Table(
        **_common(s, deps),
        **_traced(s),
        hit_policy=t.hit_policy,
        input=t.input,
        outputs=t.outputs,
        rows=t.rows,
        otherwise=t.otherwise,
        max_by=t.max_by,
        applies=s.applies,
        lookup=t.lookup,
    )


def _outcome(s: Draft, deps: tuple[Key, ...], frozen: dict[Key, Definition]) -> Definition:
    o = s.outcome
    assert o is not None, s.name
    policy = str(s.raw.get("hit_policy", "first"))
    return Outcome(**_common(s, deps), hit_policy=policy, field=o.field, cases=o.cases)


def _owner(s: Draft, frozen: dict[Key, Definition]) -> Definition:
    return frozen[(s.scope, s.owner)]


def _outcome_of(s: Draft, frozen: dict[Key, Definition]) -> Outcome:
    owner = _owner(s, frozen)
    assert isinstance(owner, Outcome)
    return owner


def _case(s: Draft, deps: tuple[Key, ...], frozen: dict[Key, Definition]) -> Definition:
    outcome = _outcome_of(s, frozen)
    index = next(i for i, c in enumerate(outcome.cases) if c.id == s.name)
    return Case(**_common(s, deps), **_traced(s), outcome=outcome, index=index)


def _table_output(s: Draft, deps: tuple[Key, ...], frozen: dict[Key, Definition]) -> Definition:
    table = _owner(s, frozen)
    assert isinstance(table, Table)
    return TableOutput(**_common(s, deps), table=table, column=s.column)


_FREEZE: dict[type[Definition], Freeze] = {
    InputField: lambda s, deps, f: InputField(**_common(s, deps)),
    ParameterRef: lambda s, deps, f: ParameterRef(**_common(s, deps)),
    RegistryRef: lambda s, deps, f: RegistryRef(**_common(s, deps)),
    Derived: lambda s, deps, f: Derived(**_common(s, deps), expr=_expr(s)),
    Output: lambda s, deps, f: Output(**_common(s, deps), expr=_expr(s)),
    Rule: lambda s, deps, f: Rule(**_common(s, deps), **_traced(s), expr=_expr(s), applies=s.applies),
    Finding: lambda s, deps, f: Finding(**_common(s, deps), **_traced(s), expr=_expr(s), code=s.code),
    Table: _table,
    TableOutput: _table_output,
    Outcome: _outcome,
    Case: _case,
    CaseValue: lambda s, deps, f: CaseValue(**_common(s, deps), outcome=_outcome_of(s, f)),
    CaseSet: lambda s, deps, f: CaseSet(**_common(s, deps), outcome=_outcome_of(s, f), column=s.column),
}
