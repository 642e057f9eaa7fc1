"""Screening on a Dask LocalCluster (2 worker processes): the same output as one process,
resume, a worker killed mid-run, a partition whose data are bad."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine import Evaluator, load
from engine.vector.cluster import Cluster, screen_on_cluster
from engine.vector.screen import screen
from engine.vector.screen_partitions import KILL_ONCE_ENV, EvaluatorSpec, part_folder, read_part
from tests.conftest import FIXTURES, RULES
from tests.engine.test_screen import _generated, _tables, _write

DATE = dt.date(2019, 8, 1)


@pytest.fixture(scope="module")
def kill_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test hook's marker: present (disarmed) until a test removes it."""
    marker = tmp_path_factory.mktemp("hook") / "killed"
    marker.touch()
    return marker


@pytest.fixture(scope="module")
def cluster(kill_marker: Path) -> Iterator[str]:
    """A LocalCluster of 2 processes, its workers started with the kill hook's marker path."""
    from engine.vector.cluster import local_cluster

    os.environ[KILL_ONCE_ENV] = str(kill_marker)
    try:
        local = local_cluster(2)
    finally:
        del os.environ[KILL_ONCE_ENV]
    try:
        yield local.scheduler_address
    finally:
        local.close()


@pytest.fixture(scope="module")
def spec() -> EvaluatorSpec:
    return EvaluatorSpec.of(Evaluator(load(RULES)), RULES, {})


def _messy(tmp: Path) -> Path:
    """300 generated households with a repeated household ID, a person in two households
    (in different partitions, most likely) and a member without household."""
    households, members = _generated(tmp, 300)
    ids = households.get_column("household_id").to_list()
    person = members.filter(pl.col("household_id") == ids[3]).get_column("person_id")[0]
    moved = members.filter(pl.col("household_id") == ids[150]).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(person)).otherwise(pl.col("person_id")).alias("person_id")
    )
    orphan = members.head(1).with_columns(pl.lit("NO-SUCH-HOUSEHOLD").alias("household_id"))
    members = pl.concat([members.filter(pl.col("household_id") != ids[150]), moved, orphan])
    copy = households.filter(pl.col("household_id") == ids[10]).with_columns(pl.lit(ids[180]).alias("household_id"))
    return _write(tmp / "messy", pl.concat([households, copy]), members.sample(fraction=1.0, shuffle=True, seed=5))


def _outputs(out: Path) -> tuple[pl.DataFrame, pl.DataFrame, bytes]:
    """Decisions and rejects sorted by household (then every column), and summary.json's bytes."""
    decisions = pl.read_parquet(out / "decisions.parquet").sort("household_id", maintain_order=True)
    rejects = pl.read_parquet(out / "rejects.parquet")
    return decisions, rejects.sort(rejects.columns, nulls_last=True), (out / "summary.json").read_bytes()


def _same(a: Path, b: Path) -> None:
    da, ra, sa = _outputs(a)
    db, rb, sb = _outputs(b)
    assert da.height > 0
    assert da.equals(db)
    assert ra.equals(rb)
    assert sa == sb


def _run(spec: EvaluatorSpec, caseload: Path, out: Path, address: str, **kw: Any) -> dict[str, Any]:
    ev = spec.load()
    return screen_on_cluster(ev, spec, caseload, out, Cluster(scheduler=address, partitions=5), today=DATE, **kw)


@pytest.mark.parametrize("kind", ["tables", "jsonl", "csv"])
def test_cluster_output_equals_one_process(
    kind: str, spec: EvaluatorSpec, cluster: str, tmp_path: Path, evaluator: Evaluator
) -> None:
    caseload = {
        "tables": lambda: _messy(tmp_path),
        "jsonl": lambda: FIXTURES / "households.jsonl",
        "csv": lambda: _tables(tmp_path),
    }[kind]()
    one = screen(evaluator, caseload, tmp_path / "one", today=DATE, chunk_size=64)
    seen: list[tuple[int, int, int, float]] = []
    # chunk_size 64: the preparation cuts the caseload in several ranges of rows, one task each
    many = _run(spec, caseload, tmp_path / "many", cluster, progress=lambda *a: seen.append(a), chunk_size=64)
    assert one == many
    _same(tmp_path / "one", tmp_path / "many")
    assert [s[:2] for s in seen] == [(k, 5) for k in range(1, 6)]
    manifest = json.loads((tmp_path / "many" / ".work" / "manifest.json").read_text(encoding="utf-8"))
    assert seen[-1][2] == manifest["index"]["household_rows"]  # every household went through a task
    if kind == "tables":
        assert one["decided"] == 299
        assert "duplicate_person" in one["findings"]
        assert one["member_rows_without_household"] == 1
    folder = part_folder(tmp_path / "many" / ".work", "households", 0)
    households = read_part(folder)
    assert 0 < households.height < one["rows_in"]  # partitions, not one chunk
    if kind == "tables":  # 301 households: 5 ranges (the others are the 25 samples: one range)
        assert len(list(folder.glob("*.parquet"))) > 1  # written by several range tasks
    # a partition keeps the input's order: its ranges are read in order
    everyone = pl.read_parquet(tmp_path / "one" / "decisions.parquet").get_column("household_id").to_list()
    mine = pl.read_parquet(tmp_path / "many" / "decisions.parquet").get_column("household_id").to_list()[:5]
    assert [x for x in everyone if x in mine] == mine


def test_rerun_skips_finished_partitions(spec: EvaluatorSpec, cluster: str, tmp_path: Path) -> None:
    caseload = _messy(tmp_path)
    out = tmp_path / "out"
    first = _run(spec, caseload, out, cluster)
    work = out / ".work"
    before = {k: (work / f"decisions-{k:05d}.parquet").stat().st_mtime_ns for k in range(5)}
    (work / "counts-00002.json").unlink()  # as if the run had stopped before partition 2 finished
    seen: list[tuple[int, int, int, float]] = []
    again = _run(spec, caseload, out, cluster, progress=lambda *a: seen.append(a))
    after = {k: (work / f"decisions-{k:05d}.parquet").stat().st_mtime_ns for k in range(5)}
    assert first == again
    assert [k for k in range(5) if before[k] != after[k]] == [2]
    assert [s[:2] for s in seen] == [(4, 5), (5, 5)]
    one = tmp_path / "one"
    screen(spec.load(), caseload, one, today=DATE)
    _same(one, out)


def test_a_killed_worker_is_retried(spec: EvaluatorSpec, cluster: str, kill_marker: Path, tmp_path: Path) -> None:
    """The first partition task to start kills its own worker process (SIGKILL, as the
    kernel's OOM killer would); the scheduler runs it again and the output is the same."""
    caseload = _messy(tmp_path)
    kill_marker.unlink()
    summary = _run(spec, caseload, tmp_path / "many", cluster)
    assert kill_marker.exists()  # the hook fired: one worker died mid-task
    one = screen(spec.load(), caseload, tmp_path / "one", today=DATE)
    assert summary == one
    _same(tmp_path / "one", tmp_path / "many")


def test_a_bad_partition_is_reported_not_dropped(spec: EvaluatorSpec, cluster: str, tmp_path: Path) -> None:
    caseload = _messy(tmp_path)
    out = tmp_path / "out"
    _run(spec, caseload, out, cluster)
    work = out / ".work"
    for name in ("counts", "decisions", "rejects"):
        next(work.glob(f"{name}-00003.*")).unlink()
    bad = next(part_folder(work, "members", 3).glob("*.parquet"))
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # a damaged partition file
    summary = _run(spec, caseload, out, cluster)
    ids = read_part(part_folder(work, "households", 3)).get_column("household_id")
    assert summary["rows_in"] == summary["decided"] + summary["rejected"] == 301
    [failed] = summary["failed_partitions"]
    assert (failed["partition"], failed["households"]) == (3, ids.len())
    rejects = pl.read_parquet(out / "rejects.parquet").filter(pl.col("field") == "(partition)")
    assert sorted(rejects.get_column("household_id").to_list()) == sorted(ids.to_list())
    assert rejects.get_column("reason").str.starts_with("partition 3 could not be decided").all()
    decisions = pl.read_parquet(out / "decisions.parquet")
    assert not decisions.get_column("household_id").is_in(ids.implode()).any()
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == summary


def test_impact_on_cluster_writes_the_same_files(cluster: str, tmp_path: Path, evaluator: Evaluator) -> None:
    """Repeated IDs, a person in two households, a member without household: the same
    transitions, changes, budget, report and summary as `impact` in one process."""
    from engine import impact, with_settings
    from engine.vector.impact_cluster import impact_on_cluster

    caseload = _messy(tmp_path)
    sets = ("dibao.standard=850@2019-07-01",)
    head = Evaluator(with_settings(evaluator.ruleset, sets))
    specs = (EvaluatorSpec.of(evaluator, RULES, {}), EvaluatorSpec.of(head, RULES, {}, sets))
    one = impact(evaluator, head, caseload, tmp_path / "one", today=DATE)
    many = impact_on_cluster(
        evaluator, head, specs, caseload, tmp_path / "many", Cluster(scheduler=cluster, partitions=5), today=DATE
    )
    assert one == many
    assert one["rejected"] > 0  # the repeated household ID, at least
    assert one["changed"] > 0
    for name in ("transitions.csv", "changes.csv", "budget.csv", "report.html", "summary.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), name
