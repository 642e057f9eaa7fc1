"""`impact` on a Dask cluster: the caseload partitioned by household as for screening, two
tasks per partition, the files written from the partitions' results put together.

Persons in two households are looked for among validated members, as the one-process
`impact` does; so a first pass validates each partition and writes its (person, household)
pairs, the duplicates are found across all of them, and a second pass decides each partition
under the base and the head rules (`impact_frames`). The second pass validates again rather
than keep validated frames between passes: the frames stay in their workers' memory only.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import polars as pl

from engine.evaluator import Evaluator
from engine.vector.caseload import validate_frames
from engine.vector.cluster import Cluster, ClusterProgress, _client, _threads, split_on, submit_partitions
from engine.vector.impact import impact_frames, rejected_ids, write_impact, write_rejects
from engine.vector.screen import _locked
from engine.vector.screen_partitions import EvaluatorSpec, PartitionedScreening, PartitionTask, read_part

__all__ = ["impact_on_cluster", "impact_partition", "impact_persons"]

_DUPLICATES = "impact-duplicate-persons.parquet"


def _validated(task: PartitionTask, evaluator: Evaluator) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    today, date = task.dates()
    households, members = read_part(task.households()), read_part(task.members())
    return validate_frames(evaluator.ruleset.record, households, members, today, date)


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def impact_persons(task: PartitionTask) -> dict[str, Any]:
    """First pass: the partition's validated (person, household) pairs; a household is named
    by partition and position, unique across the caseload."""
    path = Path(task.work) / f"impact-persons-{task.k:05d}.parquet"
    if not path.exists():
        _, m, _ = _validated(task, task.evaluator.load())
        pairs = m.select("person_id", pl.format("{}:{}", pl.lit(task.k), pl.col("_h")).alias("household_id"))
        _write_atomic(pairs, path)
    return {"rows": 0}


_DUPS_LOCK = threading.Lock()
_DUPS: dict[str, frozenset[str]] = {}


def _duplicates(work: Path) -> frozenset[str]:
    """The persons in two households of the whole caseload, read once per process and run."""
    path = str(work / _DUPLICATES)
    key = f"{path}:{os.stat(path).st_mtime_ns}"
    with _DUPS_LOCK:
        if key not in _DUPS:
            _DUPS[key] = frozenset(pl.read_parquet(path).get_column("person_id").to_list())
        return _DUPS[key]


def impact_partition(task: PartitionTask) -> dict[str, Any]:
    """Second pass: the partition decided under both rulesets, and its rejected households."""
    work = Path(task.work)
    joined_path = work / f"impact-joined-{task.k:05d}.parquet"
    rejected_path = work / f"impact-rejected-{task.k:05d}.parquet"
    if not joined_path.exists():
        assert task.head is not None
        base, head = task.evaluator.load(), task.head.load()
        h, m, rejects = _validated(task, base)
        joined, undecided = impact_frames(base, head, h, m, _duplicates(work))
        reasons = rejects.select(pl.col("household_id").cast(pl.Utf8), "field", "reason")
        _write_atomic(pl.concat([reasons, undecided]), rejected_path)
        _write_atomic(joined, joined_path)  # last: it marks the partition finished
    rows = pl.scan_parquet(joined_path).select(pl.len()).collect().item()
    return {"rows": int(rows)}


def impact_on_cluster(
    base: Evaluator,
    head: Evaluator,
    specs: tuple[EvaluatorSpec, EvaluatorSpec],
    caseload: Path,
    out: Path,
    cluster: Cluster,
    *,
    decision_date: dt.date | None = None,
    fmt: str = "csv",
    today: dt.date | None = None,
    progress: ClusterProgress | None = None,
    headers: str = "en",
) -> dict[str, Any]:
    """`impact` with its work done by partition on a Dask cluster: the same files."""
    today = today or dt.date.today()
    caseload, out = caseload.resolve(), out.resolve()
    with _locked(out):
        with _client(cluster) as client:
            partitions = cluster.partitions or 4 * _threads(client)
            job = PartitionedScreening(
                base, caseload, out, "parquet", decision_date, 250_000, today, partitions=partitions
            )
            # the head's rules too: a finished partition is reused only for the same comparison
            job.key_extra |= {"impact": True, "head": head.ruleset.ruleset_version, "settings": specs[1].settings}
            job.prepare(split_on(client, cluster.retries))
            on = decision_date.isoformat() if decision_date else None
            tasks = [
                PartitionTask(k, str(job.work), specs[0], today.isoformat(), on, specs[1]) for k in range(partitions)
            ]
            work = job.work
            if not (work / _DUPLICATES).exists():
                submit_partitions(client, impact_persons, tasks, partitions, cluster.retries, None)
                pairs = pl.scan_parquet([work / f"impact-persons-{k:05d}.parquet" for k in range(partitions)])
                found = (
                    pairs.group_by("person_id")
                    .agg(pl.col("household_id").n_unique().alias("n"))
                    .filter(pl.col("n") > 1)
                    .select(pl.col("person_id").drop_nulls())
                    .collect()
                )
                _write_atomic(found, work / _DUPLICATES)
            todo = [t for t in tasks if not (work / f"impact-joined-{t.k:05d}.parquet").exists()]
            already = partitions - len(todo)
            submit_partitions(client, impact_partition, todo, partitions, cluster.retries, progress, already)
        joined = pl.concat(
            [pl.read_parquet(work / f"impact-joined-{k:05d}.parquet") for k in range(partitions)], how="vertical"
        )
        rejected = pl.concat([pl.read_parquet(work / f"impact-rejected-{k:05d}.parquet") for k in range(partitions)])
        out.mkdir(parents=True, exist_ok=True)
        write_rejects(rejected, out, base.ruleset, headers)
        return write_impact(base, head, joined, rejected_ids(rejected).len(), out, fmt, headers)
