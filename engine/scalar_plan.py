"""The scalar backend's named values: one household at a time, every value kept for the
explanation.

Each definition of the plan compiles once (``engine.scalar``'s closures for its expressions)
into an accessor ``fn(env, member)``. Values are memoized in the household's ``env`` dict
(or the member's dict), so a value is computed at most once per household and is there
afterwards for the trace.
"""

from __future__ import annotations

from collections.abc import Callable
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
from engine.scalar import Fn, compile_expr, guard

__all__ = ["NA_PREFIX", "ROW_PREFIX", "ScalarPlan"]

_MISSING = object()
NA_PREFIX = "#na:"
ROW_PREFIX = "#row:"


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
            inp = guard(self._expr(table.input), table.input)
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
