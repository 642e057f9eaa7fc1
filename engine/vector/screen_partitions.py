"""A screening cut into partitions by household, each one a task that any process can run.

The caseload is prepared as for one process (`screen._Screening.prepare`: tables converted
to Parquet, the whole caseload's ID index), then written once more as ``P`` partition files
in the run's ``.work`` folder. A household goes to partition ``hash(household_id) mod P``
(the ID as validation reads it, hashed with a fixed seed: the same in every process, and
written once, so no worker recomputes it); its members go with it, and copies of a
repeated ID land together. A household without an ID goes by its JSON line, or to
partition 0 from tables (where no member can be linked to it anyway).

Findings that need the whole caseload (repeated household IDs, persons in two households)
are in the index and written to one file beside the partitions; a task receives paths and
versions only (`PartitionTask`), and loads the rules and registries itself once per process
(`EvaluatorSpec.load`, cached by path and version). Nothing here imports Dask.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import JiuzhuError
from engine.evaluator import Evaluator
from engine.validation.columns import LINK
from engine.vector.screen import ScreenError, _Screening, chunk_registries, mark_copies
from engine.vector.screen_index import HID, CaseloadIndex, hid_text
from engine.vector.screen_summary import ChunkCounts

__all__ = [
    "EvaluatorSpec",
    "PartitionTask",
    "PartitionedScreening",
    "SplitTask",
    "part_folder",
    "partition_key",
    "read_part",
    "screen_partition",
    "split_rows",
]

_SEED = 0x5EED_0003  # not Polars' default seed: the partition must not follow the index's hash buckets
_PART = "~partition"
# a test-only hook: the first task to see this path absent creates it and kills its own process
KILL_ONCE_ENV = "JIUZHU_TEST_KILL_WORKER_ONCE"


@dataclass(frozen=True)
class EvaluatorSpec:
    """Where a worker finds the rules and registries, and the versions it must find there."""

    rules: str
    registries: tuple[tuple[str, str], ...] = ()
    settings: tuple[str, ...] = ()  # parameter what-ifs (`impact --set`)
    ruleset_version: str = ""
    registry_versions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        evaluator: Evaluator,
        rules: str | Path,
        registries: Mapping[str, str | Path | None],
        settings: tuple[str, ...] = (),
    ) -> EvaluatorSpec:
        return cls(
            rules=str(Path(rules).resolve()),
            registries=tuple(sorted((n, str(Path(p).resolve())) for n, p in registries.items() if p is not None)),
            settings=tuple(settings),
            ruleset_version=evaluator.ruleset.ruleset_version,
            registry_versions=tuple(sorted(evaluator.registries.versions().items())),
        )

    def load(self) -> Evaluator:
        """The evaluator, loaded once per process; a rules folder or registry that changed
        since the run was prepared is an error, never a silent mix of versions."""
        with _LOCK:
            cached = _EVALUATORS.get(self)
            if cached is not None:
                return cached
            from engine.loading import load
            from engine.registries import Registries
            from engine.vector.impact import with_settings

            ruleset = with_settings(load(Path(self.rules)), self.settings)
            evaluator = Evaluator(ruleset, Registries.from_files(ruleset, dict(self.registries)))
            found = (ruleset.ruleset_version, tuple(sorted(evaluator.registries.versions().items())))
            if found != (self.ruleset_version, self.registry_versions):
                raise ScreenError(
                    f"the rules or registries changed since the run was prepared: expected"
                    f" {self.ruleset_version} {dict(self.registry_versions)}, found {found[0]} {dict(found[1])}"
                )
            _EVALUATORS[self] = evaluator
            return evaluator


_LOCK = threading.Lock()
_EVALUATORS: dict[EvaluatorSpec, Evaluator] = {}


@dataclass(frozen=True)
class PartitionTask:
    """One partition's task: paths, dates and versions, nothing loaded."""

    k: int
    work: str  # the run's .work folder
    evaluator: EvaluatorSpec
    today: str
    decision_date: str | None = None
    head: EvaluatorSpec | None = None  # impact: the proposed rules

    def households(self) -> Path:
        return part_folder(Path(self.work), "households", self.k)

    def members(self) -> Path:
        return part_folder(Path(self.work), "members", self.k)

    def dates(self) -> tuple[dt.date, dt.date | None]:
        return dt.date.fromisoformat(self.today), dt.date.fromisoformat(
            self.decision_date
        ) if self.decision_date else None


def partition_key(partitions: int, *, linked: bool) -> pl.Expr:
    """The partition of each row of households or members (both have the household ID)."""
    key = hid_text().hash(_SEED)
    if linked:  # JSON Lines: a household without an ID keeps its members by its line
        key = pl.coalesce(key, pl.col(LINK).hash(_SEED))
    return (key.fill_null(0) % partitions).cast(pl.UInt32).alias(_PART)


def part_folder(work: Path, name: str, k: int) -> Path:
    """The folder of partition ``k`` of table ``name`` (one or more Parquet files, in order)."""
    return work / f"part-{name}" / f"{_PART}={k}"


def read_part(folder: Path, columns: list[str] | None = None) -> pl.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    return pl.read_parquet(files, columns=columns, hive_partitioning=False)


@dataclass(frozen=True)
class SplitTask:
    """Cut one row range of the caseload's tables into the P partitions (the first step)."""

    k: int  # which range: rows [k * rows / pieces, (k + 1) * rows / pieces) of each table
    work: str
    pieces: int
    partitions: int
    linked: bool


def split_rows(task: SplitTask) -> dict[str, Any]:
    """Write range ``k`` of households and of members into each partition's folder, one file
    per range and partition, named so that a partition reads its ranges in input order
    (LZ4: the files are read once, by the workers, often over the network)."""
    work = Path(task.work)
    tables = _manifest(work)["tables"]
    key = partition_key(task.partitions, linked=task.linked)
    rows = 0
    trim = task_heap()
    try:
        for name in ("households", "members"):
            rows += _split_table(task, work, [Path(p) for p in tables[name]], key, name)
    finally:
        trim()
    return {"rows": rows}


def _split_table(task: SplitTask, work: Path, paths: list[Path], key: pl.Expr, name: str) -> int:
    """One table's range ``k``, each row to its partition's file; the households written."""
    scan = _Screening._scan(paths)
    n = scan.select(pl.len()).collect().item()
    start, end = n * task.k // task.pieces, n * (task.k + 1) // task.pieces
    piece = scan.slice(start, end - start).with_columns(key).collect()
    for (k,), frame in piece.partition_by(_PART, as_dict=True, include_key=False, maintain_order=True).items():
        target = part_folder(work, name, int(k)) / f"{task.k:05d}.parquet"
        tmp = target.with_name(target.name + ".tmp")
        frame.write_parquet(tmp, compression="lz4")
        os.replace(tmp, target)
    return piece.height if name == "households" else 0


def _split_here(tasks: list[SplitTask]) -> None:
    for task in tasks:
        split_rows(task)


class PartitionedScreening(_Screening):
    """The one-process screening's preparation and finish, with partition files in between."""

    def __init__(self, *args: Any, partitions: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partitions = partitions
        self.key_extra = {"partitions": partitions}

    def prepare(self, split: Callable[[list[SplitTask]], None] = _split_here) -> dict[str, Any]:
        """The one-process preparation, then the partition files, cut by ``split`` (on the
        cluster: one task per range of rows, each hashing and writing its own rows)."""
        manifest = super().prepare()
        if manifest.get("partitions") == self.partitions:
            return manifest
        tables = {name: [Path(p) for p in paths] for name, paths in manifest["tables"].items()}
        linked = not self.caseload.is_dir()
        for name in ("households", "members"):
            shutil.rmtree(self.work / f"part-{name}", ignore_errors=True)
            for k in range(self.partitions):
                part_folder(self.work, name, k).mkdir(parents=True)
        # ranges of a chunk's size (a task's memory), at most one per partition (files: pieces x P)
        pieces = max(1, min(self.partitions, -(-manifest["index"]["household_rows"] // self.chunk_size)))
        split([SplitTask(k, str(self.work), pieces, self.partitions, linked) for k in range(pieces)])
        for name in ("households", "members"):
            empty = self._scan(tables[name]).clear().collect()
            for k in range(self.partitions):
                target = part_folder(self.work, name, k)
                if not any(target.glob("*.parquet")):  # no row went there: an empty file keeps the columns
                    empty.write_parquet(target / "empty.parquet")
        index = CaseloadIndex.from_json(manifest["index"])
        shared = pl.DataFrame(index.duplicate_ids, schema={"a": pl.UInt64, "b": pl.UInt64}, orient="row")
        shared.write_parquet(self.work / "shared-duplicate-ids.parquet")
        manifest |= {"partitions": self.partitions, "chunks": self.partitions, "linked": linked}
        tmp = self.manifest_path.with_name(self.manifest_path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, self.manifest_path)
        return manifest

    def finished(self, k: int) -> bool:
        return self._counts(k).exists()

    def failures(self) -> list[dict[str, Any]]:
        """The partitions whose rows could not be decided (each reported as rejects)."""
        return [
            json.loads((self.work / f"failed-{k:05d}.json").read_text(encoding="utf-8"))
            for k in range(self.partitions)
            if (self.work / f"failed-{k:05d}.json").exists()
        ]


def _kill_hook() -> None:
    """Tests only: end this process the way an out-of-memory kill or a lost machine would."""
    marker = os.environ.get(KILL_ONCE_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def task_heap() -> Callable[[], None]:
    """Set glibc's heap for a partition task; returns what to call when the task ends.

    Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which gives every large
    buffer a task frees back to the system at once, to be faulted in again by the next: a
    partition spent as much time in the kernel (page faults) as deciding. Thresholds at
    glibc's own ceiling keep the buffers for reuse within the task (measured: 2.0 s to 1.1 s
    of CPU for 125,000 households), and one trim at the end hands the heap back between
    tasks. A no-op where there is no glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: glibc's dynamic ceiling on 64-bit
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: twice that, as glibc's dynamic rule keeps it
    except (OSError, AttributeError):
        return lambda: None

    def trim() -> None:
        with contextlib.suppress(AttributeError):
            libc.malloc_trim(0)

    return trim


def _manifest(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / "manifest.json").read_text(encoding="utf-8"))
    return data


def screen_partition(task: PartitionTask) -> dict[str, Any]:
    """Decide one partition and write its parts (see `_Screening.decide_chunk`); returns its
    counts. A partition whose data make validating or deciding fail is written as one reject
    row per household, with the error: reported, never dropped."""
    work = Path(task.work)
    counts_path = work / f"counts-{task.k:05d}.json"
    if counts_path.exists():  # finished by an earlier run (or try) of the same preparation
        done: dict[str, Any] = json.loads(counts_path.read_text(encoding="utf-8"))
        return done
    _kill_hook()
    trim = task_heap()
    try:
        return _screen_partition(task, work)
    finally:
        trim()


def _screen_partition(task: PartitionTask, work: Path) -> dict[str, Any]:
    evaluator = task.evaluator.load()
    today, date = task.dates()
    manifest = _manifest(work)
    index = CaseloadIndex.from_json(manifest["index"])
    job = _Screening(evaluator, Path(), work.parent, "parquet", date, 1, today)
    job.threads = 1  # a task per worker thread is the parallelism: more kernel threads would contend for its core
    dup_ids = pl.read_parquet(work / "shared-duplicate-ids.parquet")

    def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
        households = mark_copies(read_part(task.households()), dup_ids)
        members = read_part(task.members())
        if index.orphan_rows:  # members without a household are reported once, at preparation
            wanted = households.select(hid_text()).to_series().drop_nulls()
            members = members.filter(hid_text().is_in(wanted.implode()))
        return households, members

    try:
        counts = job.decide_chunk(task.k, frames, chunk_registries(evaluator, index.duplicate_persons))
    except (MemoryError, OSError):
        raise  # the machine, not the data: the scheduler tries the task again
    except (JiuzhuError, ValueError, TypeError, ArithmeticError, LookupError, pl.exceptions.PolarsError) as exc:
        counts = _failed(job, task, exc)
    return counts.to_json()


def _failed(job: _Screening, task: PartitionTask, exc: Exception) -> ChunkCounts:
    """Every household of a partition that failed, as a reject naming the error."""
    why = f"partition {task.k} could not be decided: {type(exc).__name__}: {exc}"
    ids = read_part(task.households(), columns=[HID]).select(hid_text())
    rejects = ids.select(HID, pl.lit("(partition)").alias("field"), pl.lit(why).alias("reason"))
    rejects.write_parquet(job.work / f"rejects-{task.k:05d}.parquet")
    (job.work / f"failed-{task.k:05d}.json").write_text(
        json.dumps({"partition": task.k, "households": ids.height, "error": why}, ensure_ascii=False), encoding="utf-8"
    )
    with contextlib.suppress(FileNotFoundError):
        (job.work / f"decisions-{task.k:05d}.parquet").unlink()
    counts = ChunkCounts(rows=ids.height)
    path = job.work / f"counts-{task.k:05d}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(counts.to_json()), encoding="utf-8")
    os.replace(tmp, path)
    return counts
