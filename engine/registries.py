"""Registries kept by the bureau (officials' relatives, kin filings), loaded from CSV.

Every row is validated against the columns declared in ``record.yaml``; bad rows are
returned as rejects with the line and the reason, never dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import FieldProblem, InputError
from engine.messages import text as catalogue_text
from engine.ruleset import RegistrySpec, Ruleset
from engine.types import BadValue, parse_value

__all__ = ["Registries", "Registry", "RegistryReject", "parse_registry_csv"]


@dataclass(frozen=True)
class RegistryReject:
    line: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class Registry:
    name: str
    keys: frozenset[str]
    version: str  # content hash, recorded with each decision
    rows: int
    rejects: tuple[RegistryReject, ...] = ()


def parse_registry_csv(spec: RegistrySpec, text: str) -> Registry:
    """Parse a registry CSV (UTF-8, header row) against its declared columns."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c.name for c in spec.columns if c.name not in header]
    if missing:
        raise InputError(
            [FieldProblem(m, catalogue_text("input.header_missing", "en", name=spec.name)) for m in missing]
        )
    keys: set[str] = set()
    rejects: list[RegistryReject] = []
    rows = 0
    for i, row in enumerate(reader, start=2):
        rows += 1
        bad = False
        for col in spec.columns:
            raw = (row.get(col.name) or "").strip()
            if raw == "" and not col.nullable:
                rejects.append(RegistryReject(i, col.name, "is required"))
                bad = True
                continue
            if raw == "":
                continue
            try:
                value = parse_value(col.kind, raw, col.values)
            except BadValue as exc:
                rejects.append(RegistryReject(i, col.name, str(exc)))
                bad = True
                continue
            if col.name == spec.key:
                key = str(value)
        if not bad:
            keys.add(key)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return Registry(spec.name, frozenset(keys), digest, rows, tuple(rejects))


@dataclass
class Registries:
    """The registry versions a decision uses; empty registries when none are loaded."""

    by_name: dict[str, Registry] = field(default_factory=dict)

    @classmethod
    def empty(cls, ruleset: Ruleset) -> Registries:
        return cls({n: Registry(n, frozenset(), "empty", 0) for n in ruleset.registries})

    @classmethod
    def from_files(cls, ruleset: Ruleset, paths: Mapping[str, str | Path | None]) -> Registries:
        regs = cls.empty(ruleset)
        for name, path in paths.items():
            if path is None:
                continue
            spec = ruleset.registries[name]
            regs.by_name[name] = parse_registry_csv(spec, Path(path).read_text(encoding="utf-8"))
        return regs

    def with_keys(self, name: str, keys: Iterable[str], version: str) -> Registries:
        out = dict(self.by_name)
        ks = frozenset(keys)
        out[name] = Registry(name, ks, version, len(ks))
        return Registries(out)

    def versions(self) -> dict[str, str]:
        return {n: r.version for n, r in sorted(self.by_name.items())}
