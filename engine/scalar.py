"""The scalar backend: one household at a time, every value kept for the explanation.

Each IR node compiles once into a Python closure ``fn(env, member)``. Named values are
memoized in the household's ``env`` dict (or the member's dict), so a value is computed at
most once per household and is there afterwards for the trace.

``Evaluator`` now runs generated source (``engine.codegen_program``); these closures stay as
the reference it is tested against (``ClosureEvaluator``), and ``compile_expr`` still computes
parameter formulas (``engine.parameters``). The built-in functions (``FUNCS``) are shared.
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
)
from engine.ruleset import Ruleset

__all__ = ["FUNCS", "Fn", "ScalarPlan", "add_months", "compile_expr", "years_between"]

Fn = Callable[[dict[str, Any], Any], Any]
_MISSING = object()
_FEN = Decimal("0.01")
NA_PREFIX = "#na:"
ROW_PREFIX = "#row:"


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


def _guard(fn: Fn, e: ir.Expr) -> Fn:
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
    a = _guard(compile_expr(e.left, ref), e.left)
    b = _guard(compile_expr(e.right, ref), e.right)
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
        a, b = _guard(compile_expr(e.left, ref), e.left), _guard(compile_expr(e.right, ref), e.right)
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
    args = tuple(_guard(compile_expr(a, ref), a) for a in e.args)
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
    elt = _guard(compile_expr(e.elt, ref), e.elt) if e.elt is not None else None
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


class ScalarPlan:
    """Accessors for every named value of a ruleset, compiled once."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self._acc: dict[tuple[str, str], Fn] = {}

    def accessor(self, name: str, scope: str = "household") -> Fn:
        key = (scope, name)
        acc = self._acc.get(key)
        if acc is None:
            acc = self._build(self.ruleset.symbols[key])
            self._acc[key] = acc
        return acc

    def _ref(self, r: ir.Ref) -> Fn:
        return self.accessor(r.name, r.scope)

    def _build(self, sym: Definition) -> Fn:
        name = sym.name
        if isinstance(sym, _LEAVES):
            if sym.scope == "member":
                return lambda env, m: m[name]
            return lambda env, m: env[name]
        compute = _KINDS[type(sym)](self, sym)
        # The try blocks cost nothing on the happy path (Python 3.11); on failure they name
        # the innermost definition that could not be evaluated.
        if sym.scope == "member":

            def member_acc(env: dict[str, Any], m: Any) -> Any:
                v = m.get(name, _MISSING)
                if v is _MISSING:
                    try:
                        v = m[name] = compute(env, m)
                    except EvaluateError as exc:
                        exc.rule_id = exc.rule_id or name
                        raise
                return v

            return member_acc

        def household_acc(env: dict[str, Any], m: Any) -> Any:
            v = env.get(name, _MISSING)
            if v is _MISSING:
                try:
                    v = env[name] = compute(env, None)
                except EvaluateError as exc:
                    exc.rule_id = exc.rule_id or name
                    raise
            return v

        return household_acc

    def _expr(self, e: ir.Expr) -> Fn:
        return compile_expr(e, self._ref)

    def _with_applies(self, sym: Rule | Table, body: Fn, na_value: Any) -> Fn:
        if sym.applies is None:
            return body
        applies = self._expr(sym.applies)
        marker = NA_PREFIX + sym.name

        def gated(env: dict[str, Any], m: Any) -> Any:
            if applies(env, m):
                return body(env, m)
            (m if m is not None else env)[marker] = True
            return na_value

        return gated

    def _k_expr(self, sym: Derived | Output | Finding) -> Fn:
        return self._expr(sym.expr)

    def _k_rule(self, sym: Rule) -> Fn:
        return self._with_applies(sym, self._expr(sym.expr), False)

    def _k_outcome(self, sym: Outcome) -> Fn:
        conds = [(i, self._expr(c.cond)) for i, c in enumerate(sym.cases) if c.cond is not None]
        last = len(sym.cases) - 1

        def choose(env: dict[str, Any], m: Any) -> int:
            for i, cond in conds:
                if cond(env, m):
                    return i
            return last

        return choose

    def _k_case(self, sym: Case) -> Fn:
        owner = self.accessor(sym.outcome.name, sym.scope)
        index = sym.index
        return lambda env, m: owner(env, m) == index

    def _k_case_value(self, sym: CaseValue) -> Fn:
        owner = self.accessor(sym.outcome.name, sym.scope)
        values = [c.value for c in sym.outcome.cases]
        return lambda env, m: values[owner(env, m)]

    def _k_case_set(self, sym: CaseSet) -> Fn:
        owner = self.accessor(sym.outcome.name, sym.scope)
        fns = [self._expr(c.sets[sym.column]) for c in sym.outcome.cases]
        return lambda env, m: fns[owner(env, m)](env, m)

    def _k_table(self, sym: Table) -> Fn:
        table = sym
        row_key = ROW_PREFIX + sym.name
        other = table.otherwise

        def store(env: dict[str, Any], m: Any, row: TableRow | None) -> str | None:
            (m if m is not None else env)[row_key] = row
            return row.id if row is not None else None

        if table.hit_policy == "unique":
            assert table.input is not None
            inp = _guard(self._expr(table.input), table.input)
            rows = table.rows
            table_name = sym.name

            def unique(env: dict[str, Any], m: Any) -> str | None:
                v = inp(env, m)
                for row in rows:
                    assert row.interval is not None
                    if row.interval.contains(v):
                        return store(env, m, row)
                if other is not None:
                    return store(env, m, other)
                raise EvaluateError(f"no row of table `{table_name}` matches {v}")

            body: Fn = unique
        elif table.hit_policy == "first":
            conds = [(r, self._expr(r.cond)) for r in table.rows if r.cond is not None]

            def first(env: dict[str, Any], m: Any) -> str | None:
                for row, cond in conds:
                    if cond(env, m):
                        return store(env, m, row)
                return store(env, m, other)

            body = first
        else:
            conds = [(r, self._expr(r.cond)) for r in table.rows if r.cond is not None]
            col = table.max_by or ""
            cells = {r.id: self._expr(r.cells[col]) for r in table.rows if col in r.cells}

            def best(env: dict[str, Any], m: Any) -> str | None:
                found: TableRow | None = None
                top: Any = None
                for row, cond in conds:
                    if cond(env, m):
                        v = cells[row.id](env, m)
                        if found is None or v > top:
                            found, top = row, v
                return store(env, m, found if found is not None else other)

            body = best
        return self._with_applies(sym, body, None)

    def _k_table_output(self, sym: TableOutput) -> Fn:
        table = sym.table
        owner = self.accessor(table.name, sym.scope)
        fns = {r.id: self._expr(r.cells[sym.column]) for r in table.all_rows if sym.column in r.cells}
        row_key = ROW_PREFIX + table.name
        table_name, column = table.name, sym.column

        def cell(env: dict[str, Any], m: Any) -> Any:
            owner(env, m)
            row = (m if m is not None else env).get(row_key)
            if row is None:
                raise EvaluateError(f"table `{table_name}` has no row for this household, so `{column}` has no value")
            return fns[row.id](env, m)

        return cell


_LEAVES = (InputField, ParameterRef, RegistryRef)  # values the household or its date supplies

# how each kind of definition computes its value
_KINDS: dict[type[Definition], Callable[[ScalarPlan, Any], Fn]] = {
    Derived: ScalarPlan._k_expr,
    Output: ScalarPlan._k_expr,
    Finding: ScalarPlan._k_expr,
    Rule: ScalarPlan._k_rule,
    Outcome: ScalarPlan._k_outcome,
    Case: ScalarPlan._k_case,
    CaseValue: ScalarPlan._k_case_value,
    CaseSet: ScalarPlan._k_case_set,
    Table: ScalarPlan._k_table,
    TableOutput: ScalarPlan._k_table_output,
}
