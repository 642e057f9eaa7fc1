"""Value types of the rule language and how each one is read from input.

Money is exact: ``Decimal`` at the edges and in the scalar backend, integer fen in the
vectorized one. Binary floating point never holds an amount.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from engine.errors import did_you_mean
from engine.validation.messages import say

__all__ = [
    "BOOL",
    "DATE",
    "DECIMAL",
    "ID_CHECK",
    "ID_WEIGHTS",
    "INT",
    "MEMBERS",
    "MONEY",
    "NUMERIC",
    "STR",
    "BadValue",
    "Type",
    "check_resident_id",
    "enum_type",
    "parse_text",
    "parse_value",
    "registry_type",
    "resident_id_check_digit",
    "shown",
    "value_text",
    "weighted_digit_sum",
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


# Strict shapes, ASCII digits only; the column validator uses the same patterns.
BLANKS = " \t\n\r\f\v\xa0\u3000"
INT_PATTERN = r"-?[0-9]+"
MONEY_PATTERN = r"[0-9]+(\.[0-9]{1,2})?"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
ID_PATTERN = r"[0-9]{17}[0-9X]"
MONEY_DIGITS = 12  # amounts are below 10^12 yuan, so fen always fit in int64
_INT_RE = re.compile(INT_PATTERN)
_MONEY_RE = re.compile(MONEY_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)
_ID_RE = re.compile(ID_PATTERN)
_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
NEGATIVE_ZERO = r"-0+(\.0{1,2})?"  # "-0", "-0.00": zero, as JSON's -0 is
_NEGATIVE_ZERO_RE = re.compile(NEGATIVE_ZERO)
# Sanity bounds on any input (not policy): dates are of living people and decisions in
# force, texts are names and codes. Both validators and every reader use them.
YEAR_MIN, YEAR_MAX = 1900, 2100
TEXT_CHARS = 200
# C0 controls and DEL (NUL, BEL, ESC...); C1 (U+0080–U+009F) stays text, as U+0085 in a
# JSON Lines string does
CONTROL_PATTERN = r"[\x00-\x1f\x7f]"
_CONTROL_RE = re.compile(CONTROL_PATTERN)
INT_DIGITS = 1000  # a whole number longer than this is refused before int() (Python refuses 4300)
_FEN = Decimal("0.01")

# GB 11643 resident IDs: the weights are 2^(17-i) mod 11, and the check character makes
# the weighted sum of all 18 positions (X = 10) equal 1 mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def resident_id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a resident ID.

    13 = 2 (mod 11), so reading the digits in base 13 gives the weighted sum mod 11
    in one ``int`` call.

    >>> resident_id_check_digit("11010519491231002")
    'X'
    >>> all(resident_id_check_digit(s) == ID_CHECK[weighted_digit_sum(int(s)) % 11]
    ...     for s in ("11010519491231002", "32068419500101001", "00000000000000000"))
    True
    """
    return ID_CHECK[2 * int(first17, 13) % 11]


def weighted_digit_sum(body: Any) -> Any:
    """The GB 11643 weighted sum of the 17 digits of ``body`` (an integer), for anything
    with integer ``//``, ``%``, ``*`` and ``+``: an int, a NumPy array, a Polars expression."""
    total = None
    for i, weight in enumerate(ID_WEIGHTS):
        term = (body // 10 ** (16 - i)) % 10 * weight
        total = term if total is None else total + term
    return total


def check_resident_id(value: str) -> str | None:
    """Return why ``value`` is not a valid GB 11643 resident ID, or None when it is.

    >>> check_resident_id("11010519491231002X") is None
    True
    >>> check_resident_id("110105194912310021")
    'is not a valid resident ID: check digit should be X, not 1'
    """
    if not _ID_RE.fullmatch(value):
        return say("id_shape")
    expected = ID_CHECK[2 * int(value[:17], 13) % 11]
    if value[17] != expected:
        return say("id_check", expected=expected, got=value[17])
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return say("id_date")
    return None


class BadValue(ValueError):
    """Raised by a parser with a message for the officer."""


def number_text(v: float | Decimal) -> str:
    """A JSON number that is not a whole number, as text: never exponent notation, and
    always with a point (``1e2`` reads ``100.0``), whether it was parsed as float or Decimal."""
    d = Decimal(repr(v)) if isinstance(v, float) else v
    if not d.is_finite() or abs(d.adjusted()) > 40:  # 1e999999 stays short
        return str(d)
    text = format(d, "f")
    return text if "." in text else text + ".0"


def value_text(v: Any) -> str | None:
    """One input value as the text a table cell would hold; None for null or blank.

    Every validator reads values through this, so JSON, CSV and typed columns agree.
    Raises ``BadValue`` for a list or an object.

    >>> value_text(" 12 "), value_text(True), value_text(1e2), value_text(""), value_text(3)
    ('12', 'true', '100.0', None, '3')
    """
    if v is None:
        return None
    if isinstance(v, str):
        return v.strip(BLANKS) or None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float | Decimal):
        return number_text(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    raise BadValue(say("scalar"))


def shown(text: str, most: int = 40) -> str:
    """A value as a message quotes it: a long one cut short, with its length."""
    return text if len(text) <= most else f"{text[: most // 2]}… ({len(text)} characters)"


def parse_text(kind: str, text: str, enum_values: tuple[str, ...] = ()) -> Any:
    """Parse the (non-blank) text of one value of a declared kind; raises ``BadValue``."""
    if kind == "str":
        if len(text) > TEXT_CHARS:
            raise BadValue(say("text_long", bound=TEXT_CHARS, got=len(text)))
        if _CONTROL_RE.search(text):
            raise BadValue(say("control", got=shown(text.encode("unicode_escape").decode("ascii"))))
        return text
    if kind == "enum":
        if text in enum_values:
            return text
        hint = did_you_mean(text, enum_values)
        raise BadValue(say("enum", values=", ".join(enum_values), got=shown(text), hint=hint))
    if kind == "bool":
        low = text.lower()
        if low == "true" or low == "false":
            return low == "true"
        raise BadValue(say("bool", got=shown(text)))
    if kind == "int":
        if len(text) > INT_DIGITS and _INT_RE.fullmatch(text):
            raise BadValue(say("int_digits", digits=len(text.lstrip("-")), bound=INT_DIGITS))
        if _INT_RE.fullmatch(text):
            return int(text)
        raise BadValue(say("int", got=shown(text)))
    if kind == "money":
        if text.startswith("-") and _NEGATIVE_ZERO_RE.fullmatch(text):
            text = text[1:]
        if text.startswith("-"):
            raise BadValue(say("negative", got=shown(text)))
        if not _MONEY_RE.fullmatch(text):
            raise BadValue(say("money", got=shown(text)))
        if len(text.split(".")[0].lstrip("0")) > MONEY_DIGITS:
            raise BadValue(say("money_max", got=shown(text), bound=10**MONEY_DIGITS))
        return Decimal(text).quantize(_FEN)
    if kind == "date":
        if _DATE_RE.fullmatch(text):
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                pass
            else:
                if YEAR_MIN <= day.year <= YEAR_MAX:
                    return day
                raise BadValue(say("date_year", lo=YEAR_MIN, hi=YEAR_MAX, got=shown(text)))
        raise BadValue(say("date", got=shown(text)))
    if kind == "resident_id":
        upper = text.upper()
        why = check_resident_id(upper)
        if why:
            raise BadValue(why)
        return upper
    if kind == "decimal":
        if _DECIMAL_RE.fullmatch(text):
            return Decimal(text)
        raise BadValue(say("decimal", got=shown(text)))
    raise KeyError(kind)


def parse_value(kind: str, value: Any, enum_values: tuple[str, ...] = ()) -> Any:
    """Parse one input value of a declared kind; raises ``BadValue`` with a message."""
    text = value_text(value)
    if text is None:
        raise BadValue(say("required"))
    return parse_text(kind, text, enum_values)


INPUT_KINDS = frozenset({"money", "int", "decimal", "bool", "date", "str", "resident_id", "enum"})
