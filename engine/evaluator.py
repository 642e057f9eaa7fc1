"""Decide one household with the scalar backend and explain every rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.decision import Decision, RuleTrace
from engine.errors import EvaluateError, FieldProblem, InputError
from engine.loader import BUILTIN_FIELDS
from engine.parameters import ParameterResolver
from engine.registries import Registries
from engine.ruleset import Ruleset, Symbol
from engine.scalar import NA_PREFIX, ROW_PREFIX, Fn, ScalarPlan

__all__ = ["Evaluator"]

_TRACE_KINDS = ("rule", "case", "table", "finding")
_FEN = Decimal("0.01")


class Evaluator:
    """Compiled once per ruleset; ``decide`` is then cheap and thread-compatible.

    >>> from engine import load
    >>> ev = Evaluator(load("rules"))
    >>> d = ev.decide({"household_id": "x", "decision_date": "2019-08-01", "local_hukou": True,
    ...     "members": [{"person_id": "320684195001010014", "relation": "head",
    ...       "birth_date": "1950-01-01", "monthly_income": "650.00", "labor_capacity": "none",
    ...       "disability": "none", "serious_illness": False, "employed_recently": False,
    ...       "empty_nest": False, "entitled_veteran_family": False, "fixed_income": False,
    ...       "has_supporter": True, "enrolling_in_school": False}],
    ...     "assets": {"financial_assets": "0", "non_exempt_vehicles": 0, "houses": 1,
    ...       "commercial_property": False, "registered_business": False}})
    >>> d.fields["dibao_status"], str(d.fields["dibao_amount"])
    ('eligible', '140.00')
    """

    def __init__(self, ruleset: Ruleset, registries: Registries | None = None) -> None:
        self.ruleset = ruleset
        self.registries = registries or Registries.empty(ruleset)
        self.plan = ScalarPlan(ruleset)
        self.params = ParameterResolver(ruleset)
        rs = ruleset
        self._fields: list[tuple[str, Fn]] = [
            (f, self.plan.accessor(f)) for f in rs.decision_fields if f not in BUILTIN_FIELDS
        ]
        self._findings = [(s.code, self.plan.accessor(s.name)) for s in rs.findings()]
        self._household_trace = [(s, self.plan.accessor(s.name)) for s in self._traced("household")]
        self._member_trace = [(s, self.plan.accessor(s.name, "member")) for s in self._traced("member")]
        self._order = {(s.scope, s.name): i for i, s in enumerate(self.traced())}
        self._explain = self.plan.accessor(rs.explain_members)
        self._region_default = rs.default_region
        self._money_fields = [f for f, _ in self._fields if (t := rs.symbol(f).type) is not None and t.kind == "money"]
        self._computed = tuple(f"registry.{n}" for n, spec in rs.registries.items() if spec.computed)

    def _traced(self, scope: str) -> list[Symbol]:
        return [s for (sc, _), s in self.ruleset.symbols.items() if sc == scope and s.kind in _TRACE_KINDS]

    def traced(self) -> list[Symbol]:
        """Every explained definition: household ones, then per-member ones (the bulk order)."""
        return self._traced("household") + self._traced("member")

    def with_registries(self, registries: Registries) -> Evaluator:
        other = Evaluator.__new__(Evaluator)
        other.__dict__.update(self.__dict__)
        other.registries = registries
        return other

    # ------------------------------------------------------------ deciding

    def decide(
        self,
        raw: Mapping[str, Any],
        *,
        duplicates: frozenset[str] = frozenset(),
        today: dt.date | None = None,
    ) -> Decision:
        """Validate one household record (RECORDS.md JSON) and decide it."""
        hh, members = self.ruleset.record.validate(raw, today)
        return self.decide_record(hh, members, duplicates=duplicates)

    def decide_record(
        self,
        hh: dict[str, Any],
        members: list[dict[str, Any]],
        *,
        duplicates: frozenset[str] = frozenset(),
    ) -> Decision:
        """Decide an already validated household (as ``RecordSchema.validate`` returns)."""
        on: dt.date = hh["decision_date"]
        region = hh.get("region") or self._region_default
        try:
            values, uses = self.params.resolve(region, on)
        except EvaluateError as exc:
            raise InputError(
                [FieldProblem(exc.field or "decision_date", exc.message, exc.rule_id)], str(hh.get("household_id"))
            ) from exc
        env: dict[str, Any] = dict(values)
        env.update(hh)
        env["members"] = members
        for name, reg in self.registries.by_name.items():
            env[f"registry.{name}"] = reg.keys
        if duplicates:
            for key in self._computed:
                env[key] = env[key] | duplicates
        hid = str(hh.get("household_id"))
        try:
            fields = {name: acc(env, None) for name, acc in self._fields}
            for name in self._money_fields:
                fields[name] = Decimal(fields[name]).quantize(_FEN, ROUND_HALF_UP)
            findings = [code for code, acc in self._findings if acc(env, None)]
            # Evaluate every traced rule now, so the explanation is complete and fixed; it is
            # only rendered into dicts and messages when asked for.
            for _sym, acc in self._household_trace:
                acc(env, None)
            explained = self._explain(env, None)
            for m in explained:
                for _sym, acc in self._member_trace:
                    acc(env, m)
        except EvaluateError as exc:
            raise InputError([FieldProblem(exc.field or "(household)", exc.message, exc.rule_id)], hid) from exc
        return Decision(
            household_id=hid,
            decision_date=on,
            ruleset_version=self.ruleset.ruleset_version,
            fields=fields,
            findings=findings,
            parameters=uses,
            registries=self.registries.versions(),
            field_order=self.ruleset.decision_fields,
            trace=lambda: self._trace(env, explained),
        )

    def _trace(self, env: dict[str, Any], explained: list[dict[str, Any]]) -> list[RuleTrace]:
        out: list[RuleTrace] = []
        for sym, acc in self._household_trace:
            out.append(self._one(sym, acc(env, None), env, env, None))
        for m in explained:
            pid = m.get("person_id")
            for sym, acc in self._member_trace:
                out.append(self._one(sym, acc(env, m), m, env, pid))
        return out

    def _shown(self, scope: str, name: str, local: dict[str, Any], env: dict[str, Any]) -> Any:
        where = local if scope == "member" else env
        if name in where:
            return where[name]
        try:  # a message may show a value no decision needed, e.g. per-capita income
            return self.plan.accessor(name, scope)(env, local if scope == "member" else None)
        except (EvaluateError, KeyError, TypeError):
            return None

    def _one(self, sym: Symbol, value: Any, local: dict[str, Any], env: dict[str, Any], pid: str | None) -> RuleTrace:
        row = None
        if local.get(NA_PREFIX + sym.name):
            outcome = "not_applicable"
        elif sym.kind == "rule":
            outcome = "pass" if value else "fail"
        elif sym.kind == "table":
            r = local.get(ROW_PREFIX + sym.name)
            row = r.id if r is not None else None
            outcome = "fired" if r is not None else "not_fired"
        else:
            outcome = "fired" if value else "not_fired"
        vals = {name: self._shown(scope, name, local, env) for scope, name in sym.shown}
        rule_id = row if sym.kind == "table" and row else sym.name
        title = sym.title
        row_index = 0
        if sym.kind == "table" and row:
            table = sym.table
            assert table is not None
            rows = [r for r in [*table.rows, table.otherwise] if r is not None]
            row_index = next((i for i, r in enumerate(rows) if r.id == row), 0)
            title = rows[row_index].title or sym.title
        reported = sym.report == "always" or (
            outcome == "fail"
            if sym.report == "fail"
            else outcome in ("pass", "fired")
            if sym.report in ("fire", "pass")
            else False
        )
        order = (0 if sym.scope == "household" else 1, self._order[(sym.scope, sym.name)], row_index)
        return RuleTrace(
            rule_id,
            sym.kind,
            sym.program,
            outcome,
            vals,
            title,
            sym.legal_basis,
            sym.messages,
            pid,
            row,
            reported,
            order,
        )
