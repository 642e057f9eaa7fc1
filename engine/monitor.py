"""Event-driven case monitoring (动态管理): change events flow through durable_rules, each
changes one household, and the households whose decision changed are re-decided and listed.

durable_rules does the event matching: every event type declared in ``rules/events.yaml``
becomes a rule of a Rete ruleset compiled at start. The caseload's state stays out of the
Rete memory (each fact there costs kilobytes); it lives in plain dicts here. Events are
posted one call at a time, because the batch calls of durable_rules 2.0.28 were seen to
drop results; every posted event must fire exactly one action, and the counts are checked:
events read = applied + ignored duplicates + rejected.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import FieldProblem, InputError
from engine.evaluator import Evaluator
from engine.events import EventSpec
from engine.messages import text as catalogue_text
from engine.types import BadValue, parse_value
from engine.validation.rules import BadJson, json_value

__all__ = ["Monitor", "MonitorResult"]

_COMPARED = ("reasons",)  # a change of reasons alone is not a change of decision
_ROUTES: dict[str, Monitor] = {}
_DEFINED: set[str] = set()
_LOCK = threading.Lock()


@dataclass
class MonitorResult:
    findings: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    applied: int = 0
    duplicates: int = 0

    def write(self, out: Path) -> None:
        """findings.jsonl, rejected_events.jsonl and summary.json in ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in (("findings", self.findings), ("rejected_events", self.rejected)):
            text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            (out / f"{name}.jsonl").write_text(text, encoding="utf-8")
        (out / "summary.json").write_text(json.dumps(self.summary(), ensure_ascii=False, indent=2), encoding="utf-8")

    def summary(self) -> dict[str, Any]:
        return {
            "events_read": self.read,
            "applied": self.applied,
            "ignored_duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "households_changed": len(self.findings),
            "balanced": self.read == self.applied + self.duplicates + len(self.rejected),
        }


def _ruleset_name(evaluator: Evaluator) -> str:
    return "jiuzhu_events_" + hashlib.sha256(evaluator.ruleset.digest.encode()).hexdigest()[:12]


def _define(name: str, events: dict[str, EventSpec]) -> None:
    """Compile the declared event types into a durable_rules ruleset (once per ruleset)."""
    with _LOCK:
        if name in _DEFINED:
            return
        from durable.lang import m, ruleset, when_all

        with ruleset(name):
            for event_type in events:
                when_all(m.type == event_type)(_action(name, event_type))
        _DEFINED.add(name)


def _action(name: str, event_type: str) -> Any:
    def action(c: Any, *_: Any) -> None:  # durable_rules also passes a completion callback
        _ROUTES[name]._on_event(event_type, dict(c.m._d))

    return action


class Monitor:
    """Holds a caseload (household JSON records) and applies events to it."""

    def __init__(self, evaluator: Evaluator, households: Iterable[dict[str, Any]]) -> None:
        self.ev = evaluator
        self.events: dict[str, EventSpec] = evaluator.ruleset.events
        if not self.events:
            raise InputError([FieldProblem("events.yaml", catalogue_text("input.no_event_types", "en"))])
        self.households: dict[str, dict[str, Any]] = {}
        self.people: dict[str, list[str]] = {}
        for h in households:
            hid = str(h["household_id"])
            self.households[hid] = h
            for m in h.get("members", []):
                self.people.setdefault(str(m.get("person_id", "")).upper(), []).append(hid)
        self.duplicates = frozenset(p for p, hs in self.people.items() if len(set(hs)) > 1)
        self.registry_keys = {n: set(r.keys) for n, r in evaluator.registries.by_name.items()}
        self.before: dict[str, dict[str, Any]] = {}
        self.caused: dict[str, list[str]] = {}
        self.seen: set[str] = set()
        self.name = _ruleset_name(evaluator)
        self._fired = 0
        self._error = ""
        _define(self.name, self.events)

    # ------------------------------------------------------------ deciding

    def current_evaluator(self) -> Evaluator:
        """The evaluator with the registries as the applied events left them."""
        regs = self.ev.registries
        for name, keys in self.registry_keys.items():
            if keys != set(regs.by_name[name].keys):
                regs = regs.with_keys(name, keys, f"{regs.by_name[name].version}+events")
        return self.ev.with_registries(regs)

    def decide(self, hid: str, evaluator: Evaluator | None = None) -> dict[str, Any]:
        return (evaluator or self.current_evaluator()).decide(self.households[hid], duplicates=self.duplicates).flat()

    def _touch(self, hid: str, event_id: str) -> None:
        if hid not in self.before:
            self.before[hid] = self.decide(hid)
        self.caused.setdefault(hid, []).append(event_id)

    # ------------------------------------------------------------ events

    def _validate(self, raw: Any) -> tuple[dict[str, Any] | None, str, str]:
        """(event, field, reason): the event with typed fields, or why it is rejected."""
        if not isinstance(raw, dict):
            return None, "(event)", "must be a JSON object"
        event_id = raw.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return None, "event_id", "is required"
        spec = self.events.get(str(raw.get("type")))
        if spec is None:
            return None, "type", f"unknown event type {raw.get('type')!r}; known: {', '.join(self.events)}"
        out: dict[str, Any] = {"event_id": event_id, "type": spec.name}
        for name, kind in spec.fields.items():
            if raw.get(name) is None:
                return None, name, f"is required for {spec.name}"
            try:
                out[name] = parse_value(kind, raw[name])
            except BadValue as exc:
                return None, name, str(exc)
        extra = set(raw) - set(spec.fields) - {"event_id", "type"}
        if extra:
            return None, sorted(extra)[0], f"is not a field of {spec.name}"
        key = spec.keyed_by
        known = self.people if key == "person_id" else self.households
        if str(out[key]) not in known:
            return None, key, f"no household in the caseload has {key} {out[key]}"
        return out, "", ""

    def _on_event(self, event_type: str, event: dict[str, Any]) -> None:
        """The durable_rules action. durable_rules swallows an action's exceptions, so the
        error is kept and the run reports the event as rejected instead of losing it."""
        try:
            self._apply(event_type, event)
            self._fired += 1
        except Exception as exc:  # reported per event by `run`
            self._error = f"{type(exc).__name__}: {exc}"

    def _apply(self, event_type: str, event: dict[str, Any]) -> None:
        """Change the household record(s) the event names."""
        spec = self.events[event_type]
        person = str(event.get("person_id", "")).upper()
        targets = sorted(set(self.people[person])) if spec.keyed_by == "person_id" else [str(event["household_id"])]
        for hid in targets:
            self._touch(hid, event["event_id"])
            household = self.households[hid]
            for ch in spec.changes:
                value = event[ch.value] if ch.from_field else ch.value
                if ch.scope == "registry":
                    self.registry_keys.setdefault(ch.target, set()).add(str(value))
                elif ch.scope == "member":
                    for m in household["members"]:
                        if str(m.get("person_id", "")).upper() == person:
                            _set(m, ch.target, ch.op, value)
                else:
                    _set(household, ch.target, ch.op, value)

    def run(self, lines: Iterable[str]) -> MonitorResult:
        from durable.lang import post

        result = MonitorResult()
        _ROUTES[self.name] = self
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            result.read += 1
            try:
                raw = json_value(line)
            except BadJson as exc:
                result.rejected.append({"line": number, "event_id": None, "field": "(json)", "reason": str(exc)})
                continue
            event, bad_field, reason = self._validate(raw)
            if event is None:
                result.rejected.append(
                    {
                        "line": number,
                        "event_id": raw.get("event_id") if isinstance(raw, dict) else None,
                        "field": bad_field,
                        "reason": reason,
                    }
                )
                continue
            if event["event_id"] in self.seen:
                result.duplicates += 1
                continue
            self.seen.add(event["event_id"])
            fired, self._error = self._fired, ""
            post(self.name, _json_ready(event))
            if self._fired != fired + 1:
                reason = self._error or "no event rule fired"
                result.rejected.append(
                    {"line": number, "event_id": event["event_id"], "field": "type", "reason": reason}
                )
                continue
            result.applied += 1
        result.findings = self._changes()
        return result

    def _changes(self) -> list[dict[str, Any]]:
        evaluator = self.current_evaluator()
        out = []
        for hid in sorted(self.before):
            old = self.before[hid]
            decision = evaluator.decide(self.households[hid], duplicates=self.duplicates)
            new = decision.flat()
            if {k: v for k, v in old.items() if k not in _COMPARED} == {
                k: v for k, v in new.items() if k not in _COMPARED
            }:
                continue
            top = decision.top_level()
            shown = self.ev.ruleset.reports.get("monitored") or ["findings"]
            out.append(
                {
                    **top,
                    "event_ids": self.caused[hid],
                    "old": {k: old[k] for k in shown},
                    "new": {k: new[k] for k in shown},
                }
            )
        return out


def _set(target: dict[str, Any], path: str, op: str, value: Any) -> None:
    *groups, key = path.split(".")
    for g in groups:
        if target.get(g) is None:
            target[g] = {}
        target = target[g]
    if op == "add":
        target[key] = int(target.get(key) or 0) + int(value)
    else:
        target[key] = _json_ready(value)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if type(value).__name__ == "Decimal":
        return f"{value:.2f}"
    return value
