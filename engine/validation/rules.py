"""One validation of household records, shared by every path.

``rules/record.yaml`` declares the fields once; this module reads that declaration into
field rules and holds the checks both validators share: the row validator (one household,
generated Python, ``engine.validation.row``) and the column validator (a caseload,
Polars, ``engine.validation.columns``). Values are read through one canonical text form
(``engine.types.value_text``) and problems are worded by one table
(``engine.validation.messages``), so a household is accepted or rejected identically, with
the same field and message, wherever it comes from.

The rules for awkward input (README, "Awkward input"): an explicit null or a blank text is
the same as an absent field; an unknown field with a value is rejected by name; a household
ID repeated in one input rejects every copy; a member field declared ``unique`` may not
repeat in a household; date fields may be bounded by other fields; a decision date or
region without every parameter in force is rejected naming ``decision_date`` or ``region``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import FieldProblem, did_you_mean
from engine.types import BLANKS, INT_DIGITS, BadValue, parse_text, shown, value_text
from engine.validation.messages import say

if TYPE_CHECKING:
    from engine.record import FieldSpec, RecordSchema
    from engine.ruleset import Ruleset

__all__ = [
    "DATE_FIELD",
    "JSON_DEPTH",
    "REGION_FIELD",
    "BadJson",
    "Coverage",
    "FieldRule",
    "GroupRule",
    "json_items",
    "json_value",
    "member_entries",
    "member_groups",
    "norm",
    "parameter_coverage",
    "present",
    "repeated_household_ids",
    "unknown_problem",
]

# The engine's own record fields: parameters are chosen by region and decision date.
DATE_FIELD = "decision_date"
REGION_FIELD = "region"
TODAY = "today"
JSON_DEPTH = 64  # a household needs 3 levels; deeper input is refused before anything recurses into it


class BadJson(ValueError):
    """A JSON text that is not one value, or is nested too deeply; the message says why."""


def _json_int(text: str) -> int | str:
    # longer literals stay text, so the field they are in rejects them by name, as in a table
    return int(text) if len(text) <= INT_DIGITS else text


def json_value(text: str, *, ints_as_text: bool = False) -> Any:
    """One JSON value (a household, or a line of JSON Lines) as every reader reads it:
    decimals as ``Decimal``, whole numbers as ``int`` (or text), at most ``JSON_DEPTH``
    levels deep; raises ``BadJson`` otherwise, never RecursionError or a digit limit."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=str if ints_as_text else _json_int)
    except RecursionError:
        raise BadJson(say("json_depth", bound=JSON_DEPTH)) from None
    except ValueError as exc:
        raise BadJson(str(exc)) from None
    # the count of brackets bounds the depth: most lines are never walked
    if text.count("[") + text.count("{") > JSON_DEPTH and _depth(value) > JSON_DEPTH:
        raise BadJson(say("json_depth", bound=JSON_DEPTH))
    return value


_BLANK = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """Where the JSON whitespace from ``at`` ends."""
    found = _BLANK.match(text, at)
    return found.end() if found else at


def json_items(text: str) -> Any:
    """``json_value`` (the same values, limits and errors) for a text that may be a long JSON
    array, read one item at a time: a thousand households are then a thousand short calls,
    not one long one, so other threads (a server's event loop) get their turns meanwhile."""
    start = _skip(text, 0)
    if not text.startswith("[", start):
        return json_value(text)
    decoder = json.JSONDecoder(parse_float=Decimal, parse_int=_json_int)
    items: list[Any] = []
    at = _skip(text, start + 1)
    closed = text.startswith("]", at)
    while not closed:
        try:
            item, end = decoder.raw_decode(text, at)
        except RecursionError:
            raise BadJson(say("json_depth", bound=JSON_DEPTH)) from None
        except ValueError as exc:
            raise BadJson(str(exc)) from None
        if text.count("[", at, end) + text.count("{", at, end) >= JSON_DEPTH and _depth(item) >= JSON_DEPTH:
            raise BadJson(say("json_depth", bound=JSON_DEPTH))  # the array is one level more
        items.append(item)
        at = _skip(text, end)
        closed = text.startswith("]", at)
        if not closed:
            if not text.startswith(",", at):
                raise BadJson(f"Expecting ',' delimiter: char {at}")
            at = _skip(text, at + 1)
    if _skip(text, at + 1) != len(text):
        raise BadJson(f"Extra data: char {at + 1}")
    return items


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (without recursion); stops past the limit."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if items is None:
            continue
        deepest = max(deepest, d)
        if d > JSON_DEPTH:
            break
        stack.extend((x, d + 1) for x in items if isinstance(x, dict | list))
    return deepest


@dataclass(frozen=True)
class FieldRule:
    """One scalar field as both validators check it."""

    path: str  # key in the validated output: "assets.houses", or a member field name
    key: str  # key in the input object
    kind: str
    values: tuple[str, ...] = ()
    by: tuple[str, dict[str, tuple[str, ...]]] | None = None  # (output key it depends on, allowed values)
    when: tuple[tuple[str, Any], ...] = ()  # required when these output keys have these values
    has_default: bool = False
    default: Any = None
    nullable: bool = False
    lo: Any = None  # bounds: a number, or a date written in record.yaml
    hi: Any = None
    date_lo: str | None = None  # a date bounded by another field (output key)
    date_hi: str | None = None
    lo_strict: bool = False  # date_lo is exclusive (``after:``): equal to it is out of bounds too
    unique: bool = False

    @property
    def cond(self) -> str:
        return when_text(self.when)

    def absent(self, prefix: str, out: dict[str, Any], problems: list[FieldProblem], today: dt.date | None) -> None:
        """An absent, null or blank value: the default, None, or a problem."""
        if self.when and when_holds(self.when, out):
            problems.append(FieldProblem(prefix + self.path, say("required_when", cond=self.cond)))
        elif self.has_default:
            out[self.path] = (today or dt.date.today()) if self.default == TODAY else self.default
        elif self.nullable or self.when:
            out[self.path] = None
        else:
            problems.append(FieldProblem(prefix + self.path, say("required")))

    def check(
        self,
        value: Any,
        prefix: str,
        out: dict[str, Any],
        problems: list[FieldProblem],
        shape: list[FieldProblem],
        today: dt.date | None,
    ) -> None:
        """Parse one value into ``out[path]`` or report why not (the canonical, slow path)."""
        try:
            text = value_text(value)
        except BadValue as exc:
            shape.append(FieldProblem(prefix + self.path, str(exc)))
            return
        if text is None:
            self.absent(prefix, out, problems, today)
            return
        values = self.values
        if self.by is not None:
            values = self.by[1].get(out.get(self.by[0]), ())  # type: ignore[arg-type]
            if not values:
                return  # the field it depends on is absent or bad, and that is reported
        try:
            parsed = parse_text(self.kind, text, values)
        except BadValue as exc:
            problems.append(FieldProblem(prefix + self.path, str(exc)))
            return
        if values and self.kind == "int" and str(parsed) not in values:  # a whole number from a listed set
            problems.append(FieldProblem(prefix + self.path, say("enum", values=", ".join(values), got=text, hint="")))
        elif self.lo is not None and parsed < self.lo:
            problems.append(FieldProblem(prefix + self.path, say("min", bound=self.lo, got=shown(text))))
        elif self.hi is not None and parsed > self.hi:
            problems.append(FieldProblem(prefix + self.path, say("max", bound=self.hi, got=shown(text))))
        else:
            out[self.path] = parsed


def norm(value: Any) -> str:
    """A value as a condition compares it: parsed or read back from a column alike."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def when_holds(when: tuple[tuple[str, Any], ...], out: Mapping[str, Any]) -> bool:
    """Whether every ``(key, wanted)`` holds: the value at ``key`` is ``wanted``, or one of
    them when ``wanted`` is a tuple (an absent value holds none)."""
    for key, wanted in when:
        got = out.get(key)
        if got is None or norm(got) not in {norm(w) for w in (wanted if isinstance(wanted, tuple) else (wanted,))}:
            return False
    return True


def when_text(when: tuple[tuple[str, Any], ...]) -> str:
    """The condition as messages word it: "type is emergency", "consciousness is 0, 1 or 2"."""

    def one(v: Any) -> str:
        if not isinstance(v, tuple):
            return norm(v)
        words = [norm(x) for x in v]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]

    return ", ".join(f"{k.rsplit('.', 1)[-1]} is {one(v)}" for k, v in when)


@dataclass(frozen=True)
class GroupRule:
    """An object field of a member (``record.yaml`` group): absent means not applicable when
    ``nullable`` (or ``when`` does not hold); given, every key inside it is checked."""

    path: str  # "ability_assessment.adl": the object's dotted path from the member
    key: str
    nullable: bool
    when: tuple[tuple[str, Any], ...]  # required when these output keys have these values
    known: frozenset[str]
    entries: tuple[FieldRule | GroupRule, ...]

    def rules(self) -> list[FieldRule]:
        """Every scalar field inside, at any depth, in declaration order."""
        return [r for e in self.entries for r in (e.rules() if isinstance(e, GroupRule) else [e])]

    def groups(self) -> list[GroupRule]:
        """This object and every object inside it, outermost first."""
        return [self, *(g for e in self.entries if isinstance(e, GroupRule) for g in e.groups())]

    def paths(self) -> list[str]:
        """Every output key this object sets: itself, its objects and its fields."""
        return [g.path for g in self.groups()] + [r.path for r in self.rules()]

    @property
    def required_message(self) -> str:
        """What is said when this object is absent where it is required."""
        return say("required_when", cond=when_text(self.when)) if self.when else say("required")

    def missing(self, out: Mapping[str, Any]) -> str | None:
        """Why this object may not be absent (the message), or None: it is not applicable."""
        if self.when:
            return self.required_message if when_holds(self.when, out) else None
        return None if self.nullable else self.required_message

    def absent(self, prefix: str, out: dict[str, Any], problems: list[FieldProblem]) -> None:
        """An absent or null object: a problem, or every key inside it null."""
        why = self.missing(out)
        if why is not None:
            problems.append(FieldProblem(prefix + self.path, why))
            return
        for path in self.paths():
            out[path] = None


def _entry(spec: FieldSpec, parent: str, known: Mapping[str, frozenset[str]]) -> FieldRule | GroupRule:
    """The rule of one member field, or of an object and everything inside it."""
    if spec.kind != "group":
        return field_rule(spec, spec.name, parent)
    pre = parent + "." if parent else ""
    return GroupRule(
        path=spec.name,
        key=spec.key,
        nullable=spec.nullable,
        when=tuple((pre + k, v) for k, v in spec.required_when.items()),
        known=known["member." + spec.name],
        entries=tuple(_entry(sub, spec.name, known) for sub in spec.fields),
    )


def member_entries(schema: RecordSchema) -> list[FieldRule | GroupRule]:
    """A member's fields in declaration order, objects with everything inside them."""
    return [_entry(spec, "", schema.known) for spec in schema.member]


def member_groups(schema: RecordSchema) -> list[GroupRule]:
    """Every object of a member, at any depth, outermost first."""
    return [g for e in member_entries(schema) if isinstance(e, GroupRule) for g in e.groups()]


def _bounds(spec: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, bound in (("lo", spec.min), ("hi", spec.max)):
        if bound is None:
            continue
        if isinstance(bound, str):
            out["date_" + name] = bound
        else:
            out[name] = bound
    if spec.after is not None:  # record.yaml holds one lower bound, `min` or `after`
        out["date_lo"], out["lo_strict"] = spec.after, True
    return out


def field_rule(spec: FieldSpec, path: str, group: str = "", group_nullable: bool = False) -> FieldRule:
    """The rule for one declared scalar field; ``group`` prefixes sibling references."""
    pre = group + "." if group else ""
    by = None
    if spec.values_by is not None:
        dep, table = spec.values_by
        by = (pre + dep, table)
    values = spec.values
    return FieldRule(
        path=path,
        key=spec.key,
        kind=spec.kind,
        values=values,
        by=by,
        when=tuple((pre + k, v) for k, v in spec.required_when.items()),
        has_default=spec.has_default,
        default=spec.default,
        nullable=spec.nullable,
        unique=spec.unique,
        **_bounds(spec),
    )


def present(value: Any) -> bool:
    """Whether an input value counts as given (not null, not blank text)."""
    return value is not None and not (isinstance(value, str) and not value.strip(BLANKS))


def unknown_problem(path: str, key: str, known: Iterable[str]) -> FieldProblem:
    return FieldProblem(path, say("unknown", hint=did_you_mean(key, known)))


def unknown_fields(obj: Mapping[str, Any], known: frozenset[str], prefix: str, problems: list[FieldProblem]) -> None:
    """Every key of ``obj`` that is not declared and holds a value."""
    for key, value in obj.items():
        if key not in known and present(value):
            problems.append(unknown_problem(prefix + str(key), str(key), known))


def cross_rules(rules: list[FieldRule]) -> list[FieldRule]:
    """The member rules with a check spanning fields: ``unique`` (no two members of one
    household share the value), or a date bounded by another field (``date_lo``/``date_hi``,
    a member's own field or else the household's)."""
    return [r for r in rules if r.unique or r.date_lo or r.date_hi]


# ---------------------------------------------------------------- parameters in force


@dataclass(frozen=True)
class Coverage:
    """For each region, the first date on which every parameter has a value.

    ``first[region]`` is None for a region with values of some parameters but not all;
    ``other`` is the first date for any region not named (None: such regions are unknown).
    """

    first: dict[str, dt.date | None]
    other: dt.date | None

    def first_date(self, region: str) -> dt.date | None:
        return self.first.get(region, self.other)

    def problem(self, region: Any, on: Any) -> FieldProblem | None:
        """Why no decision can be made for this region and date, or None."""
        if not isinstance(region, str) or not isinstance(on, dt.date):
            return None
        first = self.first_date(region)
        if first is None:
            known = ", ".join(sorted(r for r, d in self.first.items() if d is not None)) or "-"
            return FieldProblem(REGION_FIELD, say("unknown_region", got=shown(region), known=known))
        if on < first:
            return FieldProblem(DATE_FIELD, say("too_early", first=first, region=region, got=on))
        return None


def parameter_coverage(ruleset: Ruleset) -> Coverage:
    """Compute once per ruleset from ``ruleset.parameters`` ("*" = any region)."""
    params = list(ruleset.parameters.values())
    regions = {r for p in params for r in p.regions if r != "*"}
    first: dict[str, dt.date | None] = {}
    for region in sorted(regions):
        starts = []
        for p in params:
            versions = p.regions.get(region) or p.regions.get("*")
            starts.append(min(v.start for v in versions) if versions else None)
        first[region] = None if None in starts else max((s for s in starts if s is not None), default=dt.date.min)
    wild = [min(v.start for v in p.regions["*"]) if p.regions.get("*") else None for p in params]
    other = None if None in wild else max((s for s in wild if s is not None), default=dt.date.min)
    return Coverage(first, other)


def repeated_household_ids(households: Iterable[Any], id_field: str = "household_id") -> frozenset[str]:
    """Household IDs that appear more than once in one input (as validation reads them)."""
    seen: Counter[str] = Counter()
    for h in households:
        if isinstance(h, Mapping):
            try:
                hid = value_text(h.get(id_field))
            except BadValue:
                continue
            if hid is not None:
                seen[hid] += 1
    return frozenset(k for k, n in seen.items() if n > 1)


def schema_rules(schema: RecordSchema) -> tuple[list[tuple[FieldSpec, list[FieldRule]]], list[FieldRule]]:
    """(household entries: a spec with its rules, member rules), in declaration order."""
    household: list[tuple[FieldSpec, list[FieldRule]]] = []
    for spec in schema.household:
        if spec.kind == "members":
            household.append((spec, []))
        elif spec.kind == "group":
            rules = [field_rule(sub, sub.name, spec.name, spec.nullable) for sub in spec.fields]
            household.append((spec, rules))
        else:
            household.append((spec, [field_rule(spec, spec.name)]))
    members = [r for e in member_entries(schema) for r in (e.rules() if isinstance(e, GroupRule) else [e])]
    return household, members
