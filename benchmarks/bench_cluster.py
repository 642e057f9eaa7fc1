"""`screen` on a Dask LocalCluster beside `screen` in one process (issue 13).

Group `cluster-N`: N households (default 10^6; JIUZHU_BENCH_CLUSTER_SIZE, else the largest
of JIUZHU_BENCH_SIZES, so `make test` smoke-runs 10^3) in 8 partitions on 1 and 2 worker
processes, and the one-process `screen` with 8 chunks. Group `cluster-weak-N`: N on 1
worker (4 partitions) beside 2N on 2 workers (8 partitions): equal times are perfect weak
scaling. Each run is end to end (preparation and partition files, tasks, joining the
parts, summary) from a clean output folder; the clusters are started before timing, as a
running cluster would be. The caseload's generated registries are read from their files by
each worker, as `--relatives`/`--filings` are.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine import Cluster, Evaluator, EvaluatorSpec, Registries, load, screen_on_cluster
from engine.vector.cluster import local_cluster
from engine.vector.screen import screen
from fixtures.caseload import write

ROOT = Path(__file__).resolve().parent.parent
_SIZES = [int(x) for x in os.environ.get("JIUZHU_BENCH_SIZES", "1000000").split(",")]
N = int(os.environ.get("JIUZHU_BENCH_CLUSTER_SIZE", max(_SIZES)))
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
