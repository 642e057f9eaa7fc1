"""Typed IR expressions compiled to Python source text, one function per node kind.

The text is built from the checked IR only. A user string (an enum value, a rule id, a
field name) reaches it as a ``repr()`` literal; any other value (decimals, dates, sets) is
an object in the namespace the source is compiled against, named by a counter. Semantics
follow ``engine.scalar`` exactly: the same guards, the same rounding, the same errors.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine import ir
from engine.errors import EvaluateError
from engine.ruleset import TableRow
from engine.scalar import FUNCS

__all__ = ["RUNTIME", "ExprCompiler", "Namespace", "narrowed", "table_rows"]

_FEN = Decimal("0.01")


def _missing(name: str) -> Any:
    raise EvaluateError(f"`{name}` is missing but needed here", field=name)


def _nn(v: Any, name: str) -> Any:
    """The value, or the error the closure backend raises for an absent one."""
    if v is None:
        raise EvaluateError(f"`{name}` is missing but needed here", field=name)
    return v


def _div(a: Any, b: Any, money: bool) -> Any:
    if b == 0:
        raise EvaluateError("division by zero")
    q = Decimal(a) / Decimal(b)
    return q.quantize(_FEN, ROUND_HALF_UP) if money else q


def table_rows(table: Any) -> list[TableRow]:
    """A table's rows then its ``otherwise`` row: the index a table value stands for."""
    return [*table.rows, *([table.otherwise] if table.otherwise is not None else [])]


def _tag(exc: EvaluateError, name: str) -> None:
    exc.rule_id = exc.rule_id or name


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:  # a message may show a value no decision needed, and that cannot be computed
        return fn(*args)
    except (EvaluateError, KeyError, TypeError):
        return None


def _unique(v: Any, intervals: tuple[Any, ...], other: int | None, table: str) -> int:
    for i, iv in enumerate(intervals):
        if iv.contains(v):
            return i
    if other is not None:
        return other
    raise EvaluateError(f"no row of table `{table}` matches {v}")


def _best(pairs: tuple[tuple[int, Any] | None, ...], other: int | None) -> int | None:
    found: int | None = None
    top: Any = None
    for p in pairs:
        if p is not None and (found is None or p[1] > top):
            found, top = p
    return found if found is not None else other


def _no_cell(row: int | None, table: str, column: str) -> Any:
    if row is None:
        raise EvaluateError(f"table `{table}` has no row for this household, so `{column}` has no value")
    raise KeyError(row)


def _row_id(row: int | None, ids: tuple[str, ...]) -> str | None:
    return ids[row] if row is not None else None


def _money(v: Any) -> Decimal:
    return (v if type(v) is Decimal else Decimal(v)).quantize(_FEN, ROUND_HALF_UP)


RUNTIME: dict[str, Any] = {
    "_U": object(),  # not computed yet
    "_tag": _tag,
    "_try": _try,
    "_unique": _unique,
    "_best": _best,
    "_no_cell": _no_cell,
    "_row_id": _row_id,
    "_money": _money,
    "_missing": _missing,
    "_nn": _nn,
    "_div": _div,
    "_EvaluateError": EvaluateError,
    "_D0": Decimal(0),
    **{f"_f_{name}": fn for name, fn in FUNCS.items()},
}


def narrowed(e: ir.Expr, op: str) -> ir.Ref | None:
    """The name an operand proves present for the operands after it (``x is None or ...``)."""
    if isinstance(e, ir.IsNone) and isinstance(e.operand, ir.Ref) and e.negate == (op == "and"):
        return e.operand
    return None


class Namespace:
    """Objects the generated source refers to by generated names (never by user text)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = dict(RUNTIME)

    def const(self, value: Any) -> str:
        """A Python expression for a constant value."""
        if value is None or isinstance(value, bool):
            return repr(value)
        if type(value) is int:
            return repr(value)
        if isinstance(value, str):
            return repr(str(value))  # a quoted literal: the only way user text enters the source
        return self.obj(value)

    def obj(self, value: Any) -> str:
        """A generated name bound to ``value`` (no sharing: 0.2 and 0.20 print differently)."""
        name = f"_k{len(self.values)}"
        self.values[name] = value
        return name


RefFn = Callable[[ir.Ref, str], str]


class ExprCompiler:
    """Compile IR to one Python expression; ``ref(node, member_var)`` renders a named value."""

    def __init__(self, ns: Namespace, ref: RefFn) -> None:
        self.ns = ns
        self.ref = ref
        self._fresh = 0
        self.safe: frozenset[ir.Ref] = frozenset()  # names known present here: no guard needed

    def expr(self, e: ir.Expr, m: str) -> str:
        """``m`` is the Python name of the member being visited ("" at household level)."""
        return _COMPILERS[type(e)](self, e, m)

    def cond(self, e: ir.Expr, m: str) -> str:
        """The expression where only its truth is read (a condition): no bool() of an and/or."""
        if isinstance(e, ir.BoolOp):
            return _c_boolop(self, e, m, truth=True)
        return self.expr(e, m)

    def guarded(self, e: ir.Expr, m: str) -> str:
        """The expression, failing loudly, naming the field, when it may be absent and is."""
        text = self.expr(e, m)
        if not e.type.nullable or e in self.safe:
            return text
        name = e.name if isinstance(e, ir.Ref) else "a value"
        if text.isidentifier():
            return f"({text} if {text} is not None else _missing({name!r}))"
        return f"_nn({text}, {name!r})"

    def loop(self, e: ir.Agg, target: str, m: str) -> list[str]:
        """An aggregation as a ``for`` statement: no comprehension frame to build, same values."""
        src, x = self.expr(e.source, m), self.var()
        saved, self.safe = self.safe, frozenset()
        cond = self.cond(e.cond, x) if e.cond is not None else ""
        elt = self.guarded(e.elt, x) if e.elt is not None and e.fn != "count" else ""
        self.safe = saved
        body = {
            "count": [f"{target} += 1"],
            "sum": [f"{target} = {target} + {elt}"],
            "any": [f"if {elt}:", f"    {target} = True", "    break"],
            "all": [f"if not {elt}:", f"    {target} = False", "    break"],
        }[e.fn]
        start = {"count": "0", "sum": "_D0" if e.type.kind in ("money", "decimal") else "0"}.get(e.fn)
        lines = [f"{target} = {start or repr(e.fn == 'all')}", f"for {x} in {src}:"]
        if cond:
            lines.append(f"    if {cond}:")
            body = ["    " + b for b in body]
        return lines + ["    " + b for b in body]

    def var(self) -> str:
        self._fresh += 1
        return f"_x{self._fresh}"


def _c_const(c: ExprCompiler, e: Any, m: str) -> str:
    return c.ns.const(e.value)


def _c_ref(c: ExprCompiler, e: Any, m: str) -> str:
    return c.ref(e, m)


def _c_not(c: ExprCompiler, e: Any, m: str) -> str:
    return f"(not {c.cond(e.operand, m)})"


def _c_boolop(c: ExprCompiler, e: Any, m: str, truth: bool = False) -> str:
    saved, parts = c.safe, []
    for x in e.operands:
        parts.append(c.cond(x, m) if truth else c.expr(x, m))
        if (known := narrowed(x, e.op)) is not None:
            c.safe = c.safe | {known}
    c.safe = saved
    joined = f" {e.op} ".join(parts)
    if len(parts) == 2 or truth:  # the closure backend returns the deciding operand for two,
        return f"({joined})"  # a bool beyond; only truth matters in a condition
    return f"(True if {joined} else False)"


def _c_binop(c: ExprCompiler, e: Any, m: str) -> str:
    a, b = c.guarded(e.left, m), c.guarded(e.right, m)
    if e.op == "/":
        return f"_div({a}, {b}, {e.type.kind == 'money'})"
    assert e.op in ("+", "-", "*")
    return f"({a} {e.op} {b})"


def _c_compare(c: ExprCompiler, e: Any, m: str) -> str:
    assert e.op in ("<", "<=", ">", ">=", "==", "!=")
    if e.op in ("==", "!="):
        a, b = c.expr(e.left, m), c.expr(e.right, m)
    else:
        a, b = c.guarded(e.left, m), c.guarded(e.right, m)
    return f"({a} {e.op} {b})"


def _c_inset(c: ExprCompiler, e: Any, m: str) -> str:
    item = c.expr(e.item, m)
    op = "not in" if e.negate else "in"
    if e.values is not None:
        return f"({item} {op} {c.ns.obj(frozenset(e.values))})"
    key = e.registry if e.registry.startswith("registry.") else f"registry.{e.registry}"
    return f"({item} {op} R[{key!r}])"


def _c_isnone(c: ExprCompiler, e: Any, m: str) -> str:
    return f"({c.expr(e.operand, m)} is {'not ' if e.negate else ''}None)"


def _c_ifelse(c: ExprCompiler, e: Any, m: str) -> str:
    saved, cond = c.safe, c.cond(e.cond, m)
    then_known, other_known = narrowed(e.cond, "and"), narrowed(e.cond, "or")
    c.safe = saved | ({then_known} if then_known else set())
    then = c.expr(e.then, m)
    c.safe = saved | ({other_known} if other_known else set())
    other = c.expr(e.other, m)
    c.safe = saved
    return f"({then} if {cond} else {other})"


def _c_call(c: ExprCompiler, e: Any, m: str) -> str:
    assert e.fn in FUNCS
    args = ", ".join(c.guarded(a, m) for a in e.args)
    return f"_f_{e.fn}({args})"


def _c_filter(c: ExprCompiler, e: Any, m: str) -> str:
    src = c.expr(e.source, m)
    if e.cond is None:
        return src
    x, saved = c.var(), c.safe
    c.safe = frozenset()  # another member: what was known present is not known for it
    cond = c.cond(e.cond, x)
    c.safe = saved
    return f"[{x} for {x} in {src} if {cond}]"


def _c_agg(c: ExprCompiler, e: Any, m: str) -> str:
    src = c.expr(e.source, m)
    x, saved = c.var(), c.safe
    c.safe = frozenset()
    try:
        return _agg_body(c, e, src, x)
    finally:
        c.safe = saved


def _agg_body(c: ExprCompiler, e: Any, src: str, x: str) -> str:
    cond = f" if {c.cond(e.cond, x)}" if e.cond is not None else ""
    if e.fn == "count":
        return f"len({src})" if not cond else f"len([1 for {x} in {src}{cond}])"
    elt = c.guarded(e.elt, x)
    if e.fn == "sum":
        zero = "_D0" if e.type.kind in ("money", "decimal") else "0"
        # a list, not a generator: cheaper for a household's few members, same values
        return f"sum([{elt} for {x} in {src}{cond}], {zero})"
    assert e.fn in ("any", "all")
    return f"{e.fn}({elt} for {x} in {src}{cond})"


_COMPILERS: dict[type, Callable[[ExprCompiler, Any, str], str]] = {
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
