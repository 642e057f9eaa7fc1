"""What the loader fills in while it checks: one mutable draft per name, frozen into its
``engine.plan`` class once every check has passed (``engine.loading.freeze``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import ir
from engine.plan import Arm, Definition, Lookup, TableRow, Text
from engine.source import Pos
from engine.types import Type

__all__ = ["Draft", "OutcomeBody", "TableBody"]


@dataclass(frozen=True)
class TableBody:
    hit_policy: str  # unique | first | max
    input: ir.Expr | None
    outputs: dict[str, Type]
    rows: tuple[TableRow, ...]
    otherwise: TableRow | None
    max_by: str | None
    lookup: Lookup | None = None


@dataclass(frozen=True)
class OutcomeBody:
    field: str
    cases: tuple[Arm, ...]  # the otherwise case last, with cond None


@dataclass
class Draft:
    """A name being checked; ``kind`` is the plan class it is frozen into."""

    name: str
    scope: str  # household | member
    kind: type[Definition]
    type: Type | None = None
    title: Text = field(default_factory=dict)
    legal_basis: str = ""
    program: str = ""
    pos: Pos = Pos("<engine>", 0, 0)
    expr: ir.Expr | None = None
    applies: ir.Expr | None = None
    report: str = "never"  # fail | fire | always | never
    messages: dict[str, Text] = field(default_factory=dict)
    shown: tuple[tuple[str, str], ...] = ()  # (scope, name) of values an explanation shows
    table: TableBody | None = None
    outcome: OutcomeBody | None = None
    owner: str = ""  # table or outcome a table_output / set / case belongs to
    column: str = ""  # the table column or outcome field
    code: str = ""  # finding code
    raw: Any = None  # the definition as read from its file
