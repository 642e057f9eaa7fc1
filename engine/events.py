"""Change events declared in ``rules/events.yaml``: their fields, how each changes a
household record, and the programs (checks) it can affect. Checked at load time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem, did_you_mean
from engine.record import RecordSchema
from engine.source import Pos, YList, YMap, pos_of

__all__ = ["Change", "EventSpec", "load_events"]

_FIELD_KINDS = {"resident_id", "str", "date", "money", "int", "bool"}
_CHANGE_KEYS = {"target", "value", "add", "add_key"}


@dataclass(frozen=True)
class Change:
    scope: str  # member | household | registry
    target: str  # field name (or registry name)
    op: str  # set | add | add_key
    value: Any  # literal, or the name of an event field when `from_field`
    from_field: bool


@dataclass
class EventSpec:
    name: str
    title: dict[str, str]
    fields: dict[str, str]
    changes: list[Change]
    checks: list[str]
    pos: Pos = field(default_factory=lambda: Pos("events.yaml", 0, 0))

    @property
    def keyed_by(self) -> str:
        """`person_id` (a member's event) or `household_id`."""
        return "person_id" if "person_id" in self.fields else "household_id"


def load_events(
    doc: Any,
    display: str,
    record: RecordSchema,
    programs: set[str],
    registries: set[str],
    problems: list[Problem],
) -> dict[str, EventSpec]:
    if not isinstance(doc, YMap) or not isinstance(doc.get("events"), YMap):
        problems.append(Problem("bad-file", "events.yaml holds one mapping `events:`", display, 1, 1))
        return {}
    hh_types = record.household_types()
    mm_types = record.member_types()
    out: dict[str, EventSpec] = {}
    for name, spec in doc["events"].items():
        name = str(name)
        where = doc["events"].value_pos[name]
        if not isinstance(spec, YMap):
            problems.append(where.problem("bad-type", f"event `{name}` must be a mapping", name))
            continue
        for key in spec:
            if key not in ("title", "fields", "changes", "checks"):
                problems.append(
                    spec.key_pos[key].problem(
                        "unknown-key",
                        f"unknown key `{key}` in event{did_you_mean(str(key), ['title', 'fields', 'changes', 'checks'])}",
                        name,
                    )
                )
        fields_raw = spec.get("fields")
        fields: dict[str, str] = {}
        if isinstance(fields_raw, YMap):
            for f, kind in fields_raw.items():
                if not isinstance(kind, str) or kind not in _FIELD_KINDS:
                    problems.append(
                        fields_raw.value_pos[f].problem(
                            "unknown-type",
                            f"field `{f}` has type `{kind}`; use one of {', '.join(sorted(_FIELD_KINDS))}{did_you_mean(str(kind), _FIELD_KINDS)}",
                            name,
                        )
                    )
                fields[str(f)] = str(kind)
        if "person_id" not in fields and "household_id" not in fields:
            problems.append(
                spec.pos.problem("missing-key", "an event names a `person_id` or a `household_id` field", name)
            )
        changes = []
        raw_changes = spec.get("changes")
        if not isinstance(raw_changes, YList):
            problems.append(pos_of(spec, "changes").problem("missing-key", "an event needs a list of `changes`", name))
            raw_changes = YList()
        for i, ch in enumerate(raw_changes):
            change = _change(
                ch,
                raw_changes.item_pos[i] if i < len(raw_changes.item_pos) else spec.pos,
                name,
                fields,
                hh_types,
                mm_types,
                registries,
                problems,
            )
            if change:
                changes.append(change)
        checks_raw = spec.get("checks") or []
        if not isinstance(checks_raw, list):
            problems.append(pos_of(spec, "checks").problem("bad-type", "`checks` lists program ids", name))
            checks_raw = []
        checks = [str(c) for c in checks_raw]
        for i, c in enumerate(checks):
            if c not in programs:
                p = checks_raw.item_pos[i] if isinstance(checks_raw, YList) else spec.pos
                problems.append(
                    p.problem(
                        "unknown-name", f"unknown check `{c}`{did_you_mean(c, programs)}; checks are program ids", name
                    )
                )
        title_raw = spec.get("title") or {}
        title = {str(k): str(v) for k, v in title_raw.items()} if isinstance(title_raw, dict) else {}
        out[name] = EventSpec(name, title, fields, changes, checks, spec.pos)
    return out


def _change(
    ch: Any,
    where: Pos,
    event: str,
    fields: dict[str, str],
    hh_types: dict[str, Any],
    mm_types: dict[str, Any],
    registries: set[str],
    problems: list[Problem],
) -> Change | None:
    if not isinstance(ch, YMap) or "target" not in ch:
        problems.append(where.problem("bad-type", "a change is {target: ..., value|add|add_key: ...}", event))
        return None
    for key in ch:
        if key not in _CHANGE_KEYS:
            problems.append(
                ch.key_pos[key].problem(
                    "unknown-key", f"unknown key `{key}` in change{did_you_mean(str(key), _CHANGE_KEYS)}", event
                )
            )
    ops = [k for k in ("value", "add", "add_key") if k in ch]
    if len(ops) != 1:
        problems.append(ch.pos.problem("bad-value", "give exactly one of `value`, `add`, `add_key`", event))
        return None
    op = ops[0]
    target = str(ch["target"])
    tpos = pos_of(ch, "target")
    if target.startswith("registry."):
        reg = target.removeprefix("registry.")
        if reg not in registries:
            problems.append(
                tpos.problem("unknown-name", f"unknown registry `{reg}`{did_you_mean(reg, registries)}", event)
            )
            return None
        key = str(ch.get("add_key", ""))
        if op != "add_key" or key not in fields:
            problems.append(
                pos_of(ch, op).problem(
                    "unknown-name", f"`add_key` names an event field{did_you_mean(key, fields)}", event
                )
            )
            return None
        return Change("registry", reg, "add_key", key, True)
    if target.startswith("member."):
        scope, name, types = "member", target.removeprefix("member."), mm_types
        if "person_id" not in fields:
            problems.append(tpos.problem("bad-value", "a member change needs a `person_id` event field", event))
    else:
        scope, name, types = "household", target, hh_types
    t = types.get(name)
    if t is None:
        pool = [f"member.{n}" for n in mm_types] + list(hh_types)
        problems.append(
            tpos.problem("unknown-name", f"unknown record field `{target}`{did_you_mean(target, pool)}", event)
        )
        return None
    raw = ch[op]
    if op == "add":
        if t.kind != "int" or not isinstance(raw, int):
            problems.append(
                pos_of(ch, "add").problem(
                    "type-error", f"`add` needs a whole-number field and a number; `{target}` is {t.describe()}", event
                )
            )
            return None
        return Change(scope, name, "add", raw, False)
    if isinstance(raw, str) and raw in fields:
        kind = {"resident_id": "str"}.get(fields[raw], fields[raw])
        if kind != t.kind and not (t.kind == "enum" and kind == "str"):
            problems.append(
                pos_of(ch, "value").problem(
                    "type-error", f"event field `{raw}` is {kind} but `{target}` is {t.describe()}", event
                )
            )
        return Change(scope, name, "set", raw, True)
    if isinstance(raw, str) and raw.isidentifier():
        problems.append(
            pos_of(ch, "value").problem(
                "unknown-name", f"`{raw}` is not a field of this event{did_you_mean(raw, fields)}", event
            )
        )
        return None
    if t.kind == "bool" and not isinstance(raw, bool):
        problems.append(pos_of(ch, "value").problem("type-error", f"`{target}` is true/false", event))
        return None
    return Change(scope, name, "set", raw, False)
