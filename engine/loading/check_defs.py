"""Type check of the definitions that hold one expression: parameters (their formulas and
values), derived values, rules, findings and outputs."""

from __future__ import annotations

from dataclasses import replace

from engine.errors import ProblemKind
from engine.ruleset import Parameter, ParameterVersion
from engine.source import pos_of
from engine.types import BOOL

from .bounds import out_of_range
from .check import AlreadyReported, Checker
from .draft import Draft
from .shapes import declared_type
from .validity import in_force, with_validity

__all__ = ["check_derived", "check_finding", "check_output", "check_parameter", "check_rule"]


def _checked(ck: Checker, p: Parameter) -> Parameter:
    """``p`` with every version checked: a formula reads other parameters only, a value is
    a literal of the parameter's type."""
    regions: dict[str, list[ParameterVersion]] = {}
    for region, versions in p.regions.items():
        regions[region] = []
        for v in versions:
            if v.formula_text:
                written = ck.d.formulas.get((p.name, region, v.start), v.formula_text)
                expr = ck.expr(written, v.pos, "household", p.name, ck.parameters_only)
                if expr is not None:
                    ck.expect_type(expr, p.type, v.pos, p.name)
                    v = replace(v, formula=expr)
            elif (why := out_of_range(v.value, p.type)) is not None:
                ck.problems.append(v.pos.problem(ProblemKind.OUT_OF_RANGE, why, p.name))
            else:
                v = replace(v, value=ck.literal(v.value, p.type, v.pos, p.name))
            regions[region].append(v)
    return replace(p, regions=regions)


def check_parameter(ck: Checker, sym: Draft) -> None:
    p: Parameter = sym.raw["param"]
    checked = _checked(ck, p)
    if ck.d.parameters.get(p.name) is p:  # not if a second parameter of the name took its place
        ck.d.parameters[p.name] = checked
    sym.type = p.type


def check_derived(ck: Checker, sym: Draft) -> None:
    expr = ck.expr(sym.raw.get("expr"), pos_of(sym.raw, "expr"), sym.scope, sym.name)
    if expr is None:
        raise AlreadyReported
    if "type" in sym.raw:
        t = declared_type(sym.raw["type"], pos_of(sym.raw, "type"), ck.problems, sym.name)
        if t:
            ck.expect_type(expr, t, pos_of(sym.raw, "expr"), sym.name)
    sym.expr, sym.type = expr, expr.type


def check_rule(ck: Checker, sym: Draft) -> None:
    item = sym.raw
    if "when" not in item:
        raise AlreadyReported  # reported as a missing key already
    applies = ck.condition(item, "applies", sym.scope, sym.name) if "applies" in item else None
    sym.applies = with_validity(applies, in_force(ck, item, sym.scope, sym.name))
    sym.expr = ck.condition(item, "when", sym.scope, sym.name)
    if sym.expr is None:
        raise AlreadyReported
    sym.type = BOOL
    ck.check_messages(sym)


def check_finding(ck: Checker, sym: Draft) -> None:
    sym.expr = ck.condition(sym.raw, "when", "household", sym.name)
    if sym.expr is None:
        raise AlreadyReported
    ck.check_messages(sym)


def check_output(ck: Checker, sym: Draft) -> None:
    item, declared = sym.raw["item"], sym.raw["declared"]
    expr = ck.expr(item.get("expr"), pos_of(item, "expr"), "household", sym.name)
    if expr is None or declared is None:
        raise AlreadyReported
    ck.expect_type(expr, declared, pos_of(item, "expr"), sym.name)
    t = declared if declared.kind != "enum" else expr.type.with_nullable(declared.nullable)
    sym.expr, sym.type = expr, t
