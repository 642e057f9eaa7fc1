"""The typing rules of rule expressions: what arithmetic, comparison and alternatives
(branches, min/max arguments) give or refuse, on types alone. Used by the expression
parser (``engine.expressions``) and the outcome checks."""

from __future__ import annotations

from engine import ir
from engine.types import Type

__all__ = ["NULL", "arith_type", "comparable", "is_literal", "unify"]

NULL = Type("null", nullable=True)


def is_literal(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and e.type.numeric


def arith_type(op: str, lt: Type, rt: Type, l_lit: bool = False, r_lit: bool = False) -> Type | str:
    """Result type of ``lt op rt``, or a message saying why the operation is not allowed."""
    if not (lt.numeric and rt.numeric):
        return f"`{op}` needs numbers, got {lt.describe()} and {rt.describe()}"
    lk, rk = lt.kind, rt.kind
    nullable = lt.nullable or rt.nullable
    if op in "+-":
        if lk == rk:
            return Type(lk, nullable)
        if "money" in (lk, rk):
            if (lk == "money" and r_lit) or (rk == "money" and l_lit):
                return Type("money", nullable)
            return f"cannot {'add' if op == '+' else 'subtract'} money (yuan) and a plain number"
        return Type("decimal", nullable)
    if op == "*":
        if lk == rk == "money":
            return "cannot multiply money by money"
        if "money" in (lk, rk):
            return Type("money", nullable)
        return Type("int" if lk == rk == "int" else "decimal", nullable)
    # division
    if rk == "money":
        return "cannot divide by money; compare with multiplication instead (`T < standard * n`)"
    if lk == "money":
        return Type("money", nullable)
    return Type("decimal", nullable)


def comparable(op: str, lt: Type, rt: Type, l_lit: bool, r_lit: bool) -> str | None:
    """Why ``lt op rt`` is not allowed, or None."""
    if lt.numeric and rt.numeric:
        money = (lt.kind == "money", rt.kind == "money")
        if money[0] != money[1] and not (l_lit or r_lit):
            return f"cannot compare {lt.describe()} with {rt.describe()}"
        return None
    if op in ("==", "!=") and lt.kind == rt.kind and lt.kind in ("bool", "str", "enum", "date"):
        return None
    if lt.kind == rt.kind == "date":
        return None
    return f"cannot compare {lt.describe()} with {rt.describe()}"


def unify(exprs: list[ir.Expr]) -> Type | str:
    """One type for several alternatives (branches, min/max arguments), or why not."""
    real = [e for e in exprs if e.type.kind != "null"]
    nullable = len(real) != len(exprs) or any(e.type.nullable for e in real)
    if not real:
        return NULL
    non_lit = [e for e in real if not is_literal(e)] or real
    kinds = {e.type.kind for e in non_lit}
    if len(kinds) > 1:
        if kinds <= {"int", "decimal"}:
            kinds = {"decimal"}
        else:
            return " and ".join(sorted(e.type.describe() for e in non_lit))
    kind = kinds.pop()
    if kind != "money" and any(is_literal(e) and e.type.kind == "decimal" for e in real) and kind == "int":
        kind = "decimal"
    if kind in ("int", "decimal") and any(e.type.kind == "money" for e in real):
        return "money (yuan) and a plain number"
    base = next(e.type for e in non_lit)
    return Type(kind, nullable, base.values)
