"""The scalar backend's expressions: each IR node compiles once into a Python closure
``fn(env, member)``; how each name is read is the caller's (``engine.scalar_plan`` for a
household's named values, ``engine.parameters`` for parameter formulas).

``Evaluator`` now runs generated source (``engine.codegen.program``); these closures stay as
the reference it is tested against (``ClosureEvaluator``). The built-in functions (``FUNCS``)
are shared with the generated code.
"""

from __future__ import annotations

import calendar
import datetime as dt
import operator
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from engine import ir
from engine.errors import EvaluateError

__all__ = ["FUNCS", "Fn", "add_months", "compile_expr", "guard", "years_between"]

Fn = Callable[[dict[str, Any], Any], Any]
_FEN = Decimal("0.01")


def years_between(start: dt.date, end: dt.date) -> int:
    """Whole years from ``start`` to ``end`` (age on a birthday counts the new year).

    >>> years_between(dt.date(1959, 8, 1), dt.date(2019, 8, 1))
    60
    >>> years_between(dt.date(1959, 8, 2), dt.date(2019, 8, 1))
    59
    """
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def add_months(d: dt.date, months: int) -> dt.date:
    """Calendar months later, the day clamped to the month's end.

    >>> add_months(dt.date(2019, 8, 31), 6)
    datetime.date(2020, 2, 29)
    """
    y, m0 = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m0 + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _roundup(x: Any) -> Any:
    return x.to_integral_value(ROUND_CEILING) if isinstance(x, Decimal) else x


def _rounddown(x: Any) -> Any:
    return x.to_integral_value(ROUND_FLOOR) if isinstance(x, Decimal) else x


_ARITH: dict[str, Callable[[Any, Any], Any]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
FUNCS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "roundup": _roundup,
    "rounddown": _rounddown,
    "abs": abs,
    "years_between": years_between,
    "add_months": add_months,
}


def _name_of(e: ir.Expr) -> str:
    return e.name if isinstance(e, ir.Ref) else "a value"


def guard(fn: Fn, e: ir.Expr) -> Fn:
    """Fail loudly, naming the field, when a value that may be absent is absent."""
    if not e.type.nullable:
        return fn
    name = _name_of(e)

    def need(env: dict[str, Any], m: Any) -> Any:
        v = fn(env, m)
        if v is None:
            raise EvaluateError(f"`{name}` is missing but needed here", field=name)
        return v

    return need


def compile_expr(e: ir.Expr, ref: Callable[[ir.Ref], Fn]) -> Fn:
    """Compile an IR expression; ``ref`` supplies the accessor for each named value."""
    return _COMPILERS[type(e)](e, ref)


def _c_const(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    v = e.value
    return lambda env, m: v


def _c_ref(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    return ref(e)


def _c_not(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    f = compile_expr(e.operand, ref)
    return lambda env, m: not f(env, m)


def _c_boolop(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    fs = tuple(compile_expr(x, ref) for x in e.operands)
    if e.op == "and":
        if len(fs) == 2:
            a, b = fs
            return lambda env, m: a(env, m) and b(env, m)

        def all_(env: dict[str, Any], m: Any) -> bool:
            for f in fs:
                if not f(env, m):
                    return False
            return True

        return all_
    if len(fs) == 2:
        a, b = fs
        return lambda env, m: a(env, m) or b(env, m)

    def any_(env: dict[str, Any], m: Any) -> bool:
        for f in fs:
            if f(env, m):
                return True
        return False

    return any_


def _c_binop(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    a = guard(compile_expr(e.left, ref), e.left)
    b = guard(compile_expr(e.right, ref), e.right)
    if e.op == "/":
        money = e.type.kind == "money"

        def div(env: dict[str, Any], m: Any) -> Any:
            d = b(env, m)
            if d == 0:
                raise EvaluateError("division by zero")
            q = Decimal(a(env, m)) / Decimal(d)
            return q.quantize(_FEN, ROUND_HALF_UP) if money else q

        return div
    op = _ARITH[e.op]
    if isinstance(e.right, ir.Const):
        c = e.right.value
        return lambda env, m: op(a(env, m), c)
    if isinstance(e.left, ir.Const):
        c = e.left.value
        return lambda env, m: op(c, b(env, m))
    return lambda env, m: op(a(env, m), b(env, m))


def _c_compare(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    op = _CMP[e.op]
    if e.op in ("==", "!="):
        a, b = compile_expr(e.left, ref), compile_expr(e.right, ref)
    else:
        a, b = guard(compile_expr(e.left, ref), e.left), guard(compile_expr(e.right, ref), e.right)
    if isinstance(e.right, ir.Const):
        c = e.right.value
        return lambda env, m: op(a(env, m), c)
    return lambda env, m: op(a(env, m), b(env, m))


def _c_inset(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    item = compile_expr(e.item, ref)
    neg = e.negate
    if e.values is not None:
        values = e.values
        return lambda env, m: (item(env, m) in values) != neg
    key = e.registry if e.registry.startswith("registry.") else f"registry.{e.registry}"
    return lambda env, m: (item(env, m) in env[key]) != neg


def _c_isnone(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    f = compile_expr(e.operand, ref)
    if e.negate:
        return lambda env, m: f(env, m) is not None
    return lambda env, m: f(env, m) is None


def _c_ifelse(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    c, t, o = compile_expr(e.cond, ref), compile_expr(e.then, ref), compile_expr(e.other, ref)
    return lambda env, m: t(env, m) if c(env, m) else o(env, m)


def _c_call(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    fn = FUNCS[e.fn]
    args = tuple(guard(compile_expr(a, ref), a) for a in e.args)
    if len(args) == 1:
        (x,) = args
        return lambda env, m: fn(x(env, m))
    if len(args) == 2:
        x, y = args
        return lambda env, m: fn(x(env, m), y(env, m))
    return lambda env, m: fn(*(a(env, m) for a in args))


def _c_filter(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    src = compile_expr(e.source, ref)
    if e.cond is None:
        return src
    cond = compile_expr(e.cond, ref)
    return lambda env, m: [x for x in src(env, m) if cond(env, x)]


def _c_agg(e: Any, ref: Callable[[ir.Ref], Fn]) -> Fn:
    src = compile_expr(e.source, ref)
    cond = compile_expr(e.cond, ref) if e.cond is not None else None
    elt = guard(compile_expr(e.elt, ref), e.elt) if e.elt is not None else None
    fn = e.fn
    if fn == "count":
        if cond is None:
            return lambda env, m: len(src(env, m))
        return lambda env, m: sum(1 for x in src(env, m) if cond(env, x))
    assert elt is not None
    if fn == "sum":
        zero: Any = Decimal(0) if e.type.kind in ("money", "decimal") else 0
        if cond is None:
            return lambda env, m: sum((elt(env, x) for x in src(env, m)), zero)
        return lambda env, m: sum((elt(env, x) for x in src(env, m) if cond(env, x)), zero)
    agg = any if fn == "any" else all
    if cond is None:
        return lambda env, m: agg(elt(env, x) for x in src(env, m))
    return lambda env, m: agg(elt(env, x) for x in src(env, m) if cond(env, x))


_COMPILERS: dict[type, Callable[[Any, Callable[[ir.Ref], Fn]], Fn]] = {
    ir.Const: _c_const,
    ir.Ref: _c_ref,
    ir.Not: _c_not,
    ir.BoolOp: _c_boolop,
    ir.BinOp: _c_binop,
    ir.Compare: _c_compare,
    ir.InSet: _c_inset,
    ir.IsNone: _c_isnone,
    ir.IfElse: _c_ifelse,
    ir.Call: _c_call,
    ir.Filter: _c_filter,
    ir.Agg: _c_agg,
}
