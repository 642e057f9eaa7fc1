"""The kernel computes a member rule, table or branch for the few members it applies to
(``Chunk.subset``) and reads a reason held by few members where it holds; the decisions must
be those of computing every member. Each caseload is decided both ways and compared."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
import pytest

from engine import Evaluator
from engine.vector import ColumnRun, decide_caseload, decide_frames, jsonl_to_tables, kernel, validate_frames
from engine.vector import decisions as vector_decisions
from fixtures.caseload import generate
from tests.conftest import FIXTURES

DATE = dt.date(2019, 8, 1)


def _both(monkeypatch: pytest.MonkeyPatch, decide: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    assert callable(decide)
    made: list[int] = []
    subset = kernel.Chunk.subset

    def counted(ch: kernel.Chunk, applies: Any) -> kernel.Subset | None:
        sub = subset(ch, applies)
        made.append(sub is not None)
        return sub

    with monkeypatch.context() as m:
        m.setattr(kernel.Chunk, "subset", counted)
        sparse = decide()
    assert sum(made) > 0  # some values were computed for a few members
    with monkeypatch.context() as m:  # never a subset, every reason OR-reduced as bits
        m.setattr(kernel, "SPARSE_SHARE", -1.0)
        m.setattr(vector_decisions, "_FEW", 10**9)
        dense = decide()
    return sparse, dense


def test_sample_households_with_assessments_and_children(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        line
        for line in (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["decision_date"] == DATE.isoformat()
    ]
    hh, mm, _ = jsonl_to_tables(lines, evaluator.ruleset.record)

    def decide() -> pl.DataFrame:
        out, rejects = decide_caseload(evaluator, hh, mm, today=DATE)
        assert rejects.height == 0
        return out

    sparse, dense = _both(monkeypatch, decide)
    assert sparse.height == len(lines)
    assert sparse.get_column("ability_assessed_persons").sum() > 0
    assert sparse.get_column("children_allowance_total").is_not_null().any()
    assert sparse.equals(dense)


def test_a_generated_caseload(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    households, members, _, _ = generate(3000, seed=14)
    h, m, rejects = validate_frames(evaluator.ruleset.record, households, members, DATE)
    assert rejects.height == 0
    run = evaluator.with_registries(evaluator.registries)
    registries = {name: r.keys for name, r in run.registries.by_name.items()}

    def decide() -> pl.DataFrame:
        out, undecided = decide_frames(run, ColumnRun(run.ruleset, run.params, h, m, registries, threads=1))
        assert undecided.height == 0
        return out

    sparse, dense = _both(monkeypatch, decide)
    assert sparse.get_column("ability_max_level").n_unique() > 2  # assessed members of every level
    assert sparse.equals(dense)
