"""Type check of the definitions that hold one expression: parameters (their formulas and
values), derived values, rules, findings and outputs."""

from __future__ import annotations

from engine.ruleset import Parameter, Symbol
from engine.source import pos_of
from engine.types import BOOL, Type

from .check import AlreadyReported, Checker
from .shapes import declared_type
from .state import refs

__all__ = ["check_derived", "check_finding", "check_output", "check_parameter", "check_rule"]


def _parameter_type(ck: Checker, p: Parameter) -> Type:
    """Check every version of ``p``: a formula reads other parameters only, a value is literal."""
    for region, versions in p.regions.items():
        for v in versions:
            if v.formula_text:
                written = ck.d.formulas.get((p.name, region, v.start), v.formula_text)
                expr = ck.expr(written, v.pos, "household", p.name, ck.parameters_only)
                if expr is not None:
                    ck.expect_type(expr, p.type, v.pos, p.name)
                    v.formula = expr
            else:
                v.value = ck.literal(v.value, p.type, v.pos, p.name)
    return p.type


def check_parameter(ck: Checker, sym: Symbol) -> None:
    p: Parameter = sym.raw["param"]
    sym.type = _parameter_type(ck, p)
    sym.deps = tuple(sorted({d for vs in p.regions.values() for v in vs if v.formula for d in refs(v.formula)}))


def check_derived(ck: Checker, sym: Symbol) -> None:
    expr = ck.expr(sym.raw.get("expr"), pos_of(sym.raw, "expr"), sym.scope, sym.name)
    if expr is None:
        raise AlreadyReported
    if "type" in sym.raw:
        t = declared_type(sym.raw["type"], pos_of(sym.raw, "type"), ck.problems, sym.name)
        if t:
            ck.expect_type(expr, t, pos_of(sym.raw, "expr"), sym.name)
    sym.expr, sym.type, sym.deps = expr, expr.type, refs(expr)


def check_rule(ck: Checker, sym: Symbol) -> None:
    item = sym.raw
    if "when" not in item:
        raise AlreadyReported  # reported as a missing key already
    sym.applies = ck.condition(item, "applies", sym.scope, sym.name) if "applies" in item else None
    sym.expr = ck.condition(item, "when", sym.scope, sym.name)
    if sym.expr is None:
        raise AlreadyReported
    sym.type, sym.deps = BOOL, refs(sym.expr)
    ck.check_messages(sym)


def check_finding(ck: Checker, sym: Symbol) -> None:
    sym.expr = ck.condition(sym.raw, "when", "household", sym.name)
    if sym.expr is None:
        raise AlreadyReported
    sym.deps = refs(sym.expr)
    ck.check_messages(sym)


def check_output(ck: Checker, sym: Symbol) -> None:
    item, declared = sym.raw["item"], sym.raw["declared"]
    expr = ck.expr(item.get("expr"), pos_of(item, "expr"), "household", sym.name)
    if expr is None or declared is None:
        raise AlreadyReported
    ck.expect_type(expr, declared, pos_of(item, "expr"), sym.name)
    t = declared if declared.kind != "enum" else expr.type.with_nullable(declared.nullable)
    sym.expr, sym.type, sym.deps = expr, t, refs(expr)
