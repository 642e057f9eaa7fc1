"""The vectorized backend and the scalar one agree on every decision field, findings and reasons."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Evaluator, InputError
from engine.vector import decide_caseload, jsonl_to_tables
from tests.strategies import households


@st.composite
def caseloads(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 12))
    out = [draw(households(hid=f"H-{i}", seq_base=i * 50)) for i in range(n)]
    if n > 1 and draw(st.booleans()):  # the same person in two households
        out[-1]["members"][0]["person_id"] = out[0]["members"][0]["person_id"]
    return out


def _scalar(evaluator: Evaluator, caseload: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    seen: dict[str, set[str]] = {}
    for h in caseload:
        for m in h["members"]:
            seen.setdefault(m["person_id"], set()).add(h["household_id"])
    dup = frozenset(p for p, hs in seen.items() if len(hs) > 1)
    out = {}
    for h in caseload:
        try:
            out[h["household_id"]] = evaluator.decide(h, duplicates=dup).flat()
        except InputError:
            out[h["household_id"]] = {"rejected": True}
    return out


def _vector(evaluator: Evaluator, caseload: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    hh, mm, rejects = jsonl_to_tables([json.dumps(h) for h in caseload], evaluator.ruleset.record)
    decisions, more = decide_caseload(evaluator, hh, mm, today=dt.date(2019, 8, 1))
    out: dict[str, dict[str, Any]] = {}
    for row in decisions.to_dicts():
        out[row["household_id"]] = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}
    for hid in pl.concat([rejects, more]).get_column("household_id").to_list():
        out[hid] = {"rejected": True}
    return out


@settings(max_examples=100, deadline=None)
@given(caseloads())
def test_vector_equals_scalar(evaluator: Evaluator, caseload: list[dict[str, Any]]) -> None:
    scalar = _scalar(evaluator, caseload)
    vector = _vector(evaluator, caseload)
    assert vector.keys() == scalar.keys()
    for hid, want in scalar.items():
        assert vector[hid] == want, hid
