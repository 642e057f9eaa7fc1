"""Type check of outcomes: each case's condition and the fields it sets, the field's values,
and that no case is pre-empted by the cases before it (``engine.precedence``)."""

from __future__ import annotations

from engine import ir
from engine.errors import ProblemKind
from engine.expression_types import unify
from engine.plan import Arm, Case, CaseValue
from engine.precedence import dead_cases
from engine.source import YMap, pos_of
from engine.types import enum_type

from .check import AlreadyReported, Checker
from .draft import Draft, OutcomeBody

__all__ = ["check_outcome", "check_owned"]


def check_outcome(ck: Checker, sym: Draft) -> None:
    """An outcome (its case index symbol): cases in order, `otherwise` last."""
    cases = [s for s in ck.symbols.values() if s.kind is Case and s.owner == sym.name and s.scope == sym.scope]
    compiled: list[Arm] = []
    for c in cases:
        item = c.raw
        cond = ck.condition(item, "when", sym.scope, c.name) if "when" in item else None
        sets: dict[str, ir.Expr] = {}
        s = item.get("set")
        for k, written in s.items() if isinstance(s, YMap) else ():  # another shape is reported already
            e = ck.expr(written, pos_of(s, k), sym.scope, c.name)
            if e is not None:
                sets[str(k)] = e
        compiled.append(Arm(c.name, item.get("value"), cond, sets, c.title, c.legal_basis, c.messages, c.pos))
        ck.check_messages(c)
    otherwise = [case for case in compiled if case.cond is None]
    ordered = [case for case in compiled if case.cond is not None] + otherwise
    other = sym.raw.get("otherwise")
    if all(cc.cond is not None or c.raw is other for c, cc in zip(cases, compiled, strict=True)):
        _check_precedence(ck, ordered)  # only when every `when` compiled: a failed one is no `otherwise`
    all_sets = {k for case in ordered for k in case.sets}
    for case in ordered:
        for k in sorted(all_sets - set(case.sets)):
            ck.problems.append(
                case.pos.problem(
                    ProblemKind.MISSING_KEY,
                    f"case `{case.id}` does not set `{k}`, which other cases of `{sym.name}` set",
                    case.id,
                )
            )
    field_sym = next(
        (s for s in ck.symbols.values() if s.kind is CaseValue and s.owner == sym.name and s.scope == sym.scope),
        None,
    )
    if field_sym is None:
        raise AlreadyReported  # its `field` clashed with another name: reported as a duplicate id
    values = tuple(dict.fromkeys(str(case.value) for case in ordered))
    field_sym.type = enum_type(values)
    for k in all_sets:
        set_sym = ck.symbols[(sym.scope, k)]
        exprs = [c.sets[k] for c in ordered if k in c.sets]
        t = unify(exprs) if exprs else None
        if isinstance(t, str):
            ck.problems.append(
                set_sym.pos.problem(ProblemKind.TYPE_ERROR, f"cases set `{k}` to different types: {t}", sym.name)
            )
            continue
        if t is not None and t.kind == "null":
            t = None
        set_sym.type = t
    sym.outcome = OutcomeBody(field_sym.name, tuple(ordered))


def _check_precedence(ck: Checker, ordered: list[Arm]) -> None:
    """Report each case that earlier cases always pre-empt."""
    for i, covers in dead_cases([c.cond for c in ordered]):
        case = ordered[i]
        before = ", ".join(f"`{ordered[j].id}`" for j in covers)
        if case.cond is None:
            why = f"`otherwise` (`{case.id}`) can never apply: one of the cases before it ({before}) always holds"
        elif len(covers) == 1:
            why = f"case `{case.id}` can never apply: {before} comes first and holds whenever it would"
        else:
            why = f"case `{case.id}` can never apply: one of the cases before it ({before}) holds whenever it would"
        hint = "; reorder the cases or narrow the earlier `when`"
        ck.problems.append(case.pos.problem(ProblemKind.UNREACHABLE_CASE, why + hint, case.id))


def check_owned(ck: Checker, sym: Draft) -> None:
    """A case, outcome field or set field is checked with the outcome that owns it."""
    ck.lookup(sym.owner, sym.scope)
