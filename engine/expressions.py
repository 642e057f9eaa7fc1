"""Parse rule expressions into typed IR: a whitelisted subset of Python syntax via ``ast``.

Nothing is ever ``eval``ed. Each allowed syntax node has one translator in a table; any
other node is an error naming what is allowed. Names are resolved and types checked
here, once, at load time.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from engine import ir
from engine.errors import ProblemKind, did_you_mean
from engine.expression_types import NULL, arith_type, comparable, is_literal, unify
from engine.types import BOOL, DECIMAL, INT, MEMBERS, STR, Type

__all__ = [
    "MAX_EXPR_CHARS",
    "MAX_EXPR_DEPTH",
    "MAX_EXPR_NODES",
    "MAX_LITERAL",
    "ExprError",
    "Resolver",
    "parse_expression",
]

# limits of the engine, not of any rule: today's longest expression has 142 characters, 22
# nodes, 7 levels. Deeper ones overflow Python's parser and compiler (the generated source
# nests a few parentheses per level; Python allows 200), so they are refused here, where
# the problem can point into the rule file.
MAX_EXPR_CHARS = 4000
MAX_EXPR_DEPTH = 64
MAX_EXPR_NODES = 1000
MAX_LITERAL = (
    10**15
)  # (10^15: `adjusted() >= 15` below) a number written in an expression is below this (money is below 10^12)

_ALLOWED = (
    "arithmetic + - * /, comparisons, and/or/not, `in`, `is None`, `x if c else y`, "
    "min/max/roundup/rounddown/abs/years_between/add_months, sum/count/any/all over members"
)


class ExprError(Exception):
    """An error inside one expression, at a column offset within its text.

    ``kind`` says what is wrong (a syntax not allowed, an unknown name, a type that does
    not fit, a value an enumeration lacks); the loader reports it as given.
    """

    def __init__(self, message: str, node: ast.AST | None = None, kind: ProblemKind = ProblemKind.EXPRESSION) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.line = getattr(node, "lineno", 1)
        self.col = getattr(node, "col_offset", 0)


_NAME = ProblemKind.UNKNOWN_NAME
_TYPE = ProblemKind.TYPE_ERROR


class Resolver(Protocol):
    """What the expression parser needs to know about names."""

    def lookup(self, name: str, scope: str) -> Type | None:
        """Type of a household- or member-scoped name, or None when unknown."""

    def names(self, scope: str) -> Iterable[str]:
        """Every name visible in a scope, for "did you mean" hints."""

    def is_registry(self, name: str) -> bool: ...


@dataclass
class _Ctx:
    text: str
    resolver: Resolver
    scope: str  # "household" or "member"
    var: str = ""  # the generator variable in scope, if any


def parse_expression(text: str, resolver: Resolver, scope: str = "household") -> ir.Expr:
    """Parse and type-check one expression.

    >>> from engine.types import MONEY
    >>> class R:
    ...     def lookup(self, name, scope): return MONEY if name == "T" else None
    ...     def names(self, scope): return ["T"]
    ...     def is_registry(self, name): return False
    >>> parse_expression("T < 790", R()).type.kind
    'bool'
    """
    text = text.strip()
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"the expression has {len(text)} characters, more than {MAX_EXPR_CHARS}; {_SPLIT}", None, _BIG)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        err = ExprError(f"cannot parse expression: {exc.msg}")
        err.line, err.col = exc.lineno or 1, max((exc.offset or 1) - 1, 0)
        raise err from None
    except (RecursionError, MemoryError):  # Python's parser gives up on deep nesting this way
        raise ExprError(f"the expression is nested too deeply for Python to read; {_SPLIT}", None, _BIG) from None
    _check_size(tree.body)
    return _expr(tree.body, _Ctx(text, resolver, scope))


_BIG = ProblemKind.TOO_COMPLEX
_SPLIT = "split it into named `derived` values"


def _check_size(root: ast.expr) -> None:
    """Refuse an expression nested deeper than ``MAX_EXPR_DEPTH`` or with more than
    ``MAX_EXPR_NODES`` nodes, at the first node past the limit; without recursion, so the
    check itself never overflows."""
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_EXPR_DEPTH:
            message = f"the expression is nested more than {MAX_EXPR_DEPTH} levels deep; {_SPLIT}"
            raise ExprError(message, node, _BIG)
        if count > MAX_EXPR_NODES:
            raise ExprError(f"the expression has more than {MAX_EXPR_NODES} parts; {_SPLIT}", node, _BIG)
        stack.extend(
            (child, depth + 1)
            for child in reversed(list(ast.iter_child_nodes(node)))
            if isinstance(child, ast.expr | ast.comprehension)
        )


# ---------------------------------------------------------------- translators


def _expr(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    fn = _TRANSLATORS.get(type(node))
    if fn is None:
        what = type(node).__name__
        raise ExprError(f"`{what}` syntax is not allowed in rule expressions; allowed: {_ALLOWED}", node)
    return fn(node, ctx)


def _constant(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.Constant)
    v = node.value
    if v is None:
        return ir.Const(NULL, None)
    if isinstance(v, bool):
        return ir.Const(BOOL, v)
    if isinstance(v, int):
        _in_range(v, node)
        return ir.Const(INT, v)
    if isinstance(v, float):
        src = ast.get_source_segment(ctx.text, node) or repr(v)
        value = Decimal(src)
        _in_range(value, node)
        return ir.Const(DECIMAL, value)
    if isinstance(v, str):
        return ir.Const(STR, v)
    raise ExprError(f"literal {v!r} is not allowed", node)


def _in_range(v: int | Decimal, node: ast.AST) -> None:
    big = (not v.is_finite() or v.adjusted() >= 15) if isinstance(v, Decimal) else abs(v) >= MAX_LITERAL
    if big:  # (abs() of a Decimal with a huge exponent would itself overflow)
        raise ExprError(
            f"the number {v} is too large: numbers in rule expressions are below 10^15",
            node,
            ProblemKind.OUT_OF_RANGE,
        )


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _name(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    parts = _dotted(node)
    if parts is None:
        raise ExprError("only dotted names like `assets.houses` may use `.`", node)
    r = ctx.resolver
    if ctx.var and parts[0] == ctx.var:
        name = ".".join(parts[1:])
        if not name:
            raise ExprError(f"`{ctx.var}` alone is a member; use a field such as `{ctx.var}.age`", node)
        t = r.lookup(name, "member")
        if t is None:
            hint = did_you_mean(name, r.names("member"))
            raise ExprError(f"unknown member field `{name}`{hint}", node, _NAME)
        return ir.Ref(t, name, "member", ctx.var)
    name = ".".join(parts)
    if ctx.scope == "member" and not ctx.var:
        t = r.lookup(name, "member")
        if t is not None:
            return ir.Ref(t, name, "member")
    t = r.lookup(name, "household")
    if t is not None:
        return ir.Ref(t, name, "household")
    pool = list(r.names("household"))
    if ctx.scope == "member" or ctx.var:
        pool += [f"{ctx.var}.{n}" if ctx.var else n for n in r.names("member")]
    raise ExprError(f"unknown name `{name}`{did_you_mean(name, pool)}", node, _NAME)


def _require_bool(e: ir.Expr, node: ast.AST, what: str) -> None:
    if e.type.kind != "bool":
        raise ExprError(f"{what} needs true/false, got {e.type.describe()}", node, _TYPE)


def _boolop(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.BoolOp)
    op = "and" if isinstance(node.op, ast.And) else "or"
    operands = tuple(_expr(v, ctx) for v in node.values)
    for v, e in zip(node.values, operands, strict=True):
        _require_bool(e, v, f"`{op}`")
    return ir.BoolOp(BOOL, op, operands)


def _unary(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.UnaryOp)
    operand = _expr(node.operand, ctx)
    if isinstance(node.op, ast.Not):
        _require_bool(operand, node.operand, "`not`")
        return ir.Not(BOOL, operand)
    if isinstance(node.op, ast.USub) and operand.type.numeric:
        if isinstance(operand, ir.Const):
            return ir.Const(operand.type, -operand.value)
        return ir.BinOp(operand.type, "-", ir.Const(INT, 0), operand)
    raise ExprError("only `not x` and `-number` are allowed as unary operators", node)


_BINOPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _binop(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.BinOp)
    op = _BINOPS.get(type(node.op))
    if op is None:
        raise ExprError(f"operator `{type(node.op).__name__}` is not allowed; use + - * /", node)
    left, right = _expr(node.left, ctx), _expr(node.right, ctx)
    t = arith_type(op, left.type, right.type, is_literal(left), is_literal(right))
    if isinstance(t, str):
        raise ExprError(t, node, _TYPE)
    return ir.BinOp(t, op, left, right)


_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}


def _check_enum_literal(enum_t: Type, lit: ir.Expr, node: ast.AST) -> None:
    if isinstance(lit, ir.Const) and isinstance(lit.value, str) and lit.value not in enum_t.values:
        hint = did_you_mean(lit.value, enum_t.values)
        raise ExprError(
            f"'{lit.value}' is not one of {', '.join(enum_t.values)}{hint}",
            node,
            ProblemKind.UNKNOWN_VALUE,
        )


def _compare(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.Compare)
    parts: list[ir.Expr] = []
    left_node: ast.AST = node.left
    left = _expr(left_node, ctx)
    last = len(node.ops) - 1
    for i, (op_node, right_node) in enumerate(zip(node.ops, node.comparators, strict=True)):
        parts.append(_compare_one(op_node, left, left_node, right_node, ctx, node))
        if i < last:
            left_node = right_node
            left = _expr(right_node, ctx)
    return parts[0] if len(parts) == 1 else ir.BoolOp(BOOL, "and", tuple(parts))


def _compare_one(
    op_node: ast.cmpop, left: ir.Expr, left_node: ast.AST, right_node: ast.AST, ctx: _Ctx, node: ast.AST
) -> ir.Expr:
    if isinstance(op_node, ast.Is | ast.IsNot):
        if not (isinstance(right_node, ast.Constant) and right_node.value is None):
            raise ExprError("`is` may only test `is None` / `is not None`", node)
        if not left.type.nullable:
            raise ExprError(f"this value is never None ({left.type.describe()})", left_node, _TYPE)
        return ir.IsNone(BOOL, left, isinstance(op_node, ast.IsNot))
    if isinstance(op_node, ast.In | ast.NotIn):
        return _membership(left, right_node, ctx, isinstance(op_node, ast.NotIn), node)
    op = _CMPOPS[type(op_node)]
    right = _expr(right_node, ctx)
    if right.type.kind == "null" or left.type.kind == "null":
        raise ExprError("compare with None using `is None` / `is not None`", node)
    if left.type.kind == "enum" and right.type.kind == "str":
        _check_enum_literal(left.type, right, right_node)
        right = ir.Const(left.type, getattr(right, "value", None))
    elif right.type.kind == "enum" and left.type.kind == "str":
        _check_enum_literal(right.type, left, left_node)
        left = ir.Const(right.type, getattr(left, "value", None))
    why = comparable(op, left.type, right.type, is_literal(left), is_literal(right))
    if why:
        raise ExprError(why, node, _TYPE)
    return ir.Compare(BOOL, op, left, right)


def _membership(item: ir.Expr, right_node: ast.AST, ctx: _Ctx, negate: bool, node: ast.AST) -> ir.Expr:
    if isinstance(right_node, ast.Tuple | ast.List | ast.Set):
        values = []
        for elt in right_node.elts:
            c = _expr(elt, ctx)
            if not isinstance(c, ir.Const):
                raise ExprError("`in (...)` needs literal values", elt, _TYPE)
            if item.type.kind == "enum":
                _check_enum_literal(item.type, c, elt)
            values.append(c.value)
        return ir.InSet(BOOL, item, frozenset(values), None, negate)
    parts = _dotted(right_node)
    name = ".".join(parts) if parts else ""
    if name and ctx.resolver.is_registry(name):
        if item.type.kind not in ("str", "enum"):
            raise ExprError(f"registry keys are text; got {item.type.describe()}", node, _TYPE)
        return ir.InSet(BOOL, item, None, name, negate)
    raise ExprError("`in` needs a literal list like ('a', 'b') or a registry like `registry.relatives`", node, _TYPE)


def _ifexp(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.IfExp)
    cond = _expr(node.test, ctx)
    _require_bool(cond, node.test, "the condition of `x if c else y`")
    then, other = _expr(node.body, ctx), _expr(node.orelse, ctx)
    t = unify([then, other])
    if isinstance(t, str):
        raise ExprError(f"both branches of `x if c else y` must have one type: {t}", node, _TYPE)
    return ir.IfElse(t, cond, then, other)


# ---------------------------------------------------------------- calls


def _call(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    assert isinstance(node, ast.Call)
    if not isinstance(node.func, ast.Name):
        raise ExprError("only built-in functions may be called", node)
    fn = node.func.id
    if node.keywords:
        raise ExprError(f"`{fn}` takes no keyword arguments", node)
    if fn in _AGGREGATES:
        return _aggregate(fn, node, ctx)
    handler = _FUNCTIONS.get(fn)
    if handler is None:
        names = list(_FUNCTIONS) + list(_AGGREGATES)
        raise ExprError(f"unknown function `{fn}`{did_you_mean(fn, names)}", node, _NAME)
    args = tuple(_expr(a, ctx) for a in node.args)
    return handler(fn, args, node)


def _fn_minmax(fn: str, args: tuple[ir.Expr, ...], node: ast.AST) -> ir.Expr:
    if len(args) < 2:
        raise ExprError(f"`{fn}` needs at least two values", node, _TYPE)
    t = unify(list(args))
    if isinstance(t, str) or t.kind not in ("int", "decimal", "money", "date"):
        raise ExprError(
            f"`{fn}` needs numbers or dates of one kind, got {t if isinstance(t, str) else t.describe()}", node, _TYPE
        )
    return ir.Call(t, fn, args)


def _fn_round(fn: str, args: tuple[ir.Expr, ...], node: ast.AST) -> ir.Expr:
    if len(args) != 1 or not args[0].type.numeric:
        raise ExprError(f"`{fn}` takes one number (rounds to a whole yuan)", node, _TYPE)
    return ir.Call(args[0].type, fn, args)


def _fn_abs(fn: str, args: tuple[ir.Expr, ...], node: ast.AST) -> ir.Expr:
    if len(args) != 1 or not args[0].type.numeric:
        raise ExprError("`abs` takes one number", node, _TYPE)
    return ir.Call(args[0].type, fn, args)


def _fn_years_between(fn: str, args: tuple[ir.Expr, ...], node: ast.AST) -> ir.Expr:
    if len(args) != 2 or any(a.type.kind != "date" for a in args):
        raise ExprError("`years_between(from_date, to_date)` takes two dates", node, _TYPE)
    return ir.Call(Type("int", any(a.type.nullable for a in args)), fn, args)


def _fn_add_months(fn: str, args: tuple[ir.Expr, ...], node: ast.AST) -> ir.Expr:
    if len(args) != 2 or args[0].type.kind != "date" or args[1].type.kind != "int":
        raise ExprError("`add_months(date, months)` takes a date and a whole number", node, _TYPE)
    return ir.Call(Type("date", args[0].type.nullable or args[1].type.nullable), fn, args)


_FUNCTIONS: dict[str, Callable[[str, tuple[ir.Expr, ...], ast.AST], ir.Expr]] = {
    "min": _fn_minmax,
    "max": _fn_minmax,
    "roundup": _fn_round,
    "rounddown": _fn_round,
    "abs": _fn_abs,
    "years_between": _fn_years_between,
    "add_months": _fn_add_months,
}
_AGGREGATES = ("sum", "count", "any", "all")


def _generator(node: ast.AST, ctx: _Ctx) -> tuple[str, ir.Expr, ir.Expr | None, _Ctx, ast.AST]:
    assert isinstance(node, ast.GeneratorExp | ast.ListComp)
    if len(node.generators) != 1:
        raise ExprError("use one `for` per aggregation", node)
    gen = node.generators[0]
    if not isinstance(gen.target, ast.Name):
        raise ExprError("the loop variable must be a plain name like `m`", gen.target)
    if ctx.var or ctx.scope == "member":
        raise ExprError(
            "aggregation over members inside a per-member expression; declare it as a household value",
            node,
        )
    source = _expr(gen.iter, ctx)
    if source.type.kind != "members":
        raise ExprError(f"can only loop over members, not {source.type.describe()}", gen.iter, _TYPE)
    inner = _Ctx(ctx.text, ctx.resolver, ctx.scope, gen.target.id)
    cond: ir.Expr | None = None
    if gen.ifs:
        conds = tuple(_expr(c, inner) for c in gen.ifs)
        for c_node, c in zip(gen.ifs, conds, strict=True):
            _require_bool(c, c_node, "`if`")
        cond = conds[0] if len(conds) == 1 else ir.BoolOp(BOOL, "and", conds)
    return gen.target.id, source, cond, inner, node.elt


def _listcomp(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    var, source, cond, _inner, elt = _generator(node, ctx)
    if not (isinstance(elt, ast.Name) and elt.id == var):
        raise ExprError(f"a member list must be `[{var} for {var} in ... if ...]`", node)
    return ir.Filter(MEMBERS, var, source, cond)


def _aggregate(fn: str, node: ast.Call, ctx: _Ctx) -> ir.Expr:
    if len(node.args) != 1:
        raise ExprError(f"`{fn}` takes one generator like `{fn}(m.x for m in counted_members)`", node)
    arg = node.args[0]
    if not isinstance(arg, ast.GeneratorExp):
        coll = _expr(arg, ctx)
        if fn == "count" and coll.type.kind == "members":
            return ir.Agg(INT, "count", "", coll, None, None)
        raise ExprError(f"`{fn}` takes a generator like `{fn}(m.x for m in counted_members)`", arg)
    var, source, cond, inner, elt_node = _generator(arg, ctx)
    if fn == "count":
        if not (isinstance(elt_node, ast.Name) and elt_node.id == var):
            raise ExprError(f"write `count({var} for {var} in ... if condition)`", arg)
        return ir.Agg(INT, fn, var, source, None, cond)
    elt = _expr(elt_node, inner)
    if fn == "sum":
        if not elt.type.numeric:
            raise ExprError(f"`sum` needs numbers, got {elt.type.describe()}", elt_node, _TYPE)
        return ir.Agg(Type(elt.type.kind), fn, var, source, elt, cond)
    _require_bool(elt, elt_node, f"`{fn}`")
    return ir.Agg(BOOL, fn, var, source, elt, cond)


def _reject_lone_generator(node: ast.AST, ctx: _Ctx) -> ir.Expr:
    raise ExprError("a generator must be inside sum/count/any/all", node)


_TRANSLATORS: dict[type[ast.AST], Callable[[ast.AST, _Ctx], ir.Expr]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.Attribute: _name,
    ast.BoolOp: _boolop,
    ast.UnaryOp: _unary,
    ast.BinOp: _binop,
    ast.Compare: _compare,
    ast.IfExp: _ifexp,
    ast.Call: _call,
    ast.ListComp: _listcomp,
    ast.GeneratorExp: _reject_lone_generator,
}
