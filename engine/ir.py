"""The typed intermediate representation every backend compiles from.

Expressions are small immutable trees. Names are resolved and types checked when the
tree is built (``engine.expressions``), so a backend never meets an unknown name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.types import Type

__all__ = [
    "Agg",
    "BinOp",
    "BoolOp",
    "Call",
    "Compare",
    "Const",
    "Expr",
    "Filter",
    "IfElse",
    "InSet",
    "IsNone",
    "Not",
    "Records",
    "Ref",
]


@dataclass(frozen=True)
class Expr:
    type: Type


@dataclass(frozen=True)
class Const(Expr):
    value: Any


@dataclass(frozen=True)
class Ref(Expr):
    """A named value: an input field, parameter, derived value, rule or output.

    ``scope`` is ``household`` or ``member``; a member ref reads the member being visited
    (``var`` names the generator variable, or is empty for a per-member definition).
    """

    name: str
    scope: str
    var: str = ""


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # "and" | "or"
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # "+", "-", "*", "/"
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare(Expr):
    op: str  # "<", "<=", ">", ">=", "==", "!="
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InSet(Expr):
    """``item in {literals}`` or ``item in registry.name``; ``negate`` for ``not in``."""

    item: Expr
    values: frozenset[Any] | None
    registry: str | None
    negate: bool = False


@dataclass(frozen=True)
class IsNone(Expr):
    operand: Expr
    negate: bool = False


@dataclass(frozen=True)
class IfElse(Expr):
    cond: Expr
    then: Expr
    other: Expr


@dataclass(frozen=True)
class Call(Expr):
    """A built-in function: min, max, roundup, rounddown, abs, years_between, add_months."""

    fn: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Filter(Expr):
    """``[m for m in members if cond]``: a member collection."""

    var: str
    source: Expr
    cond: Expr | None


@dataclass(frozen=True)
class Agg(Expr):
    """``sum|count|any|all(elt for var in source if cond)``."""

    fn: str
    var: str
    source: Expr
    elt: Expr | None
    cond: Expr | None


@dataclass(frozen=True)
class Records(Expr):
    """Whether a subject has rows in a registry of dated rows: those of the listed categories
    (or of the categories a list parameter holds), each in its category's window unless
    ``window`` names one for all, optionally only those starting on/after or before a date.
    True when any row is found; a backend also reports the rows of each category."""

    registry: str
    categories: tuple[str, ...]
    categories_from: Ref | None
    window: str | None
    start_on_or_after: Ref | None
    start_before: Ref | None
