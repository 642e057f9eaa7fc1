"""Decide one household with the ruleset compiled to Python source, and explain every rule.

``Evaluator`` runs the generated function of ``engine.codegen.program``; the explanation is
built from what that function kept, only when asked for. ``ClosureEvaluator`` decides the
same way through ``engine.scalar_plan``'s closures: the reference the generated code is checked
against, and a baseline for the benchmarks.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.codegen import Program, compile_ruleset
from engine.decision import Decision, RuleTrace
from engine.errors import EvaluateError, FieldProblem, InputError
from engine.labels import Labels
from engine.member_lists import MemberLists
from engine.parameters import ParameterResolver, ParameterUse
from engine.plan import BUILTIN_FIELDS, Table, TableRow, Text, Traced
from engine.registries import Registries
from engine.ruleset import Ruleset
from engine.scalar import Fn
from engine.scalar_plan import NA_PREFIX, ROW_PREFIX, ScalarPlan

__all__ = ["ClosureEvaluator", "Evaluator"]

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
        self.params = ParameterResolver(ruleset)
        self._field_names = [f for f in ruleset.decision_fields if f not in BUILTIN_FIELDS]
        self.labels = Labels.of(ruleset)
        self._explained = {s.key: _Explained.of(s, i, self.labels.human) for i, s in enumerate(self.traced())}
        self._region_default = ruleset.default_region
        self._computed = tuple(f"registry.{n}" for n, spec in ruleset.registries.items() if spec.computed)
        self._program: Program | None = None
        self._closures_only = False
        self._render_order: tuple[list[_Explained], list[_Explained]] | None = None
        self._version = ruleset.ruleset_version
        self._lists = MemberLists(ruleset)
        self._use(registries or Registries.empty(ruleset))

    def _use(self, registries: Registries) -> None:
        self._reference: ClosureEvaluator | None = None
        self.registries = registries
        self._keys = {f"registry.{name}": reg.keys for name, reg in registries.by_name.items()}
        self._versions = registries.versions()

    @property
    def program(self) -> Program | None:
        """The generated household function (compiled on first use, once per evaluator), or
        None for a ruleset too large for Python to compile as one function (thousands of
        table rows): that one is decided by the closure backend, as before."""
        if self._program is None and not self._closures_only:
            try:
                self._program = compile_ruleset(self.ruleset, self._field_names)
            except RecursionError:
                self._closures_only = True
        return self._program

    def _traced(self, scope: str) -> list[Traced]:
        return self.ruleset.plan.traced(scope)

    def traced(self) -> list[Traced]:
        """Every explained definition: household ones, then per-member ones (the bulk order)."""
        return self._traced("household") + self._traced("member")

    def with_registries(self, registries: Registries) -> Evaluator:
        """The same compiled ruleset deciding against other registries: a shallow copy shares
        the generated program, the parameter cache and the explanation tables (~2 µs, where a
        new Evaluator costs ~160 µs)."""
        other = copy.copy(self)
        other._use(registries)
        if self._program is None:  # compile once, for both
            other._program = self._program = self.program
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

    def _setup(
        self, hh: dict[str, Any], duplicates: frozenset[str]
    ) -> tuple[dict[str, Any], tuple[ParameterUse, ...], dict[str, Any]]:
        on: dt.date = hh["decision_date"]
        region = hh.get("region") or self._region_default
        try:
            values, uses = self.params.resolve(region, on)
        except EvaluateError as exc:
            raise InputError(
                [FieldProblem(exc.field or "decision_date", exc.message, exc.rule_id)], str(hh.get("household_id"))
            ) from exc
        keys = self._keys
        if duplicates:
            keys = dict(keys)
            for key in self._computed:
                keys[key] = keys[key] | duplicates
        return values, uses, keys

    def decide_record(
        self,
        hh: dict[str, Any],
        members: list[dict[str, Any]],
        *,
        duplicates: frozenset[str] = frozenset(),
    ) -> Decision:
        """Decide an already validated household (as ``RecordSchema.validate`` returns)."""
        program = self._program or self.program
        if program is None:
            if self._reference is None:
                self._reference = ClosureEvaluator(self.ruleset, self.registries)
            return self._reference.decide_record(hh, members, duplicates=duplicates)
        values, uses, keys = self._setup(hh, duplicates)
        hid = str(hh.get("household_id"))
        try:
            fields, findings, kept = program.decide(hh, members, values, keys)
        except EvaluateError as exc:
            raise InputError([FieldProblem(exc.field or "(household)", exc.message, exc.rule_id)], hid) from exc
        return Decision(  # positional: a third cheaper than keywords, and this is the hot path
            hid,
            hh["decision_date"],
            self._version,
            fields,
            findings,
            uses,
            dict(self._versions),
            self.ruleset.decision_fields,
            lambda: self._render(program.explain(*kept)),
            (lambda: self._lists.compute({**values, **hh, **keys}, members)) if self._lists else dict,
            self.labels,
            members,
        )

    def _render(self, kept: tuple[tuple[Any, ...], list[tuple[dict[str, Any], tuple[Any, ...]]]]) -> list[RuleTrace]:
        program = self._program
        assert program is not None
        household, members = kept
        if self._render_order is None:
            self._render_order = (
                [self._explained[s.key] for s in program.household_trace],
                [self._explained[s.key] for s in program.member_trace],
            )
        house, each = self._render_order
        out = [_entry(e, row, None) for e, row in zip(house, household, strict=True)]
        for m, rows in members:
            pid = m.get("person_id")
            out += [_entry(e, row, pid) for e, row in zip(each, rows, strict=True)]
        return out


@dataclass(frozen=True, slots=True)
class _Explained:
    """What an explanation shows of one traced definition, read from the plan once: one
    shape for every kind, so the loop over a household's hundred entries stays cheap."""

    name: str
    kind: str
    program: str
    title: Text
    legal_basis: str
    messages: dict[str, Text]
    outcomes: tuple[str, str]  # when it holds, when not
    reported_on: frozenset[str]  # the outcomes for which it is a reason (``Traced.reported_on``)
    rows: tuple[TableRow, ...] | None  # a table's rows, by the index its value is
    shown: tuple[str, ...]  # names of the values shown with it
    key: tuple[int, int]  # (scope, definition): the bulk `reasons` order
    human: Any = None  # ``Labels.human``: how a message shows a value

    @classmethod
    def of(cls, sym: Traced, order: int, human: Any = None) -> _Explained:
        rows = sym.all_rows if isinstance(sym, Table) else None
        names = tuple(name for _, name in sym.shown)
        key = (0 if sym.scope == "household" else 1, order)
        return cls(
            sym.name, sym.kind, sym.program, sym.title, sym.legal_basis, sym.messages, sym.outcomes,
            sym.reported_on, rows, names, key, human,
        )  # fmt: skip


def _entry(e: _Explained, kept: tuple[Any, ...], pid: str | None) -> RuleTrace:
    """A traced definition from what the generated code kept: (value, not applicable, shown)."""
    value, na, shown = kept
    row = None
    if value is not None and e.rows is not None:
        row = value = e.rows[value].id
    return trace_entry(e, value, na, row, dict(zip(e.shown, shown, strict=True)), pid)


def trace_entry(
    e: _Explained, value: Any, na: bool, row: str | None, vals: dict[str, Any], pid: str | None
) -> RuleTrace:
    """One traced definition as the explanation shows it."""
    holds = row is not None if e.rows is not None else value
    outcome = "not_applicable" if na else e.outcomes[0 if holds else 1]
    rule_id, title, row_index = e.name, e.title, 0
    if row and e.rows is not None:
        row_index = next((i for i, r in enumerate(e.rows) if r.id == row), 0)
        rule_id, title = row, e.rows[row_index].title or e.title
    reported = outcome in e.reported_on
    return RuleTrace(
        rule_id,
        e.kind,
        e.program,
        outcome,
        vals,
        title,
        e.legal_basis,
        e.messages,
        pid,
        row,
        reported,
        (*e.key, row_index),
        e.human,
    )


class ClosureEvaluator(Evaluator):
    """The same decisions through ``engine.scalar_plan``'s closures: the reference backend."""

    def __init__(self, ruleset: Ruleset, registries: Registries | None = None) -> None:
        super().__init__(ruleset, registries)
        self.plan = ScalarPlan(ruleset)
        self._fields: list[tuple[str, Fn]] = [(f, self.plan.accessor(f)) for f in self._field_names]
        self._findings = [(s.code, self.plan.accessor(s.name)) for s in ruleset.findings()]
        self._household_trace = [(s, self.plan.accessor(s.name)) for s in self._traced("household")]
        self._member_trace = [(s, self.plan.accessor(s.name, "member")) for s in self._traced("member")]
        self._explain = self.plan.accessor(ruleset.explain_members)
        self._money_fields = [f.name for f in ruleset.plan.fields if f.type.kind == "money"]

    def decide_record(
        self,
        hh: dict[str, Any],
        members: list[dict[str, Any]],
        *,
        duplicates: frozenset[str] = frozenset(),
    ) -> Decision:
        values, uses, keys = self._setup(hh, duplicates)
        env: dict[str, Any] = dict(values)
        env.update(hh)
        env["members"] = members
        env.update(keys)
        hid = str(hh.get("household_id"))
        try:
            fields = {name: acc(env, None) for name, acc in self._fields}
            for name in self._money_fields:
                fields[name] = Decimal(fields[name]).quantize(_FEN, ROUND_HALF_UP)
            findings = [code for code, acc in self._findings if acc(env, None)]
            # Evaluate every traced rule now, so the explanation is complete and fixed.
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
            decision_date=hh["decision_date"],
            ruleset_version=self._version,
            fields=fields,
            findings=findings,
            parameters=uses,
            registries=dict(self._versions),
            field_order=self.ruleset.decision_fields,
            trace=lambda: self._trace(env, explained),
            computed_lists=(lambda: self._lists.compute(env, members)) if self._lists else dict,
            labels=self.labels,
            members=members,
        )

    def _trace(self, env: dict[str, Any], explained: list[dict[str, Any]]) -> list[RuleTrace]:
        out = [self._one(sym, acc(env, None), env, env, None) for sym, acc in self._household_trace]
        for m in explained:
            pid = m.get("person_id")
            out += [self._one(sym, acc(env, m), m, env, pid) for sym, acc in self._member_trace]
        return out

    def _shown(self, scope: str, name: str, local: dict[str, Any], env: dict[str, Any]) -> Any:
        where = local if scope == "member" else env
        if name in where:
            return where[name]
        try:  # a message may show a value no decision needed, e.g. per-capita income
            return self.plan.accessor(name, scope)(env, local if scope == "member" else None)
        except (EvaluateError, KeyError, TypeError, AttributeError):
            return None

    def _one(self, sym: Traced, value: Any, local: dict[str, Any], env: dict[str, Any], pid: str | None) -> RuleTrace:
        r = local.get(ROW_PREFIX + sym.name) if isinstance(sym, Table) else None
        vals = {name: self._shown(scope, name, local, env) for scope, name in sym.shown}
        na = bool(local.get(NA_PREFIX + sym.name))
        return trace_entry(self._explained[sym.key], value, na, r.id if r is not None else None, vals, pid)
