"""The type check's machinery: names resolve to types on demand, each definition is checked
once (in dependency order, cycles reported), and the checks every definition kind shares."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from engine import ir
from engine.errors import ProblemKind, did_you_mean
from engine.expressions import ExprError, Resolver, parse_expression
from engine.plan import Case, Definition, Derived, Finding, InputField, Outcome, ParameterRef, RegistryRef, Rule, Table
from engine.source import Pos, YMap, YStr, pos_of
from engine.types import Type

from .draft import Draft
from .state import Declared

__all__ = ["PLACEHOLDER", "AlreadyReported", "Checker", "Handler"]

PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")

# kinds whose check does more than give a type: checked when first read even if typed
_CHECKED_ON_READ = (Table, Outcome, Case, Rule, Finding, Derived)


class AlreadyReported(Exception):
    """A dependency already failed and was reported; stop without a second error."""


Handler = Callable[["Checker", Draft], None]


class Checker:
    """Resolves names for the expression parser, checking each definition when first read."""

    def __init__(self, declared: Declared, checks: Mapping[type[Definition], Handler]) -> None:
        self.d = declared
        self.problems = declared.problems
        self.symbols = declared.symbols
        self.checks = checks
        self.stack: list[tuple[str, str]] = []
        self.failed: set[tuple[str, str]] = set()
        self.done: set[tuple[str, str]] = set()
        self.parameters_only = _ParametersOnly(self)

    # ------------------------------------------------------------ the resolver

    def lookup(self, name: str, scope: str) -> Type | None:
        sym = self.symbols.get((scope, name))
        return None if sym is None else self.type_of(sym)

    def type_of(self, sym: Draft) -> Type | None:
        """The symbol's type, checking it first if need be."""
        key = (sym.scope, sym.name)
        if key in self.failed:
            raise AlreadyReported
        if sym.type is None or (sym.kind in _CHECKED_ON_READ and key not in self.done):
            self.check(sym)
        if sym.type is None:
            raise AlreadyReported
        return sym.type

    def names(self, scope: str) -> list[str]:
        return [n for (sc, n) in self.symbols if sc == scope]

    def is_registry(self, name: str) -> bool:
        return name in self.d.registries or (name.startswith("registry.") and name[9:] in self.d.registries)

    # ------------------------------------------------------------ checking in dependency order

    def check_all(self) -> None:
        for sym in list(self.symbols.values()):
            if sym.kind not in (InputField, RegistryRef):
                with contextlib.suppress(AlreadyReported):
                    self.check(sym)

    def check(self, sym: Draft) -> None:
        key = (sym.scope, sym.name)
        if key in self.done:
            return
        if key in self.failed:
            raise AlreadyReported
        if key in self.stack:
            cycle = [n for _, n in self.stack[self.stack.index(key) :]] + [sym.name]
            self.problems.append(
                sym.pos.problem(ProblemKind.CYCLE, "definitions depend on themselves: " + " -> ".join(cycle), sym.name)
            )
            for k in self.stack[self.stack.index(key) :]:
                self.failed.add(k)
            raise AlreadyReported
        self.stack.append(key)
        try:
            self.checks[sym.kind](self, sym)
            self.done.add(key)
        except AlreadyReported:
            self.failed.add(key)
            raise
        finally:
            self.stack.pop()
        if sym.type is None:
            self.failed.add(key)

    # ------------------------------------------------------------ checks every kind shares

    def expr(self, text: Any, pos: Pos, scope: str, rule_id: str, resolver: Resolver | None = None) -> ir.Expr | None:
        """Parse and type an expression; on an error, report it where it is in the file."""
        if isinstance(text, bool | int):
            text = str(text)
        if not isinstance(text, str):
            self.problems.append(pos.problem(ProblemKind.BAD_TYPE, "an expression must be text", rule_id))
            return None
        try:
            return parse_expression(text, resolver or self, scope)
        except ExprError as exc:
            base = text.pos if isinstance(text, YStr) else pos
            quoted = 1 if isinstance(text, YStr) and text.style in ("'", '"') else 0
            if exc.line <= 1:
                where = Pos(base.file, base.line, base.col + quoted + exc.col)
            else:
                where = Pos(base.file, base.line + exc.line - 1, exc.col + 1)
            self.problems.append(where.problem(exc.kind, exc.message, rule_id))
            return None

    def expect_type(self, expr: ir.Expr, want: Type, pos: Pos, rule_id: str) -> None:
        got = expr.type
        if got.kind == "null" and want.nullable:
            return
        same = (
            got.kind == want.kind
            or (want.kind == "decimal" and got.kind == "int")
            or (want.kind == "money" and isinstance(expr, ir.Const) and got.numeric)
        )
        if want.kind == "enum" and got.kind == "enum":
            same = True
        if not same:
            self.problems.append(
                pos.problem(ProblemKind.TYPE_ERROR, f"expected {want.describe()}, got {got.describe()}", rule_id)
            )
        elif got.nullable and not want.nullable:
            self.problems.append(
                pos.problem(
                    ProblemKind.TYPE_ERROR,
                    f"this may be None but the declared type `{want.kind}` is not optional (write `{want.kind}?`)",
                    rule_id,
                )
            )

    def condition(self, item: YMap, key: str, scope: str, rid: str) -> ir.Expr | None:
        """A true/false expression (``when``, ``applies``) that is never None."""
        expr = self.expr(item.get(key), pos_of(item, key), scope, rid)
        if expr is not None and expr.type.kind != "bool":
            self.problems.append(
                pos_of(item, key).problem(
                    ProblemKind.TYPE_ERROR, f"`{key}` must be true/false, got {expr.type.describe()}", rid
                )
            )
            return None
        if expr is not None and expr.type.nullable:
            self.problems.append(
                pos_of(item, key).problem(ProblemKind.TYPE_ERROR, f"`{key}` may be None; test `is None` first", rid)
            )
        return expr

    def literal(self, value: Any, t: Type, pos: Pos, rule_id: str) -> Any:
        """A value written in a rule file, as ``t`` holds it (money to the fen)."""
        if isinstance(value, str) and t.kind in ("money", "decimal"):
            with contextlib.suppress(ArithmeticError):
                value = Decimal(value)
        if not _LITERALS.get(t.kind, lambda x: True)(value):
            self.problems.append(pos.problem(ProblemKind.TYPE_ERROR, f"`{value}` is not {t.describe()}", rule_id))
            return value
        if t.kind in ("money", "decimal"):
            value = Decimal(value)
            if not value.is_finite() or value.adjusted() >= 15:  # also keeps quantize() from overflowing
                message = f"`{value}` is too large: numbers in rule files are below 10^15"
                self.problems.append(pos.problem(ProblemKind.OUT_OF_RANGE, message, rule_id))
                return value
            if t.kind == "money":
                value = value.quantize(Decimal("0.01"))
        return value

    def check_messages(self, sym: Draft) -> None:
        """Every ``{name}`` in a message is a name the explanation can show."""
        for texts in sym.messages.values():
            for text in texts.values():
                for name in PLACEHOLDER.findall(text):
                    if ("household", name) in self.symbols or (
                        sym.scope == "member" and ("member", name) in self.symbols
                    ):
                        continue
                    pool = self.names("household") + (self.names("member") if sym.scope == "member" else [])
                    self.problems.append(
                        sym.pos.problem(
                            ProblemKind.UNKNOWN_NAME,
                            f"message placeholder `{{{name}}}` is not a known name{did_you_mean(name, pool)}",
                            sym.name,
                        )
                    )


_LITERALS: dict[str, Callable[[Any], bool]] = {
    "money": lambda x: isinstance(x, int | Decimal) and not isinstance(x, bool),
    "decimal": lambda x: isinstance(x, int | Decimal) and not isinstance(x, bool),
    "int": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "bool": lambda x: isinstance(x, bool),
    "date": lambda x: isinstance(x, dt.date),
    "str": lambda x: isinstance(x, str),
}


class _ParametersOnly:
    """The resolver for parameter formulas: they may read other parameters only."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def lookup(self, name: str, scope: str) -> Type | None:
        sym = self.checker.symbols.get((scope, name))
        return self.checker.type_of(sym) if sym is not None and sym.kind is ParameterRef else None

    def names(self, scope: str) -> list[str]:
        return [n for (sc, n), s in self.checker.symbols.items() if sc == scope and s.kind is ParameterRef]

    def is_registry(self, name: str) -> bool:
        return self.checker.is_registry(name)
