"""The household form of the new-decision screen, generated from the record's JSON Schema
(rules/record.yaml): which fields exist, their labels, kinds and choices come from the rules,
never from this module. A form's values become a household object again, and the engine's
validator's problems are placed next to the field they name.

Input names: ``h:PATH`` for a household field (``h:assets.financial_assets``), ``m3:NAME``
for member 3's field. Member fields that are objects (e.g. an ability assessment) are not on
the form: paste the household as JSON for those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "form_fields", "form_text", "household_from_form", "place_problems"]

MAX_MEMBERS = 100
_MEMBER_KEY = re.compile(r"m([0-9]{1,3}):([A-Za-z0-9_]{1,100})")
_PROBLEM_MEMBER = re.compile(r"members\[([0-9]{1,3})\]\.([A-Za-z0-9_]+)")


@dataclass(frozen=True)
class Field:
    path: str  # dotted, inside the household or inside one member
    title: str  # "中文 / English", as the schema gives it
    kind: str  # text | date | money | int | number | bool | enum
    choices: tuple[str, ...] = ()
    required: bool = False

    def label(self, lang: str) -> str:
        zh, _, en = self.title.partition(" / ")
        return (en or zh) if lang == "en" else zh

    @property
    def dom(self) -> str:
        return self.path.replace(".", "-")


def _plain(spec: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """(the schema without a null alternative, whether null is allowed)."""
    options = spec.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            return {**rest[0], "title": spec.get("title", rest[0].get("title", ""))}, len(rest) < len(options)
        if any(o.get("type") == "number" for o in rest):  # money: a text pattern or a number
            return {"type": "money", "title": spec.get("title", "")}, False
    return spec, False


def _field(path: str, spec: Mapping[str, Any], required: bool) -> Field | None:
    plain, nullable = _plain(spec)
    kind = plain.get("type")
    title = str(plain.get("title") or spec.get("title") or path)
    if "enum" in plain:
        return Field(path, title, "enum", tuple(str(v) for v in plain["enum"]), required and not nullable)
    if kind == "boolean":
        return Field(path, title, "bool", ("true", "false"), required and not nullable)
    if kind == "string":
        return Field(path, title, "date" if plain.get("format") == "date" else "text", (), required and not nullable)
    if kind in ("money", "integer", "number"):
        return Field(path, title, "int" if kind == "integer" else kind, (), required and not nullable)
    return None  # an object or a list: not on the form


def form_fields(schema: Mapping[str, Any]) -> tuple[list[tuple[str, list[Field]]], list[Field]]:
    """([(group title, household fields)], member fields) of the record's JSON Schema."""
    groups: list[tuple[str, list[Field]]] = [("", [])]
    members: list[Field] = []
    required = set(schema.get("required") or [])
    for name, spec in (schema.get("properties") or {}).items():
        plain, _ = _plain(spec)
        if plain.get("type") == "array" and name == _members_key(schema):
            item = plain.get("items") or {}
            inner = set(item.get("required") or [])
            members = [f for n, s in (item.get("properties") or {}).items() if (f := _field(n, s, n in inner))]
        elif plain.get("type") == "object":
            inner = set(plain.get("required") or [])
            fields = [
                f for n, s in (plain.get("properties") or {}).items() if (f := _field(f"{name}.{n}", s, n in inner))
            ]
            if fields:
                groups.append((str(plain.get("title") or spec.get("title") or name), fields))
        elif (f := _field(name, spec, name in required)) is not None:
            groups[0][1].append(f)
    return groups, members


def _members_key(schema: Mapping[str, Any]) -> str:
    """The one property that is a list of objects: the household's members."""
    for name, spec in (schema.get("properties") or {}).items():
        plain, _ = _plain(spec)
        if plain.get("type") == "array" and (plain.get("items") or {}).get("type") == "object":
            return str(name)
    return ""


def household_from_form(form: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(the household the form describes, its number of member rows); blank inputs are absent."""
    household: dict[str, Any] = {}
    rows: dict[int, dict[str, Any]] = {}
    for key, value in form.items():
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        if key.startswith("h:"):
            parts = key[2:].split(".")
            if len(parts) > 2 or not all(parts):
                continue
            target = household
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = _typed(text)
        elif (m := _MEMBER_KEY.fullmatch(key)) and int(m.group(1)) < MAX_MEMBERS:
            rows.setdefault(int(m.group(1)), {})[m.group(2)] = _typed(text)
    for key in form:
        if (m := _MEMBER_KEY.fullmatch(str(key))) and int(m.group(1)) < MAX_MEMBERS:
            rows.setdefault(int(m.group(1)), {})
    household[_members_key(schema) or "members"] = [rows[i] for i in sorted(rows)]
    return household, len(rows)


def _typed(text: str) -> Any:
    """A select's true/false as JSON booleans; everything else as typed (the validator reads text)."""
    return {"true": True, "false": False}.get(text, text)


def place_problems(problems: list[Mapping[str, Any]], household: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """({input id: message} for problems that name a form input, [the other messages])."""
    placed: dict[str, str] = {}
    rest: list[str] = []
    for p in problems:
        field, message = str(p.get("field") or ""), str(p.get("message") or "")
        m = _PROBLEM_MEMBER.fullmatch(field)
        if m:
            placed.setdefault(f"m{m.group(1)}-{m.group(2)}", message)
        elif field and "[" not in field and field.count(".") <= 1 and field != "members":
            placed.setdefault("h-" + field.replace(".", "-"), message)
        else:
            rest.append(f"{field}: {message}" if field else message)
    return placed, rest


def form_values(household: Mapping[str, Any]) -> tuple[dict[str, str], int]:
    """The form's inputs for a household (to show a pasted or refused one again)."""
    values: dict[str, str] = {}
    members = household.get("members") if isinstance(household.get("members"), list) else []
    for key, value in household.items():
        if isinstance(value, Mapping):
            for inner, v in value.items():
                values[f"h:{key}.{inner}"] = form_text(v)
        elif key != "members":
            values[f"h:{key}"] = form_text(value)
    for i, member in enumerate(members or []):
        if isinstance(member, Mapping):
            for key, value in member.items():
                if not isinstance(value, Mapping | list):
                    values[f"m{i}:{key}"] = form_text(value)
    return values, max(1, len(members or []))


def form_text(value: Any) -> str:
    """A household value as its form field holds it (true/false, blank for none)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
