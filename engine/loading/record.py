"""Declarations from record.yaml: the household and member input fields, and the registries."""

from __future__ import annotations

from typing import Any

from engine.errors import ProblemKind
from engine.plan import InputField, RegistryRef
from engine.record import RecordSchema
from engine.ruleset import RegistrySpec
from engine.source import YMap, pos_of
from engine.types import registry_type

from .draft import Draft
from .shapes import check_keys, checked_name, text
from .state import Declared

__all__ = ["declare_inputs", "declare_registries"]


def declare_inputs(d: Declared, record: RecordSchema) -> None:
    """One input symbol per record field, titled as the record titles it."""
    for name, t in record.household_types().items():
        d.add(Draft(name, "household", InputField, t, title={}))
    for name, t in record.member_types().items():
        d.add(Draft(name, "member", InputField, t, title={}))
    titles = {s.name: s.title for s in record.household}
    titles.update({sub.name: sub.title for s in record.household for sub in s.fields})
    for (scope, name), sym in d.symbols.items():
        sym.title = (
            titles.get(name, {})
            if scope == "household"
            else next((s.title for s in record.member if s.name == name), {})
        )


def declare_registries(d: Declared, doc: Any) -> None:
    """The `registries` section: each registry's columns (or how it is computed)."""
    if not isinstance(doc, YMap):
        d.problems.append(pos_of(doc).problem(ProblemKind.BAD_TYPE, "`registries` must be a mapping"))
        return
    from engine.record import _spec  # the same field-spec reader as record fields

    for name, spec in doc.items():
        if not check_keys(spec, "registry", d.problems, f"registry.{name}", doc.value_pos[name]):
            continue
        if checked_name(name, doc.key_pos[name], d.problems, "registry", dotted=False) is None:
            continue
        columns = []
        cols = spec.get("columns")
        if isinstance(cols, YMap):
            for col, raw in cols.items():
                if checked_name(col, cols.key_pos[col], d.problems, "column", f"registry.{name}", dotted=False) is None:
                    continue
                fs = _spec(
                    str(col), raw, cols.value_pos[col], d.problems, {"str", "resident_id", "date", "enum", "int"}
                )
                if fs:
                    columns.append(fs)
        elif "computed" not in spec:
            d.problems.append(
                spec.pos.problem(
                    ProblemKind.MISSING_KEY, "a registry needs `columns` or `computed`", f"registry.{name}"
                )
            )
        reg = RegistrySpec(
            str(name), text(spec, "title", d.problems), str(spec.get("key")), columns, spec.get("computed")
        )
        if columns and reg.key not in {c.name for c in columns}:
            d.problems.append(
                pos_of(spec, "key").problem(
                    ProblemKind.UNKNOWN_NAME, f"key `{reg.key}` is not one of the columns", f"registry.{name}"
                )
            )
        d.registries[reg.name] = reg
        d.add(Draft(f"registry.{name}", "household", RegistryRef, registry_type(), title=reg.title, pos=spec.pos))
