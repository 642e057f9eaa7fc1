"""The vectorized backend and the scalar one agree on every decision field, findings and reasons."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Evaluator, InputError
from engine.vector import ColumnRun, decide_caseload, decide_frames, jsonl_to_tables, validate_frames
from engine.vector.impact import with_parameter
from tests.strategies import households

TODAY = dt.date(2019, 8, 1)


@st.composite
def caseloads(draw: st.DrawFn, regions: tuple[str, ...] = ("320684",)) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 12))
    out = [draw(households(hid=f"H-{i}", seq_base=i * 50)) for i in range(n)]
    for h in out:  # several regions, each with its own parameters
        h["region"] = draw(st.sampled_from(regions))
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
    decisions, more = decide_caseload(evaluator, hh, mm, today=TODAY)
    out: dict[str, dict[str, Any]] = {}
    for row in decisions.to_dicts():
        out[row["household_id"]] = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}
    for hid in pl.concat([rejects, more]).get_column("household_id").to_list():
        out[hid] = {"rejected": True}
    return out


def _agree(evaluator: Evaluator, caseload: list[dict[str, Any]]) -> None:
    scalar = _scalar(evaluator, caseload)
    vector = _vector(evaluator, caseload)
    assert vector.keys() == scalar.keys()
    for hid, want in scalar.items():
        assert vector[hid] == want, hid


@settings(max_examples=60, deadline=None)
@given(caseloads(regions=("320684", "320681")))
def test_vector_equals_scalar(evaluator: Evaluator, caseload: list[dict[str, Any]]) -> None:
    _agree(evaluator, caseload)


@settings(max_examples=25, deadline=None)
@given(caseloads(), st.sampled_from(["791.35", "791.37", "790.01"]))
def test_parameters_with_more_decimals(evaluator: Evaluator, caseload: list[dict[str, Any]], standard: str) -> None:
    """A standard whose multiples need 3 decimals (1.5 × 791.35 = 1187.025) compares exactly
    in both backends."""
    head = Evaluator(with_parameter(evaluator.ruleset, "dibao.standard", standard, dt.date(2019, 7, 1)))
    _agree(head, caseload)


@settings(max_examples=30, deadline=None)
@given(caseloads(regions=("320684", "320681")), st.integers(2, 5))
def test_threads_split_on_household_boundaries(
    evaluator: Evaluator, caseload: list[dict[str, Any]], threads: int
) -> None:
    """Slices of one household each (or none), or more slices than threads, give the frame
    one slice gives."""
    hh, mm, _ = jsonl_to_tables([json.dumps(h) for h in caseload], evaluator.ruleset.record)
    h, m, _ = validate_frames(evaluator.ruleset.record, hh, mm, TODAY)
    registries = {n: r.keys for n, r in evaluator.registries.by_name.items()}
    rs, params = evaluator.ruleset, evaluator.params
    one, _ = decide_frames(evaluator, ColumnRun(rs, params, h, m, registries, threads=1))
    many, _ = decide_frames(evaluator, ColumnRun(rs, params, h, m, registries, threads=threads, min_slice=1))
    small, _ = decide_frames(evaluator, ColumnRun(rs, params, h, m, registries, threads=2, max_slice=2))
    assert one.equals(many)
    assert one.equals(small)
