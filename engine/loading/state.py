"""What the declaration phases build and the later phases read: one object, passed along."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from engine import ir
from engine.errors import Problem, ProblemKind
from engine.record import RecordSchema
from engine.ruleset import Parameter, RegistrySpec
from engine.source import YStr

from .draft import Draft

__all__ = ["Declared", "ref_nodes", "refs"]


@dataclass
class Declared:
    """Every declared name, with the problems found so far (in the order found)."""

    problems: list[Problem]
    record: RecordSchema | None = None
    symbols: dict[tuple[str, str], Draft] = field(default_factory=dict)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    registries: dict[str, RegistrySpec] = field(default_factory=dict)
    programs: list[dict[str, Any]] = field(default_factory=list)
    formulas: dict[tuple[str, str, dt.date], YStr] = field(default_factory=dict)  # parameter formulas as written

    def add(self, sym: Draft) -> None:
        """Declare ``sym``, unless its name is taken in its scope (then say where)."""
        key = (sym.scope, sym.name)
        other = self.symbols.get(key)
        if other is not None:
            self.problems.append(
                sym.pos.problem(
                    ProblemKind.DUPLICATE_ID,
                    f"`{sym.name}` is already defined at {other.pos.file}:{other.pos.line}:{other.pos.col}",
                    sym.name,
                )
            )
            return
        self.symbols[key] = sym

    def default_region(self) -> str:
        """The record's default region, if it declares one."""
        if self.record:
            for spec in self.record.household:
                if spec.name == "region" and spec.has_default:
                    return str(spec.default)
        return ""


def refs(expr: ir.Expr | None) -> tuple[str, ...]:
    """Names an expression reads, in first-use order."""
    return tuple(dict.fromkeys(r.name for r in ref_nodes(expr)))


def ref_nodes(expr: ir.Expr | None) -> list[ir.Ref]:
    """Every name reference in an expression (registries as household refs), in order."""
    seen: list[ir.Ref] = []

    def walk(e: Any) -> None:
        if isinstance(e, ir.Ref):
            seen.append(e)
        elif isinstance(e, ir.InSet) and e.registry:
            name = e.registry if e.registry.startswith("registry.") else f"registry.{e.registry}"
            seen.append(ir.Ref(e.type, name, "household"))
        if isinstance(e, ir.Expr):
            for v in vars(e).values():
                if isinstance(v, ir.Expr):
                    walk(v)
                elif isinstance(v, tuple):
                    for x in v:
                        walk(x)

    walk(expr)
    return seen
