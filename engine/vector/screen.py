"""Re-screen a whole caseload in chunks: streaming, resumable, nothing dropped.

Parquet tables are read where they are, chunk by chunk (households by row range; members
by row range when they come grouped in the households' order, else by ID); CSV, XLSX and
JSON Lines are converted to Parquet once, batch by batch. Before the first chunk, one pass
over the ID columns finds duplicated household IDs, members without a household and persons
in two households (`screen_index`). Each chunk's raw frames go to the validator once, its
decisions are encoded once, written atomically to ``DIR/.work``: an interrupted run resumes
after the last finished chunk. At the end the Parquet parts are joined into
``decisions.parquet`` without decoding them (`screen_parquet`; CSV and XLSX are streamed
from the parts), ``summary.json`` is added up from per-chunk counts, and rows in = decided
+ rejected is checked.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.cells import safe_frame
from engine.errors import FieldProblem, InputError, JiuzhuError, register_error
from engine.evaluator import Evaluator
from engine.messages import text as catalogue_text
from engine.spreadsheet import column_labels, for_people, write_xlsx
from engine.validation.columns import LINK, REPEATED
from engine.vector.caseload import REJECT_SCHEMA, jsonl_to_tables, read_table, validate_frames
from engine.vector.decisions import decide_frames
from engine.vector.plan import ColumnRun
from engine.vector.screen_index import HID, CaseloadIndex, hid_keys, hid_text, index_caseload
from engine.vector.screen_parquet import join_parquet
from engine.vector.screen_summary import ChunkCounts, add_up, chunk_counts

__all__ = ["ScreenError", "find_tables", "screen"]

FORMATS = ("parquet", "csv", "xlsx")
_XLSX_MAX_ROWS = 1_048_575
Progress = Callable[[int, int], None]
# (chunks done, chunks in all, rows this run decided or rejected, seconds since its first chunk began)
RowProgress = Callable[[int, int, int, float], None]


class ScreenError(JiuzhuError):
    """The run could not account for every row, or the output cannot be written."""


register_error(ScreenError, exit_code=4, http_status=500)


@dataclass
class _Source:
    households: Path
    members: Path


def find_tables(folder: Path) -> _Source:
    """The households and members tables of a caseload folder (Parquet, CSV or XLSX)."""
    found: dict[str, Path] = {}
    for name in ("households", "members"):
        for ext in (".parquet", ".csv", ".xlsx"):
            if (folder / f"{name}{ext}").exists():
                found[name] = folder / f"{name}{ext}"
                break
    missing = [n for n in ("households", "members") if n not in found]
    if missing:
        raise InputError([FieldProblem(str(folder / m), catalogue_text("input.table_missing", "en")) for m in missing])
    return _Source(found["households"], found["members"])


def _fingerprint(paths: list[Path], extra: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for p in paths:
        st = p.stat()
        # inode and ctime too: an edit that keeps the size, with the mtime set back, changes them
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}".encode())
    return h.hexdigest()


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


class _Screening:
    def __init__(
        self,
        evaluator: Evaluator,
        caseload: Path,
        out: Path,
        fmt: str,
        decision_date: dt.date | None,
        chunk_size: int,
        today: dt.date,
    ) -> None:
        if fmt not in FORMATS:
            raise InputError(
                [FieldProblem("--format", catalogue_text("input.one_of", "en", values=", ".join(FORMATS)))]
            )
        self.ev = evaluator
        self.caseload = caseload
        self.out = out
        self.fmt = fmt
        self.date = decision_date
        self.chunk_size = chunk_size
        self.today = today
        self.work = out / ".work"
        self.manifest_path = self.work / "manifest.json"
        computed = [s.computed for s in evaluator.ruleset.registries.values() if s.computed]
        # the person column duplicates are looked for in (`computed: duplicates_of:<column>`)
        self.person = next((c.split(":", 1)[1] for c in computed if c.startswith("duplicates_of:")), None)
        self.key_extra: dict[str, Any] = {}  # what else a finished preparation must match to be reused
        self.headers = "en"  # the output files' column headers: codes, or `zh` for people
        self.threads: int | None = None  # the kernel's threads per chunk (None: one per core)

    # ------------------------------------------------------------ preparing

    def _inputs(self) -> list[Path]:
        if self.caseload.is_dir():
            src = find_tables(self.caseload)
            return [src.households, src.members]
        return [self.caseload]

    def prepare(self) -> dict[str, Any]:
        """Convert what is not Parquet, index the ID columns; reuse a finished preparation."""
        key = _fingerprint(
            self._inputs(),
            {
                "ruleset": self.ev.ruleset.ruleset_version,
                "registries": self.ev.registries.versions(),
                "date": self.date,
                "today": self.today,  # the default decision date
                "chunk": self.chunk_size,
                "polars": pl.__version__,  # the ID hashes are stable within one Polars version
                **self.key_extra,
            },
        )
        manifest: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):  # absent or unreadable: start over
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and manifest.get("key") == key and manifest.get("prepared"):
            return manifest
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        bad = pl.DataFrame(schema=REJECT_SCHEMA)
        if self.caseload.is_dir():
            src = find_tables(self.caseload)
            tables = {"households": self._parquet(src.households), "members": self._parquet(src.members)}
        else:
            bad, tables = self._jsonl()
        index, orphans = index_caseload(
            self._scan(tables["households"]),
            self._scan(tables["members"]),
            self.person,
            self.chunk_size,
            self.work / "buckets",
            linked=not self.caseload.is_dir(),
        )
        shutil.rmtree(self.work / "buckets", ignore_errors=True)
        _write_atomic(pl.concat([bad, orphans], how="vertical"), self.work / "rejects-prepare.parquet")
        manifest = {
            "key": key,
            "prepared": True,
            "tables": {name: [str(p) for p in paths] for name, paths in tables.items()},
            "rows_in": index.household_rows + bad.height,
            "bad_json_lines": bad.height,
            "chunks": max(1, -(-index.household_rows // self.chunk_size)),
            "index": index.to_json(),
        }
        tmp = self.manifest_path.with_name(self.manifest_path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, self.manifest_path)
        return manifest

    def _parquet(self, path: Path) -> list[Path]:
        """A table as Parquet: read in place, or converted once (CSV streams, XLSX is one sheet)."""
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return [path]
        target = self.work / f"table-{path.stem}.parquet"
        if suffix == ".csv":
            pl.scan_csv(path, infer_schema=False).sink_parquet(target)
        else:
            read_table(path).write_parquet(target)
        return [target]

    @staticmethod
    def _scan(paths: list[Path]) -> pl.LazyFrame:
        if len(paths) == 1:
            return pl.scan_parquet(paths[0])
        # JSON Lines parts: every part read with the union of the parts' columns
        schema: dict[str, pl.DataType] = {}
        for p in paths:
            for name, dtype in pl.read_parquet_schema(p).items():
                schema.setdefault(name, dtype)
        return pl.scan_parquet(paths, schema=schema, missing_columns="insert")

    def _jsonl(self, batch: int = 100_000) -> tuple[pl.DataFrame, dict[str, list[Path]]]:
        """Convert JSON Lines to Parquet parts batch by batch (memory stays flat); returns
        the lines that are not household objects, and the parts."""
        rejects = []
        parts: dict[str, list[Path]] = {"households": [], "members": []}
        with self.caseload.open(encoding="utf-8") as f:
            part = 0
            while True:
                lines = [line for _, line in zip(range(batch), f, strict=False)]
                if not lines and part > 0:
                    break
                hh, mm, bad = jsonl_to_tables(lines, self.ev.ruleset.record, first_line=part * batch + 1)
                for name, frame in (("households", hh), ("members", mm)):
                    path = self.work / f"json-{name}-{part:05d}.parquet"
                    frame.write_parquet(path)
                    parts[name].append(path)
                rejects.append(bad)
                part += 1
                if len(lines) < batch:
                    break
        return pl.concat(rejects), parts

    # ------------------------------------------------------------ deciding

    def run_chunks(self, manifest: dict[str, Any], progress: Progress | None, rows: RowProgress | None = None) -> None:
        index = CaseloadIndex.from_json(manifest["index"])
        tables = {name: [Path(p) for p in paths] for name, paths in manifest["tables"].items()}
        hh_scan, mm_scan = self._scan(tables["households"]), self._scan(tables["members"])
        registries = chunk_registries(self.ev, index.duplicate_persons)
        dup_ids = pl.DataFrame(index.duplicate_ids, schema={"a": pl.UInt64, "b": pl.UInt64}, orient="row")
        total = manifest["chunks"]
        start, decided = time.monotonic(), 0
        for k in range(total):
            if not (self._part(k).exists() and self._counts(k).exists()):
                decided += self._chunk(k, hh_scan, mm_scan, index, dup_ids, registries).rows
            if progress:
                progress(k + 1, total)
            if rows:
                rows(k + 1, total, decided, time.monotonic() - start)

    def _part(self, k: int) -> Path:
        return self.work / f"decisions-{k:05d}.parquet"

    def _counts(self, k: int) -> Path:
        return self.work / f"counts-{k:05d}.json"

    def _chunk(
        self,
        k: int,
        hh_scan: pl.LazyFrame,
        mm_scan: pl.LazyFrame,
        index: CaseloadIndex,
        dup_ids: pl.DataFrame,
        registries: dict[str, frozenset[str]],
    ) -> ChunkCounts:
        """Decide chunk ``k`` and write its parts; its frames are freed when it returns."""
        return self.decide_chunk(k, lambda: self._frames(k, hh_scan, mm_scan, index, dup_ids), registries)

    def _frames(
        self, k: int, hh_scan: pl.LazyFrame, mm_scan: pl.LazyFrame, index: CaseloadIndex, dup_ids: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        households = mark_copies(hh_scan.slice(k * self.chunk_size, self.chunk_size).collect(), dup_ids)
        if LINK in households.columns:  # JSON Lines: a member follows its household's line
            lines = households.get_column(LINK)
            members = mm_scan.filter(pl.col(LINK).is_between(lines.min(), lines.max())).collect()
        elif index.member_starts is not None:
            start, end = index.member_starts[k], index.member_starts[k + 1]
            members = mm_scan.slice(start, end - start).collect()
        else:
            wanted = households.select(hid_text()).to_series().drop_nulls()  # IDs as validation reads them
            members = mm_scan.filter(hid_text().is_in(wanted.implode())).collect()
        return households, members

    def decide_chunk(
        self, k: int, frames: Callable[[], tuple[pl.DataFrame, pl.DataFrame]], registries: dict[str, frozenset[str]]
    ) -> ChunkCounts:
        """Validate and decide the raw (households, members) that ``frames`` reads; write the
        chunk's rejects, decisions and counts (the counts last, atomically: they mark it finished).
        The frames are read here, not passed in, so that they are freed once parsed."""
        households, members = frames()
        rows = households.height
        h, m, rejects = validate_frames(self.ev.ruleset.record, households, members, self.today, self.date)
        ids = households.get_column(HID)
        del households, members  # the raw values are parsed: only the IDs are needed from here
        run = ColumnRun(self.ev.ruleset, self.ev.params, h, m, registries, threads=self.threads)
        decisions, undecided = decide_frames(self.ev, run)
        del m
        rejects = pl.concat([rejects, undecided], how="vertical")
        self._check_chunk(k, ids, decisions, rejects)
        result = chunk_counts(self.ev.ruleset.reports, h, decisions)
        result.rows = rows
        _write_atomic(rejects, self.work / f"rejects-{k:05d}.parquet")
        _write_atomic(decisions, self._part(k))
        counts = self._counts(k)
        tmp = counts.with_name(counts.name + ".tmp")
        tmp.write_text(json.dumps(result.to_json()), encoding="utf-8")
        os.replace(tmp, counts)
        return result

    def _check_chunk(self, k: int, ids: pl.Series, decisions: pl.DataFrame, rejects: pl.DataFrame) -> None:
        """Every household of the chunk is decided or has at least one reject row."""
        if decisions.height == ids.len():
            return  # decisions come from the chunk's households: every one was decided
        ids = ids.to_frame(HID).select(hid_text()).to_series()  # as validation reads them: blank = null
        decided = decisions.get_column(HID).cast(pl.Utf8).implode()
        named = rejects.get_column(HID).drop_nulls().implode()
        present = ids.drop_nulls()
        undecided = present.filter(~present.is_in(decided))
        unexplained = undecided.filter(~undecided.is_in(named))
        null_ids = ids.null_count()
        null_rejects = rejects.filter(pl.col(HID).is_null() & (pl.col("field") == HID)).height
        if unexplained.len() or null_rejects < null_ids or decisions.height + undecided.len() + null_ids != ids.len():
            raise ScreenError(f"chunk {k}: households neither decided nor rejected: {unexplained.head(5).to_list()}")

    # ------------------------------------------------------------ finishing

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        # a partition that failed whole has no decisions part: its rows are in its rejects
        parts = [self._part(k) for k in range(manifest["chunks"]) if self._part(k).exists()]
        counts = [
            ChunkCounts.from_json(json.loads(self._counts(k).read_text(encoding="utf-8")))
            for k in range(manifest["chunks"])
        ]
        reject_parts = [self.work / "rejects-prepare.parquet"]
        reject_parts += [self.work / f"rejects-{k:05d}.parquet" for k in range(manifest["chunks"])]
        summary = add_up(self.ev, manifest, counts)
        summary["reject_rows"] = sum(int(pl.scan_parquet(p).select(pl.len()).collect().item()) for p in reject_parts)
        rows_in = summary["rows_in"]
        if rows_in != summary["decided"] + summary["rejected"]:
            raise ScreenError(
                f"rows in ({rows_in}) != decided ({summary['decided']}) + rejected ({summary['rejected']});"
                f" parts kept in {self.work}"
            )
        self._write(parts, self.out / f"decisions.{self.fmt}")
        self._write(reject_parts, self.out / f"rejects.{self.fmt}")
        (self.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        return summary

    def _write(self, parts: list[Path], path: Path) -> None:
        """One output file from the parts: Parquet parts joined as they are, CSV streamed, XLSX
        (one sheet, at most ~10^6 rows) collected; written aside, then moved in place."""
        tmp = path.with_name(f".{path.name}.tmp")
        if self.fmt == "parquet":
            try:
                join_parquet(parts, tmp)  # the parts' pages copied as they are: no second encoding
            except ValueError:
                pl.scan_parquet(parts).sink_parquet(tmp)
        elif self.fmt == "csv" and self.headers != "en" and path.stem == "rejects":  # reasons in words too
            for_people(safe_frame(pl.read_parquet(parts)), self.ev.ruleset, self.headers).write_csv(tmp)
        elif self.fmt == "csv":
            scan = safe_frame(pl.scan_parquet(parts))
            scan.rename(column_labels(self.ev.ruleset, scan.collect_schema().names(), self.headers)).sink_csv(tmp)
        else:
            frame = pl.scan_parquet(parts)
            rows = frame.select(pl.len()).collect().item()
            if rows > _XLSX_MAX_ROWS:
                raise ScreenError(f"{path.name}: {rows} rows do not fit in one XLSX sheet; use --format parquet or csv")
            write_xlsx(frame.collect(), tmp, ruleset=self.ev.ruleset, headers=self.headers, worksheet=path.stem)
        os.replace(tmp, path)


def chunk_registries(evaluator: Evaluator, duplicate_persons: list[str]) -> dict[str, frozenset[str]]:
    """The registry keys a chunk is decided with: the loaded registries, and the persons found
    in two households of the whole caseload in the computed ones."""
    registries = {n: r.keys for n, r in evaluator.registries.by_name.items()}
    shared = frozenset(duplicate_persons)
    for name, spec in evaluator.ruleset.registries.items():
        if spec.computed:
            registries[name] = registries.get(name, frozenset()) | shared
    return registries


def mark_copies(households: pl.DataFrame, dup_ids: pl.DataFrame) -> pl.DataFrame:
    """The chunk with the copies of an ID found more than once in the caseload marked, so
    the validator rejects each with every other reason it has, as `check` does."""
    if dup_ids.height == 0:
        return households
    keys = hid_keys(households.select(HID))
    again = keys.join(
        dup_ids.with_columns(pl.lit(True).alias(REPEATED)), on=["a", "b"], how="left", maintain_order="left"
    )
    return households.with_columns(again.get_column(REPEATED).fill_null(False))


def _steady_heap() -> None:
    """Fix glibc's mmap and trim thresholds at 128 KiB (their defaults). Left dynamic, glibc
    raises them up to 32 MiB each time a large block is freed, after which each chunk's
    NumPy buffers are carved from the heap and the heap keeps what it once held: a long
    screening's memory creeps up chunk after chunk. The price is a page fault per page of
    every large NumPy buffer: on a quiet machine, leaving the thresholds alone and calling
    `malloc_trim` after each chunk screened 10^6 about 1.3x faster, but 10^7 then peaked at
    1.17-1.22x the RSS of 10^6 (the target is 1.2x). A no-op where there is no `mallopt`."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD


def screen(
    evaluator: Evaluator,
    caseload: Path,
    out: Path,
    *,
    fmt: str = "parquet",
    decision_date: dt.date | None = None,
    chunk_size: int = 250_000,
    today: dt.date | None = None,
    progress: Progress | None = None,
    row_progress: RowProgress | None = None,
    headers: str = "en",
) -> dict[str, Any]:
    """Screen a caseload (a .jsonl file or a folder of tables) into ``out``; returns the summary.
    ``progress`` hears (chunks done, chunks); ``row_progress`` also the rows and seconds;
    ``headers="zh"``: the CSV or XLSX files' headers (and rejects' reasons) in Chinese."""
    _steady_heap()
    job = _Screening(evaluator, caseload, out, fmt, decision_date, chunk_size, today or dt.date.today())
    job.headers = headers
    with _locked(out):
        # the last run's results go first: a run that fails leaves none that look current
        for name in ["summary.json", *(f"{kind}.{ext}" for kind in ("decisions", "rejects") for ext in FORMATS)]:
            (out / name).unlink(missing_ok=True)
        manifest = job.prepare()
        job.run_chunks(manifest, progress, row_progress)
        return job.finish(manifest)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.lock`` (released when the process ends, however it ends)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = (out / ".lock").open("a")
    except OSError as exc:
        raise ScreenError(f"cannot write to {out}: {exc}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScreenError(f"another screening is writing to {out}; wait for it to finish") from None
        yield
