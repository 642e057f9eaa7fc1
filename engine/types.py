"""Value types of the rule language and how each one is read from input.

Money is exact: ``Decimal`` at the edges and in the scalar backend, integer fen in the
vectorized one. Binary floating point never holds an amount.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "BOOL",
    "DATE",
    "DECIMAL",
    "INT",
    "MEMBERS",
    "MONEY",
    "NUMERIC",
    "STR",
    "Type",
    "check_resident_id",
    "enum_type",
    "parse_value",
    "registry_type",
    "resident_id_check_digit",
]

NUMERIC = frozenset({"int", "decimal", "money"})


@dataclass(frozen=True)
class Type:
    """A value type; ``values`` lists an enumeration's members."""

    kind: str
    nullable: bool = False
    values: tuple[str, ...] = ()

    def describe(self) -> str:
        names = {
            "money": "money (yuan)",
            "decimal": "a decimal number",
            "int": "a whole number",
            "bool": "true/false",
            "date": "a date",
            "str": "text",
            "members": "a list of members",
            "registry": "a registry",
        }
        if self.kind == "enum":
            return "one of " + ", ".join(self.values)
        return names.get(self.kind, self.kind)

    def with_nullable(self, nullable: bool) -> Type:
        return replace(self, nullable=nullable)

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC


MONEY = Type("money")
DECIMAL = Type("decimal")
INT = Type("int")
BOOL = Type("bool")
DATE = Type("date")
STR = Type("str")
MEMBERS = Type("members")


def enum_type(values: tuple[str, ...]) -> Type:
    return Type("enum", values=values)


def registry_type() -> Type:
    return Type("registry")


_MONEY_RE = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
_FEN = Decimal("0.01")
_MONEY_MAX = Decimal(10) ** 12
_ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a resident ID.

    >>> resident_id_check_digit("11010519491231002")
    'X'
    """
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def check_resident_id(value: str) -> str | None:
    """Return why ``value`` is not a valid GB 11643 resident ID, or None when it is.

    >>> check_resident_id("11010519491231002X") is None
    True
    >>> check_resident_id("110105194912310021")
    'check digit should be X, not 1'
    """
    if not _ID_RE.match(value):
        return "must be 17 digits followed by a digit or X"
    expected = _ID_CHECK[sum(map(operator.mul, map(int, value[:17]), _ID_WEIGHTS)) % 11]
    if value[17] != expected:
        return f"check digit should be {expected}, not {value[17]}"
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "birth date inside the ID is not a calendar date"
    return None


class BadValue(ValueError):
    """Raised by a parser with a message for the officer."""


def _money(v: Any) -> Decimal:
    if type(v) is str and len(v) < 13 and _MONEY_RE.match(v):  # the usual case: "1234.50"
        return Decimal(v).quantize(_FEN)
    if isinstance(v, bool):
        raise BadValue("must be an amount in yuan, not true/false")
    if isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        d = Decimal(repr(v))
    elif isinstance(v, Decimal):
        d = v
    elif isinstance(v, str):
        if not _MONEY_RE.match(v.strip()):
            if v.strip().startswith("-"):
                raise BadValue(f"must not be negative (got {v!r})")
            raise BadValue(f'must be an amount like "1234.50" with at most two decimals (got {v!r})')
        d = Decimal(v.strip())
    else:
        raise BadValue(f"must be an amount in yuan (got {type(v).__name__})")
    if not d.is_finite():
        raise BadValue("must be a finite amount")
    if d < 0:
        raise BadValue(f"must not be negative (got {v})")
    if d >= _MONEY_MAX:
        raise BadValue(f"is implausibly large (got {v}); amounts are below {_MONEY_MAX} yuan")
    if d != d.quantize(Decimal("0.01")):
        raise BadValue(f"has more than two decimals (got {v})")
    return d.quantize(Decimal("0.01"))


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise BadValue(f"must be a whole number (got {v!r})")
    if isinstance(v, str):
        try:
            v = int(v.strip())
        except ValueError:
            raise BadValue(f"must be a whole number (got {v!r})") from None
    return int(v)


def _decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise BadValue("must be a number")
    try:
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    except (InvalidOperation, TypeError):
        raise BadValue(f"must be a number (got {v!r})") from None


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise BadValue(f"must be true or false (got {v!r})")


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise BadValue(f"must be a date YYYY-MM-DD (got {v!r})")


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise BadValue(f"must be text (got {v!r})")


def _resident_id(v: Any) -> str:
    s = _str(v).strip().upper()
    why = check_resident_id(s)
    if why:
        raise BadValue(f"is not a valid resident ID: {why}")
    return s


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "money": _money,
    "int": _int,
    "decimal": _decimal,
    "bool": _bool,
    "date": _date,
    "str": _str,
    "resident_id": _resident_id,
}


def parse_value(kind: str, value: Any, enum_values: tuple[str, ...] = ()) -> Any:
    """Parse one input value of a declared kind; raises ``BadValue`` with a message."""
    if kind == "enum":
        if not isinstance(value, str) or value not in enum_values:
            from engine.errors import did_you_mean

            hint = did_you_mean(str(value), enum_values)
            raise BadValue(f"must be one of {', '.join(enum_values)} (got {value!r}){hint}")
        return value
    return _PARSERS[kind](value)


INPUT_KINDS = frozenset(_PARSERS) | {"enum"}
