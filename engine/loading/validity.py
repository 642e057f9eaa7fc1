"""Dated rules: a rule or a table row with ``valid_from`` is in force from that day on.

``valid_from`` is a date (``2020-01-01``) or the name of a date parameter (so the date has
its reference). It is read as one more condition, ``decision_date >= valid_from``: a rule
not yet in force is "not applicable" (never a failed test), a row not yet in force never
matches. Every backend then decides it as it decides any condition.

A table may name another date with ``dated_by`` (an expression of its scope): its own
``valid_from`` and its rows' are then compared with that date. An ability assessment is
graded by the standard in force on the day it was made, not on the decision date
(DOMAIN-2.md §9: ``dated_by: ability_assessment.assessed_on``).
"""

from __future__ import annotations

import datetime as dt

from engine import ir
from engine.errors import ProblemKind
from engine.plan import BUILTIN_FIELDS, ParameterRef
from engine.source import YMap, pos_of
from engine.types import BOOL, DATE

from .check import Checker

__all__ = ["BY", "KEY", "in_force", "with_validity"]

KEY = "valid_from"
BY = "dated_by"
_ON = BUILTIN_FIELDS[1]  # the decision date: what selects parameter versions selects rules too


def in_force(ck: Checker, item: YMap, scope: str, rid: str, dated_by: YMap | None = None) -> ir.Expr | None:
    """``decision_date >= valid_from`` for an item that has ``valid_from``, else None
    (also after reporting a bad one); the date is the ``dated_by`` of ``dated_by`` (the
    item itself, or the table of a row) when it has one."""
    if KEY not in item:
        return None
    raw, pos = item[KEY], pos_of(item, KEY)
    bound: ir.Expr | None
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        bound = ir.Const(DATE, raw)
    else:
        bound = ck.expr(raw, pos, scope, rid)
        sym = ck.symbols.get(("household", str(raw).strip()))
        if bound is not None and (sym is None or sym.kind is not ParameterRef or bound.type != DATE):
            got = bound.type.describe() if sym is not None and sym.kind is ParameterRef else f"`{raw}`"
            ck.problems.append(
                pos.problem(
                    ProblemKind.TYPE_ERROR,
                    f"`{KEY}` is a date (2020-01-01) or the name of a date parameter, got {got}",
                    rid,
                )
            )
            bound = None
    on = _date(ck, dated_by if dated_by is not None else item, scope, rid)
    if bound is None or on is None:
        return None
    return ir.Compare(BOOL, ">=", on, bound)


def _date(ck: Checker, item: YMap, scope: str, rid: str) -> ir.Expr | None:
    """The date an item's ``valid_from`` is compared with: its ``dated_by``, else the decision date."""
    if BY not in item:
        return ck.expr(_ON, pos_of(item, KEY), scope, rid)
    pos = pos_of(item, BY)
    on = ck.expr(str(item[BY]), pos, scope, rid)
    if on is not None and on.type.kind != DATE.kind:
        ck.problems.append(pos.problem(ProblemKind.TYPE_ERROR, f"`{BY}` is a date, got {on.type.describe()}", rid))
        return None
    return on


def with_validity(cond: ir.Expr | None, valid: ir.Expr | None) -> ir.Expr | None:
    """``valid and cond``: the date first, so a rule not in force reads nothing else."""
    if valid is None:
        return cond
    return valid if cond is None else ir.BoolOp(BOOL, "and", (valid, cond))
