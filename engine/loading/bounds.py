"""Parameter values within the engine's limits, as written and as computed by their formulas.

The caseload kernel holds money as integer fen and rates as scaled integers in 64 bits, and
the household path as exact decimals: a standard of 10^16 yuan, a rate of 1e50 or 10^23
months would overflow one and not the other, so the two would decide differently (or one
would crash). No real parameter is anywhere near these limits; they are written in
``rules/README.md`` ("Limits"). A formula's value depends on the values it reads, so it is
computed at load time for every region and every date on which any parameter changes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from engine import ir
from engine.errors import EvaluateError, ProblemKind
from engine.ruleset import Parameter
from engine.scalar import Fn, compile_expr
from engine.types import Type

from .parameters import parameter_order
from .state import Declared

__all__ = ["LIMITS", "check_computed", "out_of_range"]

# kind: (lowest, highest, most decimal places as written, most decimal places as computed)
LIMITS: dict[str, tuple[Decimal, Decimal, int, int]] = {
    "money": (Decimal(0), Decimal(10) ** 12 - Decimal("0.0001"), 2, 4),
    "decimal": (-(Decimal(10) ** 6), Decimal(10) ** 6, 6, 6),
    "int": (-(Decimal(10) ** 6), Decimal(10) ** 6, 0, 0),
}
_A = {"money": "a money", "decimal": "a decimal", "int": "an int"}
_SAY = {"money": "0 to 999999999999.99 yuan", "decimal": "-1000000 to 1000000", "int": "-1000000 to 1000000"}


def _places(v: Decimal) -> int:
    """Decimal places of ``v`` with trailing zeros dropped (``1.50`` has 1), without rounding."""
    _, digits, exp = v.as_tuple()
    if not isinstance(exp, int):
        return 0
    i = len(digits)
    while i > 0 and exp < 0 and digits[i - 1] == 0:
        i, exp = i - 1, exp + 1
    return max(0, -exp)


def out_of_range(value: Any, t: Type, computed: bool = False) -> str | None:
    """Why a parameter value of type ``t`` is outside the limits, or None (values of other
    types, and values of the wrong type, which the type check reports, are not judged)."""
    limits = LIMITS.get(t.kind)
    if isinstance(value, str) and t.kind != "int":  # `1.0e50` is text to YAML 1.1, a number to the type check
        try:
            value = Decimal(value)
        except ArithmeticError:
            return None
    if limits is None or isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    lo, hi, written_places, computed_places = limits
    v = Decimal(value)
    if not v.is_finite() or not lo <= v <= hi:  # comparisons are exact: 1e999999999 does not overflow
        return f"{value} is outside the range of {_A[t.kind]} parameter ({_SAY[t.kind]})"
    places = computed_places if computed else written_places
    if _places(v) > places:
        if t.kind == "int":
            return f"{value} is not a whole number"
        if computed:
            return f"{value} has more than {places} decimal places; round it with roundup() or rounddown()"
        return f"{value} has more than {places} decimal places, the most {_A[t.kind]} parameter is written with"
    return None


def check_computed(d: Declared) -> None:
    """Every formula's value, in every region on every date a parameter changes, is within
    the limits and can be computed; each version is reported once, at its first bad date."""
    params = d.parameters
    regions = sorted({r for p in params.values() for r in p.regions if r != "*"}) or ["*"]
    reported: set[tuple[str, str, dt.date]] = set()
    compiled: dict[int, Fn] = {}
    order = parameter_order(params)
    for region in regions:
        starts = sorted({v.start for p in params.values() for v in p.regions.get(region, p.regions.get("*", []))})
        for on in starts:
            values: dict[str, Any] = {}
            for name in order:
                _resolve(d, params[name], region, on, values, compiled, reported)


def _resolve(
    d: Declared,
    p: Parameter,
    region: str,
    on: dt.date,
    values: dict[str, Any],
    compiled: dict[int, Fn],
    reported: set[tuple[str, str, dt.date]],
) -> None:
    """Put ``p``'s value on ``on`` into ``values`` if it has one within the limits."""
    found = p.version(region, on)
    if found is None:
        return  # reported by the coverage check
    key, version = found
    if version.formula is None:
        if version.formula_text or not _usable(version.value, p.type):
            return  # a formula or a value already reported (type check, or limits as written)
        values[p.name] = version.value
        return
    formula = version.formula
    fn = compiled.get(id(formula))
    if fn is None:
        fn = compiled[id(formula)] = compile_expr(formula, _read)
    why: str | None
    try:
        value = fn(values, None)
        why = out_of_range(value, p.type, computed=True)
    except KeyError:
        return  # it reads a parameter that has no value here, or a bad one: reported already
    except (EvaluateError, ArithmeticError, TypeError) as exc:
        why, value = f"cannot be computed ({exc})", None
    if why is None:
        values[p.name] = value
        return
    if (p.name, key, version.start) not in reported:
        reported.add((p.name, key, version.start))
        where = "every region" if region == "*" else f"region {region}"
        d.problems.append(
            version.pos.problem(
                ProblemKind.OUT_OF_RANGE,
                f"`{p.name}` = {version.formula_text} for {where} on {on}: {why}",
                p.name,
            )
        )


def _usable(value: Any, t: Type) -> bool:
    """A written value the type check and the limits accepted (others were reported)."""
    if t.kind in LIMITS:
        return isinstance(value, int | Decimal) and not isinstance(value, bool) and out_of_range(value, t) is None
    return True


def _read(ref: ir.Ref) -> Fn:
    name = ref.name

    def value(env: dict[str, Any], m: Any) -> Any:
        return env[name]

    return value
