"""Whole caseloads, side by side: the vectorized engine, a hand-written Polars version of
the same rules, the scalar evaluator in a loop, and durable_rules with the dibao income and
asset rules; and `jiuzhu impact` end to end (`jiuzhu screen` end to end is in bench_screen.py,
in the same group).

Sizes come from JIUZHU_BENCH_SIZES (default 10^4, 10^5, 10^6; `make test` smoke-runs 10^3).
The loops (scalar, durable_rules) take minutes per round at 10^6 and are measured up to
10^5; their rate per household does not change with size.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from benchmarks import baseline_polars, peers
from benchmarks.rules_before import rules_without_ability
from engine import Evaluator, load
from engine.vector import ColumnRun, decide_frames, duplicate_persons, validate_frames
from fixtures.caseload import generate, write

ROOT = Path(__file__).resolve().parent.parent
SIZES = [int(x) for x in os.environ.get("JIUZHU_BENCH_SIZES", "10000,100000,1000000").split(",")]
THREADS = [int(x) for x in os.environ.get("JIUZHU_BENCH_THREADS", "1,2").split(",")]
LOOP_LIMIT = 100_000
DATE = dt.date(2019, 8, 1)


@cache
def _evaluator() -> Evaluator:
    return Evaluator(load(ROOT / "rules"))


@cache
def _evaluator_before() -> Evaluator:
    """The rules without DOMAIN-2.md §9 (what the hand-written baseline decides)."""
    folder = Path(tempfile.mkdtemp(prefix="jiuzhu-bench-")) / "rules"
    return Evaluator(load(rules_without_ability(ROOT / "rules", folder)))


@cache
def _caseload(n: int) -> dict[str, Any]:
    households, members, relatives, filings = generate(n, seed=2019)
    order = households.select("household_id").with_row_index("_r")
    members = members.join(order, on="household_id").sort("_r").drop("_r")
    ev = _evaluator()
    rels = frozenset(relatives.get_column("relative_person_id").to_list())
    fils = frozenset(filings.get_column("household_id").to_list())
    ev = ev.with_registries(ev.registries.with_keys("relatives", rels, "bench").with_keys("filings", fils, "bench"))
    h, m, rejects = validate_frames(ev.ruleset.record, households, members, DATE)
    assert rejects.height == 0  # the generator draws only valid households
    dups = duplicate_persons(m.select("person_id", pl.col("_h").alias("household_id")))
    registries = {name: r.keys for name, r in ev.registries.by_name.items()} | {"caseload_duplicates": dups}
    return {
        "ev": ev,
        "h": h,
        "m": m,
        "rels": rels,
        "fils": fils,
        "dups": dups,
        "registries": registries,
        "raw": (households, members),
    }


def _rounds(n: int) -> int:
    return 3 if n >= 100_000 else 5


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def bench_jiuzhu_vectorized(benchmark: Any, n: int, threads: int) -> None:
    """The full decision frame of a validated caseload in memory (`decide_frames`)."""
    c = _caseload(n)
    benchmark.group = f"bulk-{n}-threads{threads}"
    ev = c["ev"]

    def run() -> pl.DataFrame:
        decisions, undecided = decide_frames(
            ev, ColumnRun(ev.ruleset, ev.params, c["h"], c["m"], c["registries"], threads=threads)
        )
        assert undecided.height == 0
        return decisions

    out = benchmark.pedantic(run, rounds=_rounds(n), iterations=1)
    benchmark.extra_info["households_per_second"] = round(n / benchmark.stats.stats.median) if benchmark.stats else None
    assert out.height == c["h"].height


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def bench_jiuzhu_vectorized_without_ability(benchmark: Any, n: int, threads: int) -> None:
    """As ``bench_jiuzhu_vectorized`` with the rules before DOMAIN-2.md §9, on the same
    caseload (its assessments read by nothing): what §9 costs a caseload."""
    c = _caseload(n)
    benchmark.group = f"bulk-{n}-threads{threads}"
    ev = _evaluator_before()
    registries = {name: r.keys for name, r in c["ev"].registries.by_name.items()} | {"caseload_duplicates": c["dups"]}
    before = ev.with_registries(c["ev"].registries)

    def run() -> pl.DataFrame:
        decisions, undecided = decide_frames(
            before, ColumnRun(before.ruleset, before.params, c["h"], c["m"], registries, threads=threads)
        )
        assert undecided.height == 0
        return decisions

    out = benchmark.pedantic(run, rounds=_rounds(n), iterations=1)
    benchmark.extra_info["households_per_second"] = round(n / benchmark.stats.stats.median) if benchmark.stats else None
    assert out.height == c["h"].height


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def bench_handwritten_lean_numpy(benchmark: Any, n: int, threads: int) -> None:
    """The same rules written by hand (benchmarks/baseline_polars.py): the same frame."""
    c = _caseload(n)
    benchmark.group = f"bulk-{n}-threads{threads}"
    # the baseline decides DOMAIN.md §1-8: compared with the rules before DOMAIN-2.md §9
    before = _evaluator_before().with_registries(c["ev"].registries)
    version = before.ruleset.ruleset_version
    out = benchmark.pedantic(
        lambda: baseline_polars.decide(c["h"], c["m"], c["rels"], c["fils"], c["dups"], version, threads),
        rounds=_rounds(n),
        iterations=1,
    )
    benchmark.extra_info["households_per_second"] = round(n / benchmark.stats.stats.median) if benchmark.stats else None
    ours, _ = decide_frames(before, ColumnRun(before.ruleset, before.params, c["h"], c["m"], c["registries"]))
    assert ours.equals(out)


@pytest.mark.parametrize("n", [s for s in SIZES if s <= LOOP_LIMIT])
def bench_scalar_evaluator_loop(benchmark: Any, n: int) -> None:
    c = _caseload(n)
    benchmark.group = f"bulk-{n}-threads1"
    ev = c["ev"]
    rows = c["h"].to_dicts()
    members: list[list[dict[str, Any]]] = [[] for _ in rows]
    for m in c["m"].to_dicts():
        members[m.pop("_h")].append(m)

    def loop() -> int:
        done = 0
        for hh, mm in zip(rows, members, strict=True):
            ev.decide_record(dict(hh), [dict(x) for x in mm], duplicates=c["dups"])
            done += 1
        return done

    assert benchmark.pedantic(loop, rounds=1 if n >= 100_000 else 3, iterations=1) == n


@pytest.mark.parametrize("n", [s for s in SIZES if s <= LOOP_LIMIT])
def bench_durable_rules_dibao_income_and_assets(benchmark: Any, n: int) -> None:
    c = _caseload(n)
    benchmark.group = f"bulk-{n}-threads1"
    h = c["h"].select(
        pl.int_range(pl.len()).alias("_h"),
        "local_hukou",
        "assets.financial_assets",
        "assets.non_exempt_vehicles",
        "assets.houses",
    )
    sums = c["m"].group_by("_h").agg(pl.col("monthly_income").sum().alias("income"), pl.len().alias("n"))
    facts = (
        h.join(sums, on="_h")
        .with_columns((pl.col("n") * 79000).alias("need"), (pl.col("n") * 79000 * 24).alias("asset_limit"))
        .to_dicts()
    )
    facts = [
        {
            "local_hukou": f["local_hukou"],
            "financial_assets": f["assets.financial_assets"],
            "asset_limit": f["asset_limit"],
            "vehicles": f["assets.non_exempt_vehicles"],
            "houses": f["assets.houses"],
            "income": f["income"],
            "need": f["need"],
        }
        for f in facts
    ]

    def loop() -> int:
        return sum(1 for f in facts if peers.durable_decide(f))

    assert benchmark.pedantic(loop, rounds=1 if n >= 100_000 else 3, iterations=1) == n


@pytest.mark.parametrize("n", SIZES)
def bench_impact_two_rulesets_parquet(benchmark: Any, n: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`jiuzhu impact` (read once, decide under base and head, compare, report) beside one
    `jiuzhu screen` of the same caseload (group end-to-end-N); target: at most 2x."""
    from engine.vector.impact import impact, with_parameter

    benchmark.group = f"end-to-end-{n}"
    folder = tmp_path_factory.mktemp(f"impact{n}")
    write(folder, n, seed=2019)
    base = _evaluator()
    head = Evaluator(with_parameter(base.ruleset, "dibao.standard", "850", dt.date(2019, 7, 1)))
    counter = iter(range(1000))
    summary = benchmark.pedantic(
        lambda: impact(base, head, folder, folder / f"out{next(counter)}", today=DATE), rounds=_rounds(n), iterations=1
    )
    assert summary["households"] == n
