"""The household record schema, declared in ``rules/record.yaml``, and input validation.

Validation turns one household object (JSON) into the engine's internal form: a flat
dict with dotted keys (``assets.houses``) plus a list of member dicts, money as
``Decimal``, dates as ``datetime.date``. Every problem is reported with its field path;
a required field that is absent is an error, never a default. The checks themselves are
shared with the caseload validator: ``engine.validation``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem, did_you_mean
from engine.source import Pos, YMap, pos_of
from engine.types import INPUT_KINDS, MONEY_DIGITS, BadValue, Type, parse_value
from engine.validation.row import RowValidator, compile_row_validator
from engine.validation.rules import Coverage, json_value, repeated_household_ids

__all__ = ["FieldSpec", "RecordSchema", "load_record_schema"]

_SPEC_KEYS = {
    "type",
    "title",
    "default",
    "nullable",
    "values",
    "values_by",
    "required_when",
    "min",
    "max",
    "after",
    "unique",
    "fields",
    "labels",
}
_TODAY = "today"
# a field name is a key of JSON, a column of a table and a name in formulas: an identifier
# (never "", never a `~` name, which the caseload tables use for their own columns)
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class FieldSpec:
    name: str  # dotted path from the record root, e.g. "assets.houses"
    kind: str  # an input kind, "group" or "members"
    title: dict[str, str]
    nullable: bool = False
    has_default: bool = False
    default: Any = None
    values: tuple[str, ...] = ()
    values_by: tuple[str, dict[str, tuple[str, ...]]] | None = None
    required_when: dict[str, Any] = field(default_factory=dict)
    min: Any = None
    max: Any = None
    after: str | None = None  # a date that must be later than this other field (exclusive bound)
    fields: list[FieldSpec] = field(default_factory=list)
    pos: Pos = Pos("<record>", 0, 0)
    key: str = ""
    enum_set: frozenset[str] = frozenset()
    unique: bool = False  # no two members of one household share the value
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # an enum's values as officers read them

    def __post_init__(self) -> None:
        self.key = self.name.rsplit(".", 1)[-1]

    def groups(self) -> list[FieldSpec]:
        """This group and every group nested in it, outermost first."""
        return [self, *(g for f in self.fields if f.kind == "group" for g in f.groups())]

    def value_type(self) -> Type:
        kind = {"resident_id": "str", "group": "bool"}.get(self.kind, self.kind)
        values = self.values or tuple(sorted({v for vs in (self.values_by or ("", {}))[1].values() for v in vs}))
        nullable = self.nullable or bool(self.required_when)
        return Type(kind, nullable, values if kind == "enum" else ())


@dataclass
class RecordSchema:
    household: list[FieldSpec]
    member: list[FieldSpec]
    id_field: str = "household_id"
    members_field: str = "members"
    known: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)  # "", "member" or a group
    coverage: Coverage | None = field(default=None, repr=False, compare=False)  # bound once per ruleset
    _row: RowValidator | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.known[""] = frozenset(s.key for s in self.household)
        self.known["member"] = frozenset(s.key for s in self.member)
        for spec in self.household:
            if spec.kind == "group":
                self.known[spec.name] = frozenset(f.key for f in spec.fields)
        for spec in self.member:  # a member's object fields: "member.<path>"
            for group in spec.groups() if spec.kind == "group" else ():
                self.known["member." + group.name] = frozenset(f.key for f in group.fields)

    def household_types(self) -> dict[str, Type]:
        out: dict[str, Type] = {}
        for spec in self.household:
            if spec.kind == "members":
                out[spec.name] = Type("members")
                continue
            if spec.kind == "group":
                if spec.nullable:
                    out[spec.name] = Type("bool", nullable=True)
                for sub in spec.fields:
                    t = sub.value_type()
                    out[sub.name] = t.with_nullable(t.nullable or spec.nullable)
                continue
            out[spec.name] = spec.value_type()
        return out

    def member_types(self) -> dict[str, Type]:
        """A member's inputs: an object field is flattened to dotted names (its fields, and
        the object itself as true or null), null wherever an enclosing object may be absent."""
        return _flat_types(self.member, False)

    # ------------------------------------------------------------ JSON Schema

    def json_schema(self) -> dict[str, Any]:
        """The household record as JSON Schema (for OpenAPI and editors)."""
        member = _object_schema(self.member)
        props: dict[str, Any] = {}
        required: list[str] = []
        for spec in self.household:
            if spec.kind == "members":
                props[spec.name] = {"type": "array", "items": member, "minItems": 1}
                if isinstance(spec.max, int):
                    props[spec.name]["maxItems"] = spec.max
            elif spec.kind == "group":
                group = _object_schema(spec.fields)
                nullable = spec.nullable or spec.has_default
                props[spec.key] = {"anyOf": [group, {"type": "null"}]} if nullable else group
            else:
                props[spec.key] = _field_schema(spec)
            if not spec.has_default and not spec.nullable:
                required.append(spec.key)
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    # ------------------------------------------------------------ validation

    def validate(
        self,
        raw: Any,
        today: dt.date | None = None,
        *,
        coverage: Coverage | None = None,
        repeated: frozenset[str] = frozenset(),
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Validate one household; returns (household values, member dicts) or raises InputError.

        ``coverage`` (default: the one bound to this schema) rejects a region or decision
        date without parameters; ``repeated`` are household IDs seen more than once in the input.
        """
        row = self._row
        if row is None:
            row = self._row = compile_row_validator(self)
        return row(raw, today, coverage or self.coverage, repeated)

    def read_json(self, text: str) -> Any:
        """One household's JSON text (a file, or a line of JSON Lines) as ``check`` reads it;
        raises ``engine.validation.rules.BadJson`` (a ValueError) when it is not JSON or too deep."""
        return json_value(text)

    def members_max(self) -> int | None:
        """The most members a household may have (``max`` of the members field)."""
        spec = next((s for s in self.household if s.kind == "members"), None)
        return spec.max if spec is not None and isinstance(spec.max, int) else None

    def repeated_ids(self, households: Iterable[Any]) -> frozenset[str]:
        """Household IDs that appear more than once in one input: every copy is rejected."""
        return repeated_household_ids(households, self.id_field)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_row": None}  # generated code is rebuilt, not pickled


def _flat_types(specs: list[FieldSpec], conditional: bool) -> dict[str, Type]:
    out: dict[str, Type] = {}
    for spec in specs:
        if spec.kind == "group":
            inner = conditional or spec.nullable or bool(spec.required_when)
            out[spec.name] = Type("bool", nullable=inner)
            out.update(_flat_types(spec.fields, inner))
        else:
            t = spec.value_type()
            out[spec.name] = t.with_nullable(t.nullable or conditional)
    return out


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "resident_id": {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$"},
    "money": {
        "anyOf": [
            {"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,2})?$"},
            {"type": "number", "minimum": 0, "exclusiveMaximum": 10**MONEY_DIGITS},
        ]
    },
    "int": {"type": "integer"},
    "decimal": {"type": "number"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "group":
        group = _object_schema(spec.fields)
        return {"anyOf": [group, {"type": "null"}]} if spec.nullable or spec.required_when else group
    if spec.kind == "enum":
        values = list(spec.values) or sorted({v for vs in (spec.values_by or ("", {}))[1].values() for v in vs})
        schema: dict[str, Any] = {"type": "string", "enum": values}
    else:
        schema = dict(_JSON_TYPES[spec.kind])
        if spec.values:  # a whole number from a listed set
            schema["enum"] = [int(v) for v in spec.values]
    if isinstance(spec.min, int | float):  # a bound naming another field has no JSON Schema form
        schema["minimum"] = spec.min
    if isinstance(spec.max, int | float):
        schema["maximum"] = spec.max
    if spec.title:
        schema["title"] = spec.title.get("zh", "") + (" / " + spec.title["en"] if "en" in spec.title else "")
    if spec.nullable or spec.required_when or spec.has_default:  # null is the same as absent
        return {"anyOf": [schema, {"type": "null"}], **({"title": schema["title"]} if "title" in schema else {})}
    return schema


def _object_schema(specs: list[FieldSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {s.key: _field_schema(s) for s in specs},
        "required": [s.key for s in specs if not s.has_default and not s.nullable and not s.required_when],
        "additionalProperties": False,
    }


# ---------------------------------------------------------------- loading


def _title(spec: Any) -> dict[str, str]:
    t = spec.get("title") if isinstance(spec, Mapping) else None
    return {str(k): str(v) for k, v in t.items()} if isinstance(t, Mapping) else {}


def _spec(
    name: str, raw: Any, where: Pos, problems: list[Problem], allow: set[str], *, nest: bool = False
) -> FieldSpec | None:
    """One field; ``nest``: a group may hold groups (a member's objects)."""
    if not isinstance(raw, YMap):
        problems.append(where.problem("bad-field-spec", f"field `{name}` must be a mapping with a `type`"))
        return None
    for key in raw:
        if key not in _SPEC_KEYS:
            problems.append(
                raw.key_pos[key].problem("unknown-key", f"unknown key `{key}`" + did_you_mean(str(key), _SPEC_KEYS))
            )
    kind = raw.get("type")
    if kind not in allow:
        problems.append(
            pos_of(raw, "type").problem(
                "unknown-type",
                f"field `{name}` has type `{kind}`; use one of {', '.join(sorted(allow))}"
                + did_you_mean(str(kind), allow),
            )
        )
        return None
    spec = FieldSpec(name=name, kind=str(kind), title=_title(raw), pos=raw.pos)
    spec.nullable = bool(raw.get("nullable", False))
    if "default" in raw:
        spec.has_default = True
        d = raw["default"]
        if d == _TODAY or d is None or kind == "group":
            spec.default = d
        else:
            try:
                spec.default = parse_value(spec.kind, d, tuple(raw.get("values") or ()))
            except BadValue as exc:
                problems.append(pos_of(raw, "default").problem("bad-default", f"default of `{name}` {exc}"))
    if "values" in raw:
        spec.values = tuple(str(v) for v in raw["values"])
        spec.enum_set = frozenset(spec.values)
        if kind == "int" and not all(isinstance(v, int) and not isinstance(v, bool) for v in raw["values"]):
            problems.append(
                pos_of(raw, "values").problem("bad-field-spec", f"values of `{name}` must be whole numbers")
            )
    if "values_by" in raw:
        vb = raw["values_by"]
        if isinstance(vb, Mapping) and len(vb) == 1:
            dep, table = next(iter(vb.items()))
            spec.values_by = (str(dep), {str(k): tuple(str(x) for x in v) for k, v in table.items()})
        else:
            problems.append(
                pos_of(raw, "values_by").problem(
                    "bad-field-spec", "values_by needs one field: {field: {value: [allowed...]}}"
                )
            )
    if "required_when" in raw:
        # {field: value} or {field: [values...]}: required when the field has (one of) these
        when = raw["required_when"]
        spec.required_when = {
            str(k): tuple(v) if isinstance(v, list) else v
            for k, v in (when.items() if isinstance(when, Mapping) else ())
        }
    spec.min, spec.max = raw.get("min"), raw.get("max")
    spec.min = str(spec.min) if isinstance(spec.min, str) else spec.min
    spec.max = str(spec.max) if isinstance(spec.max, str) else spec.max
    if "after" in raw:
        spec.after = str(raw["after"])
    spec.unique = bool(raw.get("unique", False))
    labels = raw.get("labels")
    if isinstance(labels, Mapping):
        spec.labels = {str(k): _title({"title": v}) for k, v in labels.items()}
    if kind == "group":
        fields = raw.get("fields")
        if not isinstance(fields, YMap):
            problems.append(raw.pos.problem("bad-field-spec", f"group `{name}` needs `fields`"))
        else:
            for sub_name, sub_raw in fields.items():
                if not _named(sub_name, fields, problems):
                    continue
                kinds = set(INPUT_KINDS) | ({"group"} if nest else set())
                sub = _spec(f"{name}.{sub_name}", sub_raw, fields.value_pos[sub_name], problems, kinds, nest=nest)
                if sub:
                    spec.fields.append(sub)
    return spec


def _named(name: Any, within: YMap, problems: list[Problem]) -> bool:
    if isinstance(name, str) and _FIELD_NAME.fullmatch(name):
        return True
    where = within.key_pos.get(name, within.pos)
    problems.append(
        where.problem("bad-field-spec", f"field name `{name}` must be a name: letters, digits and _, not first a digit")
    )
    return False


def load_record_schema(doc: Any, display: str, problems: list[Problem]) -> RecordSchema | None:
    """Read the ``household`` and ``member`` sections of ``record.yaml``."""
    if not isinstance(doc, YMap):
        problems.append(Problem("bad-file", "record.yaml must be a mapping", display, 1, 1))
        return None
    household: list[FieldSpec] = []
    member: list[FieldSpec] = []
    for section, target, allow in (
        ("household", household, set(INPUT_KINDS) | {"group", "members"}),
        ("member", member, set(INPUT_KINDS) | {"group"}),
    ):
        raw = doc.get(section)
        if not isinstance(raw, YMap):
            problems.append(doc.pos.problem("missing-section", f"record.yaml needs a `{section}` mapping"))
            continue
        for name, spec_raw in raw.items():
            if not _named(name, raw, problems):
                continue
            spec = _spec(str(name), spec_raw, raw.value_pos[name], problems, allow, nest=section == "member")
            if spec:
                target.append(spec)
    for spec in household + member:
        _check_labels(spec, problems)
    return RecordSchema(household, member)


def _check_labels(spec: FieldSpec, problems: list[Problem]) -> None:
    """What officers read is declared here, in both languages: every field has a `title`,
    every value of an enumeration a label (`labels: {value: {zh, en}}`), none left over."""
    for lang in ("zh", "en"):
        if not spec.title.get(lang):
            problems.append(spec.pos.problem("missing-key", f"field `{spec.name}` needs a `title` with `{lang}`"))
    if spec.kind == "enum":
        values = spec.values or tuple(dict.fromkeys(v for vs in (spec.values_by or ("", {}))[1].values() for v in vs))
        for v in values:
            missing = [lang for lang in ("zh", "en") if not spec.labels.get(v, {}).get(lang)]
            if missing:
                problems.append(
                    spec.pos.problem(
                        "missing-key",
                        f"field `{spec.name}`: value `{v}` needs a label ({', '.join(f'`{x}`' for x in missing)})",
                    )
                )
        for v in spec.labels:
            if v not in values:
                problems.append(
                    spec.pos.problem("unknown-value", f"field `{spec.name}`: `{v}` in labels is not a value")
                )
    for sub in spec.fields:
        _check_labels(sub, problems)
