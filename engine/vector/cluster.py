"""Screening and impact on a Dask cluster: one task per partition, with retries.

The only module that imports Dask (``distributed``), and only when a run asks for a cluster:
``scheduler`` (the address of a running one: ``dask scheduler`` plus ``dask worker`` on each
machine) or ``workers`` (a local cluster of that many processes, started and stopped here).
Tasks receive paths and versions (`screen_partitions.PartitionTask`), so the run's folder
must be on storage every worker sees at the same path. A worker that dies mid-task (killed,
out of memory, machine lost) has its task run again elsewhere (``retries``, and the
scheduler's own reassignment); a partition whose data fail is reported as rejects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.evaluator import Evaluator
from engine.vector.screen import FORMATS, ScreenError, _locked
from engine.vector.screen_partitions import (
    EvaluatorSpec,
    PartitionedScreening,
    PartitionTask,
    SplitTask,
    screen_partition,
    split_rows,
)

__all__ = ["Cluster", "ClusterProgress", "local_cluster", "screen_on_cluster", "submit_partitions"]


@dataclass(frozen=True)
class Cluster:
    """Which cluster a run uses: a scheduler's address, or a local one of ``workers`` processes."""

    scheduler: str | None = None
    workers: int | None = None
    partitions: int | None = None  # default: 4 per worker thread, so a slow partition does not hold up the end
    retries: int = 2


# Set in each local worker process before it starts (Polars reads it once, on import): one
# task per worker thread is the parallelism, so Polars' own pool (a thread per core) would only
# contend. Workers of a running cluster take it from `dask worker`'s environment (README).
WORKER_ENV = {"POLARS_MAX_THREADS": "1"}

# (partitions done, partitions in all, households decided by this run's tasks, seconds since they started)
ClusterProgress = Callable[[int, int, int, float], None]


def _distributed() -> Any:
    """The ``distributed`` package, imported here only (it ships no type hints)."""
    return importlib.import_module("distributed")


def local_cluster(workers: int) -> Any:
    """A LocalCluster of ``workers`` processes, one thread each (the kernel runs a partition
    per process), no dashboard; the scheduler's small HTTP server (health, metrics) on a free
    port of 127.0.0.1, never on the fixed 8787 that another cluster may hold."""
    distributed = _distributed()  # first: it adds its settings to Dask's configuration
    dask = importlib.import_module("dask")
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}
    kept = {name: os.environ.get(name) for name in spawn_env}
    try:  # Dask sets these in this process too, just before it starts each worker process
        with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
            return distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
    finally:  # this process's own environment as it was (its Polars has started already)
        for name, value in kept.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _client(cluster: Cluster) -> Iterator[Any]:
    Client = _distributed().Client  # noqa: N806

    if cluster.scheduler:
        client = Client(cluster.scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    local = local_cluster(cluster.workers or 1)
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def _threads(client: Any) -> int:
    return max(1, int(sum(client.nthreads().values())))


def split_on(client: Any, retries: int) -> Callable[[list[SplitTask]], None]:
    """The preparation's cutting into partitions as tasks of the cluster (`split_rows`)."""

    def split(tasks: list[SplitTask]) -> None:
        submit_partitions(client, split_rows, tasks, len(tasks), retries, None)

    return split


Task = TypeVar("Task", PartitionTask, SplitTask)


def submit_partitions(
    client: Any,
    fn: Callable[[Task], dict[str, Any]],
    tasks: list[Task],
    total: int,
    retries: int,
    progress: ClusterProgress | None,
    already: int = 0,
) -> list[dict[str, Any]]:
    """Run ``fn`` on every task, one Dask task each; their results in the tasks' order. A task
    that still fails after its retries stops the run with an error naming its partition."""
    as_completed = _distributed().as_completed
    run = uuid.uuid4().hex[:8]
    futures = [
        client.submit(fn, t, key=f"jiuzhu-{fn.__name__}-{run}-{t.k}", retries=retries, pure=False) for t in tasks
    ]
    which = {f.key: t.k for f, t in zip(futures, tasks, strict=True)}
    results: dict[int, dict[str, Any]] = {}
    start, households, done = time.monotonic(), 0, already
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:
                raise ScreenError(
                    f"partition {which[future.key]} failed after {retries + 1} tries: {type(exc).__name__}: {exc}"
                ) from exc
            results[which[future.key]] = result
            done += 1
            households += int(result.get("rows", 0))
            if progress:
                progress(done, total, households, time.monotonic() - start)
    finally:
        for f in futures:
            f.cancel()
    return [results[t.k] for t in tasks]


def screen_on_cluster(
    evaluator: Evaluator,
    spec: EvaluatorSpec,
    caseload: Path,
    out: Path,
    cluster: Cluster,
    *,
    fmt: str = "parquet",
    decision_date: dt.date | None = None,
    chunk_size: int = 250_000,
    today: dt.date | None = None,
    progress: ClusterProgress | None = None,
    headers: str = "en",
) -> dict[str, Any]:
    """`screen` with one task per partition on a Dask cluster: the same decisions, rejects and
    summary (rows in partition order, not input order); a rerun skips finished partitions."""
    today = today or dt.date.today()
    caseload, out = caseload.resolve(), out.resolve()  # workers may run elsewhere: paths as seen from here
    with _locked(out):
        with _client(cluster) as client:
            partitions = cluster.partitions or 4 * _threads(client)
            job = PartitionedScreening(
                evaluator, caseload, out, fmt, decision_date, chunk_size, today, partitions=partitions
            )
            job.headers = headers
            for name in ["summary.json", *(f"{kind}.{ext}" for kind in ("decisions", "rejects") for ext in FORMATS)]:
                (out / name).unlink(missing_ok=True)
            manifest = job.prepare(split_on(client, cluster.retries))
            on = decision_date.isoformat() if decision_date else None
            tasks = [
                PartitionTask(k, str(job.work), spec, today.isoformat(), on)
                for k in range(partitions)
                if not job.finished(k)
            ]
            already = partitions - len(tasks)
            if progress and already:
                progress(already, partitions, 0, 0.0)
            submit_partitions(client, screen_partition, tasks, partitions, cluster.retries, progress, already)
        summary = job.finish(manifest)
        failed = job.failures()
        if failed:  # only then: a clean run's summary is the one-process run's, key for key
            summary["failed_partitions"] = failed
            text = json.dumps(summary, ensure_ascii=False, indent=2)
            (out / "summary.json").write_text(text, encoding="utf-8")
        return summary
