"""Events through the durable_rules monitor beside a full re-screening of the same caseload.

Each event re-decides the household it touches (scalar engine, full explanation); a full
re-screening decides every household (vectorized). Streaming wins while the events of a
day touch fewer households than a re-screening's cost in scalar decisions: the figures in
benchmarks/README.md give the break-even point. Sizes: JIUZHU_BENCH_SIZES up to 10^5.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from functools import cache
from typing import Any

import polars as pl
import pytest

from benchmarks.bench_bulk import ROOT
from engine import Evaluator, load
from engine.monitor import Monitor
from engine.vector import ColumnRun, decide_frames, validate_frames
from engine.vector.caseload import tables_to_households
from fixtures.caseload import generate

SIZES = [n for n in (int(x) for x in os.environ.get("JIUZHU_BENCH_SIZES", "10000,100000").split(",")) if n <= 100_000]
EVENTS = int(os.environ.get("JIUZHU_BENCH_EVENTS", "1000"))
TYPES = ["income_changed", "death_registered", "vehicle_registered", "employment_started", "house_registered"]


@cache
def _setup(n: int) -> dict[str, Any]:
    ev = Evaluator(load(ROOT / "rules"))
    hh, mm, _, _ = generate(n, seed=7)
    households = tables_to_households(ev.ruleset.record, hh, mm)
    people = mm.get_column("person_id").to_list()
    events = []
    for i in range(EVENTS):
        kind = TYPES[i % len(TYPES)]
        e: dict[str, Any] = {
            "event_id": f"e{i}",
            "type": kind,
            "person_id": people[(i * 7919) % len(people)],
            "date": "2019-07-20",
        }
        if kind in ("income_changed", "employment_started"):
            e["monthly_income"] = f"{(i * 37) % 3000}.00"
        events.append(json.dumps(e))
    order = hh.select("household_id").with_row_index("_r")
    h, m, _ = validate_frames(
        ev.ruleset.record, hh, mm.join(order, on="household_id").sort("_r").drop("_r"), dt.date(2019, 8, 1)
    )
    return {"ev": ev, "households": households, "events": events, "h": h, "m": m}


@pytest.mark.parametrize("n", SIZES)
def bench_jiuzhu_monitor_events(benchmark: Any, n: int) -> None:
    c = _setup(n)
    benchmark.group = f"monitor-{n}"

    def fresh() -> tuple[tuple[Monitor], dict[str, Any]]:
        return (Monitor(c["ev"], copy.deepcopy(c["households"])),), {}

    result = benchmark.pedantic(lambda mon: mon.run(c["events"]), setup=fresh, rounds=3, iterations=1)
    assert result.summary()["balanced"]
    if benchmark.stats:
        benchmark.extra_info["events_per_second"] = round(EVENTS / benchmark.stats.stats.median)


@pytest.mark.parametrize("n", SIZES)
def bench_full_rescreening(benchmark: Any, n: int) -> None:
    c = _setup(n)
    benchmark.group = f"monitor-{n}"
    ev = c["ev"]
    registries = {name: r.keys for name, r in ev.registries.by_name.items()}
    out = benchmark.pedantic(
        lambda: decide_frames(ev, ColumnRun(ev.ruleset, ev.params, c["h"], c["m"], registries)), rounds=3, iterations=1
    )
    assert isinstance(out[0], pl.DataFrame)
