"""Validating one record of a declared record type, and its registries' CSV rows.

One function, ``validate``, checks a record whether it comes as a JSON object or as a row of
a table: a table row is handed over as the mapping of its columns, so the row and column
paths give the same verdict, field and reason by construction. Values are read as the
household validators read them (``engine.types.parse_value``): null, blank and absent text
are the same, text is trimmed, ``"TRUE"`` is true.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import FieldProblem, InputError, did_you_mean
from engine.messages import text as catalogue_text
from engine.registries import RegistryReject
from engine.types import BadValue, parse_value, value_text
from engine.validation.messages import say

from .spec import RecordTypeSpec, RegistryDecl

__all__ = ["SubjectRegistry", "empty_registry", "parse_subject_registry", "validate"]


def validate(spec: RecordTypeSpec, raw: Any) -> dict[str, Any]:
    """The parsed record, or ``InputError`` naming every bad field."""
    if not isinstance(raw, Mapping):
        raise InputError([FieldProblem("(record)", say("household"))])
    problems: list[FieldProblem] = []
    declared = {f.name for f in spec.fields}
    for key, value in raw.items():
        if key not in declared and value is not None:
            problems.append(FieldProblem(str(key), say("unknown", hint=did_you_mean(str(key), declared))))
    values: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in raw:
            problems.append(FieldProblem(f.name, catalogue_text("input.every_key", "en")))
            continue
        try:
            text = value_text(raw[f.name])
            values[f.name] = None if text is None else parse_value(f.type.kind, text, f.type.values)
        except BadValue as exc:
            problems.append(FieldProblem(f.name, str(exc)))
    bad = {p.field for p in problems}
    for f in spec.fields:
        if f.name in bad or f.name not in values:
            continue
        conds = [(k, v) for k, v in f.required_when]
        applies = all(values.get(k) == v for k, v in conds)
        if values[f.name] is None:
            if conds and applies:
                cond = " and ".join(f"{k} is {v}" for k, v in conds)
                problems.append(FieldProblem(f.name, say("required_when", cond=cond)))
            elif not f.type.nullable and not conds:
                problems.append(FieldProblem(f.name, say("required")))
            continue
        if conds and not applies:
            values[f.name] = None  # ignored for the other kinds of subject
            continue
        for ref, key in ((f.min, "date_min"), (f.max, "date_max")):
            bound = values.get(ref) if ref else None
            if isinstance(bound, dt.date) and ref not in bad:
                v = values[f.name]
                if (key == "date_min" and v < bound) or (key == "date_max" and v > bound):
                    problems.append(FieldProblem(f.name, say(key, ref=ref, bound=bound, got=v)))
    if problems:
        raise InputError(problems)
    return values


@dataclass(frozen=True)
class SubjectRegistry:
    """A registry of dated rows, indexed by its match column."""

    name: str
    rows: Mapping[str, tuple[Mapping[str, Any], ...]]
    version: str
    count: int
    rejects: tuple[RegistryReject, ...] = ()

    def of(self, key: Any) -> tuple[Mapping[str, Any], ...]:
        return self.rows.get(str(key), ())

    def accepted(self) -> list[dict[str, Any]]:
        """Every accepted row as JSON-ready values (what the service stores as a version)."""
        return [
            {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
            for rows in self.rows.values()
            for row in rows
        ]


def empty_registry(decl: RegistryDecl) -> SubjectRegistry:
    return SubjectRegistry(decl.name, {}, "empty", 0)


def parse_subject_registry(spec: RecordTypeSpec, decl: RegistryDecl, text: str, version: str = "") -> SubjectRegistry:
    """Parse a registry CSV (UTF-8, header row); every bad row is a reject naming its column."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c.name for c in decl.columns if c.name not in header]
    if missing:
        raise InputError(
            [FieldProblem(m, catalogue_text("input.header_missing", "en", name=decl.name)) for m in missing]
        )
    return _index(spec, decl, enumerate(reader, start=2), version or hashlib.sha256(text.encode()).hexdigest()[:16])


def registry_from_rows(
    spec: RecordTypeSpec, decl: RegistryDecl, rows: Sequence[Mapping[str, Any]], version: str
) -> SubjectRegistry:
    """A registry from rows already accepted (as stored by the service)."""
    return _index(spec, decl, enumerate(rows, start=2), version)


def _index(spec: RecordTypeSpec, decl: RegistryDecl, rows: Any, version: str) -> SubjectRegistry:
    by_key: dict[str, list[dict[str, Any]]] = {}
    rejects: list[RegistryReject] = []
    count = 0
    categories = spec.category_ids
    for line, row in rows:
        count += 1
        parsed: dict[str, Any] = {}
        bad = False
        for col in decl.columns:
            try:
                text = value_text(row.get(col.name))
                if text is None:
                    if not col.nullable:
                        raise BadValue(say("required"))
                    parsed[col.name] = None
                    continue
                kind, values = ("enum", categories) if col.kind == "category" else (col.kind, ())
                parsed[col.name] = parse_value(kind, text, values)
                after = parsed.get(col.after) if col.after else None
                if after is not None and parsed[col.name] <= after:
                    raise BadValue(f"must be after {col.after} {after} (got {parsed[col.name]})")
            except BadValue as exc:
                rejects.append(RegistryReject(line, col.name, str(exc)))
                bad = True
                break
        if not bad:
            by_key.setdefault(str(parsed[decl.match_column]), []).append(parsed)
    frozen = {k: tuple(v) for k, v in by_key.items()}
    return SubjectRegistry(decl.name, frozen, version, count, tuple(rejects))
