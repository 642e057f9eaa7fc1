"""The row validator: ``record.yaml`` compiled once to a Python function for one household.

The generated function is straight-line code, one block per declared field: an inline
test accepts the common valid value (a bool that is a bool, an enum value that is one, a
money text like "12.50"), and anything else goes to the field's ``FieldRule.check``, the
canonical path the column validator's messages also come from. The fast tests accept
nothing the canonical path would not, with the same value (the property tests check it).
Declared names reach the source only as ``repr()`` literals or as objects in its namespace.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import FieldProblem, InputError
from engine.types import BLANKS, ID_CHECK, MONEY_DIGITS, TEXT_CHARS, YEAR_MAX, YEAR_MIN
from engine.validation.messages import MESSAGES, say
from engine.validation.rules import (
    DATE_FIELD,
    REGION_FIELD,
    TODAY,
    Coverage,
    FieldRule,
    GroupRule,
    cross_rules,
    member_entries,
    schema_rules,
    unknown_fields,
)

if TYPE_CHECKING:
    from engine.record import RecordSchema

__all__ = ["RowValidator", "compile_row_validator"]

RowValidator = Callable[
    [Any, "dt.date | None", "Coverage | None", frozenset[str]], tuple[dict[str, Any], list[dict[str, Any]]]
]


# month-day texts of every calendar day but 29 February, for the date inside a resident ID
_MONTH_DAYS = frozenset(f"{d:%m%d}" for d in (dt.date(2001, 1, 1) + dt.timedelta(n) for n in range(365)))


def _id_ok(v: str) -> bool:
    """The common case of a valid resident ID, already upper-case and trimmed."""
    body = v[:17]
    if len(v) != 18 or not v.isascii() or not body.isdigit() or ID_CHECK[2 * int(body, 13) % 11] != v[17]:
        return False
    if v[10:14] in _MONTH_DAYS:
        return v[6:10] != "0000"
    try:
        dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    return True


def _record_id(raw: Mapping[str, Any], key: str) -> str | None:
    rid = raw.get(key)
    return rid if isinstance(rid, str) else None


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.ns)}"
        self.ns[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def field(self, d: int, rule: FieldRule, src: str, out: str, prefix: str) -> None:
        """One scalar field: read ``src[key]``, store ``out[path]`` or report."""
        r, p = self.const(rule), repr(rule.path)
        self.emit(d, f"v = {src}.get({rule.key!r})")
        fast, value = self._fast(rule, out)
        if fast:
            self.emit(d, f"if {fast}:")
            self.emit(d + 1, f"{out}[{p}] = {value}")
            self.emit(d, "elif v is None:")
        else:
            self.emit(d, "if v is None:")
        if rule.when:
            self.emit(d + 1, f"{r}.absent({prefix}, {out}, P, today)")
        elif rule.has_default:
            default = "(today or _today())" if rule.default == TODAY else self.const(rule.default)
            self.emit(d + 1, f"{out}[{p}] = {default}")
        elif rule.nullable:
            self.emit(d + 1, f"{out}[{p}] = None")
        else:
            self.emit(d + 1, f"P.append(_FP({prefix} + {p}, _REQUIRED))")
        self.emit(d, "else:")
        self.emit(d + 1, f"{r}.check(v, {prefix}, {out}, P, S, today)")

    def _fast(self, rule: FieldRule, out: str) -> tuple[str, str]:
        kind = rule.kind
        if kind == "bool":
            return "v is True or v is False", "v"
        if kind == "enum" and rule.by is None:
            return f"type(v) is str and v in {self.const(frozenset(rule.values))}", "v"
        if kind == "enum" and rule.by is not None:
            table = self.const({k: frozenset(v) for k, v in rule.by[1].items()})
            return f"type(v) is str and v in {table}.get({out}.get({rule.by[0]!r}), ())", "v"
        if kind == "str":
            return "type(v) is str and (t := v.strip(_BLANKS)) and _text_ok(t)", "t"
        if kind == "int":
            bounds = "".join(
                [
                    f" and v >= {int(rule.lo)}" if rule.lo is not None else "",
                    f" and v <= {int(rule.hi)}" if rule.hi is not None else "",
                ]
            )
            if rule.values:  # a whole number from a listed set
                bounds += f" and v in {self.const(frozenset(int(x) for x in rule.values))}"
            return f"type(v) is int{bounds}", "v"
        if kind == "money":
            return "type(v) is str and _money2(v)", "_Decimal(v)"
        if kind == "date":
            bounds = "".join(  # a date bounded by a date written in record.yaml
                [
                    f" and t >= {self.const(rule.lo)}" if rule.lo is not None else "",
                    f" and t <= {self.const(rule.hi)}" if rule.hi is not None else "",
                ]
            )
            return f"type(v) is str and (t := _date_of(v)){bounds}", "t"
        if kind == "resident_id":
            return "type(v) is str and _id_ok(v)", "v"
        return "", ""


def _text_ok(t: str) -> bool:
    """The common case of a text: short, printable (so no control characters)."""
    return len(t) <= TEXT_CHARS and t.isprintable()


def _date_of(v: str) -> dt.date | None:
    """The common case of a date: YYYY-MM-DD (``fromisoformat`` reads only ASCII digits)."""
    if len(v) == 10 and v[4] == "-" and v[7] == "-":
        try:
            day = dt.date.fromisoformat(v)
        except ValueError:
            return None
        return day if YEAR_MIN <= day.year <= YEAR_MAX else None
    return None


def compile_row_validator(schema: RecordSchema) -> RowValidator:
    """Generate and compile the validator of one household for ``schema``."""
    household, member_rules = schema_rules(schema)
    g = _Gen()
    g.ns.update(
        _FP=FieldProblem,
        _InputError=InputError,
        _REQUIRED=say("required"),
        _OBJECT=say("object"),
        _MEMBERS=say("members"),
        _BLANKS=BLANKS,
        _Decimal=Decimal,
        _Mapping=Mapping,
        _len=len,
        _today=dt.date.today,
        _money2=re.compile(rf"[0-9]{{1,{MONEY_DIGITS}}}\.[0-9]{{2}}").fullmatch,
        _date_of=_date_of,
        _text_ok=_text_ok,
        _id_ok=_id_ok,
        _unknown=unknown_fields,
        _record_id=_record_id,
        _same=say("same_person", first="{first}"),
        _shape=say("household"),
    )
    emit = g.emit
    emit(0, "def validate(raw, today, coverage, repeated):")
    emit(1, "if type(raw) is not dict and not isinstance(raw, _Mapping):")
    emit(2, "raise _InputError([_FP('(household)', _shape)])")
    emit(1, "P = []")
    emit(1, "S = []")
    emit(1, "h = {}")
    emit(1, "M = []")
    known = g.const(schema.known[""])
    emit(1, f"if not {known}.issuperset(raw):")
    emit(2, f"_unknown(raw, {known}, '', P)")
    for spec, rules in household:
        if spec.kind == "members":
            _members(g, spec.name, schema.known["member"], member_entries(schema), schema.members_max())
        elif spec.kind == "group":
            _group(g, spec.name, spec.key, spec.nullable, schema.known[spec.name], rules)
        else:
            g.field(1, rules[0], "raw", "h", "''")
    rid = repr(schema.id_field)
    emit(1, "if S:")
    emit(2, f"raise _InputError(S, _record_id(raw, {rid}))")
    _cross_code(g, cross_rules(member_rules), {r.path for r in member_rules})
    emit(1, "if coverage is not None:")
    emit(2, f"r = h.get({REGION_FIELD!r})")
    emit(2, f"d = h.get({DATE_FIELD!r})")
    emit(2, "f = coverage.first.get(r, coverage.other)")  # the common case in two lookups
    emit(2, "if f is None or d is None or d < f:")
    emit(3, "c = coverage.problem(r, d)")
    emit(3, "if c is not None:")
    emit(4, "P.append(c)")
    emit(1, f"if repeated and h.get({rid}) in repeated:")
    emit(2, f"P.append(_FP({rid}, {g.const(say('repeated_household'))}))")
    emit(1, "if P:")
    emit(2, f"raise _InputError(P, _record_id(raw, {rid}))")
    emit(1, "return h, M")
    source = "\n".join(g.lines) + "\n"
    code = compile(source, "<record validator>", "exec")
    exec(code, g.ns)  # the source is built from declarations, names only as literals
    fn: RowValidator = g.ns["validate"]
    fn.__doc__ = source  # kept for reading and for the tests
    return fn


def _cross_code(g: _Gen, rules: list[FieldRule], member_paths: set[str]) -> None:
    """Checks spanning fields (``engine.validation.cross_rules``), inlined over the members."""
    if not rules:
        return
    emit = g.emit
    for k, rule in enumerate(rules):
        if rule.unique:
            emit(1, f"u{k} = {{}}")
    emit(1, "for i, o in enumerate(M):")
    for k, rule in enumerate(rules):
        p = repr(rule.path)
        emit(2, f"v = o.get({p})")
        if rule.unique:
            emit(2, f"if v is not None and u{k}.setdefault(v, i) != i:")
            emit(3, f"P.append(_FP(_mp(i) + {p}, _same.format(first=u{k}[v])))")
        low = ("date_after", "<=") if rule.lo_strict else ("date_min", "<")
        for ref, kind, op in ((rule.date_lo, *low), (rule.date_hi, "date_max", ">")):
            if ref is None:
                continue
            src = "o" if ref in member_paths else "h"
            emit(2, f"b = {src}.get({ref!r})")
            emit(2, f"if v is not None and b is not None and v {op} b:")
            msg = g.const(MESSAGES[kind]["en"])
            emit(3, f"P.append(_FP(_mp(i) + {p}, {msg}.format(ref={ref!r}, bound=b, got=v)))")


def _group(g: _Gen, name: str, key: str, nullable: bool, known: frozenset[str], rules: list[FieldRule]) -> None:
    emit = g.emit
    emit(1, f"g = raw.get({key!r})")
    d = 1
    if nullable:
        emit(1, "if g is None:")
        for path in [name, *(r.path for r in rules)]:
            emit(2, f"h[{path!r}] = None")
        emit(1, "else:")
        d = 2
    else:
        emit(1, "if g is None:")
        emit(2, "g = {}")
    emit(d, "if type(g) is not dict and not isinstance(g, _Mapping):")
    emit(d + 1, f"S.append(_FP({name!r}, _OBJECT))")
    emit(d + 1, "g = {}")
    if nullable:
        emit(d, f"h[{name!r}] = True")
    k = g.const(known)
    emit(d, f"if g and not {k}.issuperset(g):")
    emit(d + 1, f"_unknown(g, {k}, {name + '.'!r}, P)")
    # a field that depends on another comes after it
    for rule in sorted(rules, key=lambda r: bool(r.by or r.when)):
        g.field(d, rule, "g", "h", "''")


def _entries(g: _Gen, d: int, entries: Sequence[FieldRule | GroupRule], src: str) -> None:
    """A member's fields (or an object's) from ``src`` into ``o``; one that depends on
    another comes after it."""
    for entry in sorted(entries, key=lambda e: bool(e.when or (isinstance(e, FieldRule) and e.by))):
        if isinstance(entry, GroupRule):
            _object(g, d, entry, src)
        else:
            g.field(d, entry, src, "o", "_mp(i)")


def _object(g: _Gen, d: int, group: GroupRule, src: str) -> None:
    """A member's object field: absent (null when allowed), not an object, or read key by key."""
    emit, x, p = g.emit, f"x{d}", repr(group.path)
    emit(d, f"{x} = {src}.get({group.key!r})")
    emit(d, f"if {x} is None:")
    emit(d + 1, f"{g.const(group)}.absent(_mp(i), o, P)")
    emit(d, f"elif type({x}) is not dict and not isinstance({x}, _Mapping):")
    emit(d + 1, f"S.append(_FP(_mp(i) + {p}, _OBJECT))")
    emit(d, "else:")
    emit(d + 1, f"o[{p}] = True")
    k = g.const(group.known)
    emit(d + 1, f"if {x} and not {k}.issuperset({x}):")
    emit(d + 2, f"_unknown({x}, {k}, _mp(i) + {group.path + '.'!r}, P)")
    _entries(g, d + 1, group.entries, x)


def _members(g: _Gen, name: str, known: frozenset[str], entries: list[FieldRule | GroupRule], most: int | None) -> None:
    emit = g.emit
    k = g.const(known)
    g.ns["_mp"] = lambda i: f"{name}[{i}]."  # the prefix of a member's fields, built only to report
    emit(1, f"ms = raw.get({name!r})")
    emit(1, "if type(ms) is list and ms:")
    if most is not None:
        emit(2, f"if _len(ms) > {int(most)}:")
        emit(
            3,
            f"P.append(_FP({name!r}, {g.const(MESSAGES['members_max']['en'])}.format(bound={int(most)}, got=_len(ms))))",
        )
    emit(2, "for i, m in enumerate(ms):")
    emit(3, "if type(m) is not dict and not isinstance(m, _Mapping):")
    emit(4, "S.append(_FP(_mp(i)[:-1], _OBJECT))")
    emit(4, "continue")
    emit(3, f"if not {k}.issuperset(m):")
    emit(4, f"_unknown(m, {k}, _mp(i), P)")
    emit(3, "o = {}")
    _entries(g, 3, entries, "m")
    emit(3, "M.append(o)")
    emit(1, "else:")
    emit(2, f"P.append(_FP({name!r}, _MEMBERS))")
