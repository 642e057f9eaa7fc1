"""Resolve the dated, per-region parameters in force on a decision date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine import ir
from engine.errors import EvaluateError
from engine.ruleset import Ruleset
from engine.scalar import Fn, compile_expr

__all__ = ["ParameterResolver", "ParameterUse"]


@dataclass(frozen=True)
class ParameterUse:
    """Which version of a parameter a decision used, for the record and for replay."""

    name: str
    region: str
    start: dt.date
    value: Any
    reference: str
    formula: str

    def as_dict(self) -> dict[str, Any]:
        v = self.value
        return {
            "name": self.name,
            "region": self.region,
            "version": self.start.isoformat(),
            "value": f"{v:.2f}" if isinstance(v, Decimal) and v == v.quantize(Decimal("0.01")) else str(v),
            "formula": self.formula or None,
            "reference": self.reference,
        }


def _value_of(ref: ir.Ref) -> Fn:
    name = ref.name

    def value(env: dict[str, Any], m: Any) -> Any:
        return env[name]

    return value


class ParameterResolver:
    """Values of every parameter for a (region, date), cached: caseloads share few dates."""

    def __init__(self, ruleset: Ruleset, cache_size: int = 4096) -> None:
        self.ruleset = ruleset
        self._formulas: dict[int, Fn] = {}
        self._cache: dict[tuple[str, dt.date], tuple[dict[str, Any], tuple[ParameterUse, ...]]] = {}
        self._cache_size = cache_size

    def _formula(self, e: ir.Expr) -> Fn:
        fn = self._formulas.get(id(e))
        if fn is None:
            fn = compile_expr(e, _value_of)
            self._formulas[id(e)] = fn
        return fn

    def resolve(self, region: str, on: dt.date) -> tuple[dict[str, Any], tuple[ParameterUse, ...]]:
        key = (region, on)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        values: dict[str, Any] = {}
        uses: list[ParameterUse] = []
        for name in self.ruleset.parameter_order:
            p = self.ruleset.parameters[name]
            found = p.version(region, on)
            if found is None:
                first = min((v.start for vs in p.regions.values() for v in vs), default=None)
                raise EvaluateError(
                    f"parameter `{name}` has no value for region {region} on {on}"
                    + (f" (values start {first})" if first else ""),
                    field="decision_date",
                    rule_id=name,
                )
            region_key, version = found
            # Exact, never rounded to the fen: DOMAIN.md compares against 1.5 × standard as
            # it is; a formula rounds only where it says roundup/rounddown.
            value = self._formula(version.formula)(values, None) if version.formula is not None else version.value
            values[name] = value
            uses.append(ParameterUse(name, region_key, version.start, value, version.reference, version.formula_text))
        result = (values, tuple(uses))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = result
        return result
