"""Per-member lists in JSON decisions (DOMAIN-2.md: the `children` list): declared in
ruleset.yaml under ``reports.member_lists``, computed only when a decision is written out.

    member_lists:
      children:                      # the list's name in the JSON decision
        when: children.recorded      # the counted members it lists
        fields:
          age: age                   # a named value
          categories: {orphan: children.orphan, hiv: children.hiv}   # the labels that hold

The values come from the closure backend (``engine.scalar_plan``) on copies of the members,
so the generated code of the hot path keeps no per-member state for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.decision import format_value
from engine.plan import TableOutput
from engine.scalar import Fn
from engine.scalar_plan import ScalarPlan

__all__ = ["MemberLists"]

_PERSON = "person_id"
_FEN = Decimal("0.01")


class MemberLists:
    """The lists a ruleset declares, compiled to accessors on first use."""

    def __init__(self, ruleset: Any) -> None:
        self.ruleset = ruleset
        self.spec: Mapping[str, Any] = (ruleset.reports or {}).get("member_lists") or {}
        self._plan: ScalarPlan | None = None

    def __bool__(self) -> bool:
        return bool(self.spec)

    def _acc(self, name: str) -> tuple[Fn, bool]:
        """The accessor of a name, and whether it is read per member."""
        if self._plan is None:
            self._plan = ScalarPlan(self.ruleset)
        member = ("member", name) in self.ruleset.symbols
        return self._plan.accessor(name, "member" if member else "household"), member

    def _money(self, name: str) -> bool:
        scope = "member" if ("member", name) in self.ruleset.symbols else "household"
        return bool(self.ruleset.symbols[(scope, name)].type.kind == "money")

    def compute(self, env: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Every declared list for one household; ``env`` holds its fields, parameters and
        registries as the closure backend reads them."""
        env = dict(env)
        env["members"] = [dict(m) for m in members]  # the closures keep values on each member
        counted, _ = self._acc(self.ruleset.explain_members)
        out: dict[str, list[dict[str, Any]]] = {}
        for list_name, spec in self.spec.items():
            when, _ = self._acc(str(spec["when"]))
            rows = []
            for m in counted(env, None):
                if not when(env, m):
                    continue
                row: dict[str, Any] = {_PERSON: m.get(_PERSON)}
                for label, what in (spec.get("fields") or {}).items():
                    if isinstance(what, Mapping):
                        row[label] = [k for k, name in what.items() if self._value(str(name), env, m)]
                    else:
                        v = self._value(str(what), env, m)
                        if v is not None and self._money(str(what)):  # yuan with two places, as decisions show
                            v = Decimal(v).quantize(_FEN)
                        row[label] = format_value(v)
                rows.append(row)
            out[str(list_name)] = rows
        return out

    def _value(self, name: str, env: dict[str, Any], m: dict[str, Any]) -> Any:
        acc, member = self._acc(name)
        scope = "member" if member else "household"
        sym = self.ruleset.symbols[(scope, name)]
        if isinstance(sym, TableOutput):  # a table that did not apply (or had no row) shows null
            row, _ = self._acc(sym.table.name)
            if row(env, m if member else None) is None:
                return None
        return acc(env, m if member else None)
