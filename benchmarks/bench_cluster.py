"""`screen` on a Dask LocalCluster beside `screen` in one process (issue 13).

Group `cluster-N`: N households (default 10^6; JIUZHU_BENCH_CLUSTER_SIZE, else the largest
of JIUZHU_BENCH_SIZES, so `make test` smoke-runs 10^3) in 8 partitions on 1 and 2 worker
processes, the one-process `screen` with 8 chunks, and the lean floor for 2 workers: two
plain processes at once, each screening half of the caseload (split by household) in one
process. Group `cluster-weak-N`: N on 1 worker (4 partitions) beside 2N on 2 workers (8
partitions): equal times are perfect weak scaling. Group `cluster-scale-N`, only when
JIUZHU_BENCH_SCALE_SIZE is set (the issue's 10^7): 1, 2, 4, 8 and 16 workers, 64
partitions, each worker count skipped where the machine has fewer cores. Each run is end
to end (preparation, partition files, tasks, joining the parts, summary) from a clean
output folder; the clusters are started before timing, as a running cluster would be. The
caseload's generated registries are read from their files by each worker, as
`--relatives`/`--filings` are.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine import Cluster, Evaluator, EvaluatorSpec, Registries, load, screen_on_cluster
from engine.vector.cluster import local_cluster
from engine.vector.screen import screen
from fixtures.caseload import write

ROOT = Path(__file__).resolve().parent.parent
_SIZES = [int(x) for x in os.environ.get("JIUZHU_BENCH_SIZES", "1000000").split(",")]
N = int(os.environ.get("JIUZHU_BENCH_CLUSTER_SIZE", max(_SIZES)))
SCALE = int(os.environ.get("JIUZHU_BENCH_SCALE_SIZE", "0"))
DATE = dt.date(2019, 8, 1)


def _caseload(n: int, tmp: pytest.TempPathFactory) -> Path:
    data = os.environ.get("JIUZHU_BENCH_DATA")
    folder = Path(data) / f"caseload-{n}" if data else tmp.mktemp(f"caseload{n}")
    if not (folder / "members.parquet").exists():
        write(folder, n, seed=2019)
    return folder


@cache
def _setup(folder: Path) -> tuple[Evaluator, EvaluatorSpec]:
    paths = {"relatives": str(folder / "relatives.csv"), "filings": str(folder / "filings.csv")}
    rules = load(ROOT / "rules")
    ev = Evaluator(rules, Registries.from_files(rules, paths))
    return ev, EvaluatorSpec.of(ev, ROOT / "rules", paths)


@pytest.fixture(scope="module", params=[1, 2], ids=lambda n: f"{n}w")
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    local = local_cluster(request.param)
    try:
        yield request.param, local.scheduler_address
    finally:
        local.close()


@pytest.fixture(scope="module", params=[1, 2, 4, 8, 16], ids=lambda n: f"{n}w")
def scale_cluster(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    workers = request.param
    if not SCALE:
        pytest.skip("set JIUZHU_BENCH_SCALE_SIZE (e.g. 10000000) for the 1-16 worker scaling")
    if workers > (os.cpu_count() or 1):
        pytest.skip(f"{workers} workers need {workers} cores; this machine has {os.cpu_count()}")
    local = local_cluster(workers)
    try:
        yield workers, local.scheduler_address
    finally:
        local.close()


def _rounds(n: int) -> int:
    return 3 if n >= 100_000 else 5


def _timed(benchmark: Any, run: Any, out: Path, n: int) -> dict[str, Any]:
    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)

    summary: dict[str, Any] = benchmark.pedantic(run, setup=clean, rounds=_rounds(n), iterations=1)
    return summary


def bench_jiuzhu_one_process(benchmark: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`screen` in this process, the caseload in 8 chunks."""
    benchmark.group = f"cluster-{N}"
    folder = _caseload(N, tmp_path_factory)
    ev, _ = _setup(folder)
    out = tmp_path_factory.mktemp("one") / "out"
    chunk = max(1, -(-N // 8))
    summary = _timed(benchmark, lambda: screen(ev, folder, out, chunk_size=chunk, today=DATE), out, N)
    assert summary["rows_in"] == N


def bench_dask_partitions(benchmark: Any, cluster: tuple[int, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """`screen` on a LocalCluster of 1 or 2 worker processes, 8 partitions."""
    workers, address = cluster
    benchmark.group = f"cluster-{N}"
    folder = _caseload(N, tmp_path_factory)
    ev, spec = _setup(folder)
    out = tmp_path_factory.mktemp(f"dask{workers}") / "out"
    config = Cluster(scheduler=address, partitions=8)
    summary = _timed(benchmark, lambda: screen_on_cluster(ev, spec, folder, out, config, today=DATE), out, N)
    assert summary["rows_in"] == N
    benchmark.extra_info["workers"] = workers


def bench_dask_weak_scaling(benchmark: Any, cluster: tuple[int, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """N households on 1 worker (4 partitions), 2N on 2 workers (8 partitions)."""
    workers, address = cluster
    n = N * workers
    benchmark.group = f"cluster-weak-{N}"
    folder = _caseload(n, tmp_path_factory)
    ev, spec = _setup(folder)
    out = tmp_path_factory.mktemp(f"weak{workers}") / "out"
    config = Cluster(scheduler=address, partitions=4 * workers)
    summary = _timed(benchmark, lambda: screen_on_cluster(ev, spec, folder, out, config, today=DATE), out, n)
    assert summary["rows_in"] == n
    benchmark.extra_info.update(workers=workers, households=n)


_HALF = """
import datetime as dt, sys
from pathlib import Path
from engine import Evaluator, Registries, load
from engine.vector.screen import screen
folder = Path(sys.argv[1])
paths = {"relatives": str(folder / "relatives.csv"), "filings": str(folder / "filings.csv")}
rules = load(sys.argv[4])
screen(Evaluator(rules, Registries.from_files(rules, paths)), folder, Path(sys.argv[2]),
       chunk_size=int(sys.argv[3]), today=dt.date.fromisoformat(sys.argv[5]))
"""


def _halves(folder: Path) -> list[Path]:
    """The caseload cut in two by household (members with their household), registries copied."""
    halves = [folder.parent / f"{folder.name}-half{i}" for i in (0, 1)]
    for i, half in enumerate(halves):
        if (half / "members.parquet").exists():
            continue
        half.mkdir(parents=True, exist_ok=True)
        for name in ("households", "members"):
            mine = pl.col("household_id").hash(7) % 2 == i
            pl.scan_parquet(folder / f"{name}.parquet").filter(mine).sink_parquet(half / f"{name}.parquet")
        for name in ("relatives.csv", "filings.csv"):
            shutil.copy(folder / name, half / name)
    return halves


def bench_lean_two_processes_half_each(benchmark: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The floor for 2 workers: two plain processes at once, each `screen` on half the
    caseload in 4 chunks (interpreter start and loading the rules included, as a worker's
    first task pays them; each process has every core's threads, as `screen` does)."""
    if benchmark.disabled:  # two interpreters loading the rules: too slow for a smoke run
        pytest.skip("a measurement only (run with the benchmarks enabled)")
    benchmark.group = f"cluster-{N}"
    halves = _halves(_caseload(N, tmp_path_factory))
    outs = [tmp_path_factory.mktemp(f"lean{i}") / "out" for i in (0, 1)]
    chunk = str(max(1, -(-N // 8)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def clean() -> None:
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)

    def run() -> None:
        argv = [sys.executable, "-c", _HALF]
        rules, day = str(ROOT / "rules"), DATE.isoformat()
        procs = [
            subprocess.Popen([*argv, str(h), str(o), chunk, rules, day], env=env)
            for h, o in zip(halves, outs, strict=True)
        ]
        assert [p.wait() for p in procs] == [0, 0]

    benchmark.pedantic(run, setup=clean, rounds=_rounds(N), iterations=1)


def bench_dask_scaling(
    benchmark: Any, scale_cluster: tuple[int, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SCALE households, 64 partitions, on 1 to 16 workers."""
    workers, address = scale_cluster
    benchmark.group = f"cluster-scale-{SCALE}"
    folder = _caseload(SCALE, tmp_path_factory)
    ev, spec = _setup(folder)
    out = tmp_path_factory.mktemp(f"scale{workers}") / "out"
    config = Cluster(scheduler=address, partitions=64)
    summary = _timed(benchmark, lambda: screen_on_cluster(ev, spec, folder, out, config, today=DATE), out, SCALE)
    assert summary["rows_in"] == SCALE
    benchmark.extra_info["workers"] = workers
