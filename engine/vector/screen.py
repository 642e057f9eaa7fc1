"""Re-screen a whole caseload in chunks: streaming, resumable, nothing dropped.

``screen`` prepares the caseload once (members sorted by chunk, duplicate persons over the
whole caseload, members without a household), then decides chunk after chunk. Each
finished chunk is written to ``DIR/.work`` before the next starts, so an interrupted run
resumes where it stopped. At the end the parts become ``decisions.<fmt>``,
``rejects.<fmt>`` and ``summary.json``, and rows in = decided + rejected is checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import FieldProblem, InputError, JiuzhuError
from engine.evaluator import Evaluator
from engine.vector.caseload import REJECT_SCHEMA, jsonl_to_tables, read_table, validate_frames
from engine.vector.decisions import decide_frames
from engine.vector.plan import ColumnRun

__all__ = ["ScreenError", "find_tables", "screen"]

FORMATS = ("parquet", "csv", "xlsx")
_XLSX_MAX_ROWS = 1_048_575
Progress = Callable[[int, int], None]


class ScreenError(JiuzhuError):
    """The run could not account for every row, or the output cannot be written."""

    exit_code = 4


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
        raise InputError(
            [
                FieldProblem(str(folder / m), "table not found (households/members as .parquet, .csv or .xlsx)")
                for m in missing
            ]
        )
    return _Source(found["households"], found["members"])


def _scan(path: Path) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.scan_parquet(path)
    if suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False)
    return read_table(path).lazy()  # XLSX has no lazy reader


def _fingerprint(paths: list[Path], extra: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
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
            raise InputError([FieldProblem("--format", f"use one of {', '.join(FORMATS)}")])
        self.ev = evaluator
        self.caseload = caseload
        self.out = out
        self.fmt = fmt
        self.date = decision_date
        self.chunk_size = chunk_size
        self.today = today
        self.work = out / ".work"
        self.manifest_path = self.work / "manifest.json"

    # ------------------------------------------------------------ preparing

    def _inputs(self) -> list[Path]:
        if self.caseload.is_dir():
            src = find_tables(self.caseload)
            return [src.households, src.members]
        return [self.caseload]

    def prepare(self) -> dict[str, Any]:
        inputs = self._inputs()
        key = _fingerprint(
            inputs,
            {
                "ruleset": self.ev.ruleset.ruleset_version,
                "registries": self.ev.registries.versions(),
                "date": self.date,
                "chunk": self.chunk_size,
            },
        )
        if self.manifest_path.exists():
            manifest: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if manifest.get("key") == key and manifest.get("prepared"):
                return manifest
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        rejects: list[pl.DataFrame] = []
        if self.caseload.is_dir():
            src = find_tables(self.caseload)
            households, members = _scan(src.households), _scan(src.members)
        else:
            bad = self._jsonl()
            rejects.append(bad)
            households = pl.scan_parquet(self.work / "json-households-*.parquet")
            members = pl.scan_parquet(self.work / "json-members-*.parquet")
        hh_path = self.work / "households.parquet"
        households.with_row_index("_row").sink_parquet(hh_path)
        hh_ids = pl.scan_parquet(hh_path).select(pl.col("household_id").cast(pl.Utf8), "_row")
        dup_ids = hh_ids.group_by("household_id").len().filter(pl.col("len") > 1).select("household_id").collect()
        if dup_ids.height:
            rejects.append(
                dup_ids.select(
                    "household_id",
                    pl.lit("household_id").alias("field"),
                    pl.lit("appears more than once in the households table").alias("reason"),
                )
            )
        keep = hh_ids.join(dup_ids.lazy(), on="household_id", how="anti")
        keyed = keep.with_columns((pl.col("_row") // self.chunk_size).alias("_chunk"))
        members = members.with_columns(pl.col("household_id").cast(pl.Utf8))
        members.join(keyed, on="household_id", how="inner").sort(["_chunk", "_row"], maintain_order=True).drop(
            "_row"
        ).sink_parquet(self.work / "members.parquet")
        orphans = (
            members.join(hh_ids, on="household_id", how="anti")
            .select(
                "household_id",
                pl.lit("household_id").alias("field"),
                pl.lit("member without household").alias("reason"),
            )
            .collect()
        )
        if orphans.height:
            rejects.append(orphans)
        persons = members.join(keep, on="household_id", how="semi").select(
            pl.col("person_id").cast(pl.Utf8).str.strip_chars().str.to_uppercase(), "household_id"
        )
        dup_persons = (
            persons.group_by("person_id")
            .agg(pl.col("household_id").n_unique().alias("n"))
            .filter(pl.col("n") > 1)
            .select("person_id")
            .collect()
        )
        dup_persons.write_parquet(self.work / "duplicates.parquet")
        pre = pl.concat(rejects, how="vertical") if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
        _write_atomic(pre, self.work / "rejects-prepare.parquet")
        rows = int(pl.scan_parquet(hh_path).select(pl.len()).collect().item())
        dup_rows = int(hh_ids.join(dup_ids.lazy(), on="household_id", how="semi").select(pl.len()).collect().item())
        bad_lines = int(pre.filter(pl.col("household_id").str.starts_with("(line ")).height)
        manifest = {
            "key": key,
            "prepared": True,
            "rows_in": rows + bad_lines,
            "household_rows": rows,
            "bad_json_lines": bad_lines,
            "duplicate_household_id_rows": dup_rows,
            "member_rows": int(members.select(pl.len()).collect().item()),
            "orphan_member_rows": int(orphans.height),
            "chunks": max(1, -(-rows // self.chunk_size)),
        }
        self.manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return manifest

    def _jsonl(self, batch: int = 100_000) -> pl.DataFrame:
        """Convert JSON Lines to Parquet parts batch by batch (memory stays flat); returns
        the lines that are not household objects."""
        rejects = []
        columns: dict[str, list[str]] = {}
        with self.caseload.open(encoding="utf-8") as f:
            part = 0
            while True:
                lines = [line for _, line in zip(range(batch), f, strict=False)]
                if not lines and part > 0:
                    break
                hh, mm, bad = jsonl_to_tables(lines, self.ev.ruleset.record, first_line=part * batch + 1)
                # every part gets the same columns, so the parts scan as one table
                for name, frame in (("households", hh), ("members", mm)):
                    known = columns.setdefault(name, frame.columns)
                    extra = [c for c in frame.columns if c not in known]
                    if extra:
                        raise InputError([FieldProblem(f"{name}.{c}", "unknown field") for c in extra])
                    frame.select(
                        [pl.col(c) if c in frame.columns else pl.lit(None, dtype=pl.Utf8).alias(c) for c in known]
                    ).write_parquet(self.work / f"json-{name}-{part:05d}.parquet")
                rejects.append(bad)
                part += 1
                if len(lines) < batch:
                    break
        return pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECT_SCHEMA)

    # ------------------------------------------------------------ deciding

    def run_chunks(self, manifest: dict[str, Any], progress: Progress | None) -> None:
        duplicates = frozenset(pl.read_parquet(self.work / "duplicates.parquet").get_column("person_id").to_list())
        registries = {n: r.keys for n, r in self.ev.registries.by_name.items()}
        for name, spec in self.ev.ruleset.registries.items():
            if spec.computed:
                registries[name] = registries.get(name, frozenset()) | duplicates
        total = manifest["chunks"]
        hh_scan = pl.scan_parquet(self.work / "households.parquet")
        mm_scan = pl.scan_parquet(self.work / "members.parquet")
        dup_ids = (
            pl.read_parquet(self.work / "rejects-prepare.parquet")
            .filter(pl.col("field") == "household_id")
            .get_column("household_id")
        )
        for k in range(total):
            done = self.work / f"decisions-{k:05d}.parquet"
            counts = self.work / f"counts-{k:05d}.json"
            if done.exists() and counts.exists():
                if progress:
                    progress(k + 1, total)
                continue
            households = hh_scan.filter((pl.col("_row") // self.chunk_size) == k).drop("_row").collect()
            households = households.filter(~pl.col("household_id").cast(pl.Utf8).is_in(dup_ids.implode()))
            members = mm_scan.filter(pl.col("_chunk") == k).drop("_chunk").collect()
            h, m, rejects = validate_frames(self.ev.ruleset.record, households, members, self.today, self.date)
            run = ColumnRun(self.ev.ruleset, self.ev.params, h, m, registries)
            decisions, undecided = decide_frames(self.ev, run)
            rejects = pl.concat([rejects, undecided], how="vertical")
            self._check_chunk(k, households, decisions, rejects)
            _write_atomic(rejects, self.work / f"rejects-{k:05d}.parquet")
            _write_atomic(decisions, done)
            counts.write_text(json.dumps({"rows": households.height, "decided": decisions.height}), encoding="utf-8")
            if progress:
                progress(k + 1, total)

    def _check_chunk(self, k: int, households: pl.DataFrame, decisions: pl.DataFrame, rejects: pl.DataFrame) -> None:
        """Every household of the chunk is decided or has at least one reject row."""
        ids = households.get_column("household_id").cast(pl.Utf8)
        undecided = set(ids.drop_nulls().to_list()) - set(decisions.get_column("household_id").to_list())
        unexplained = undecided - set(rejects.get_column("household_id").drop_nulls().to_list())
        null_ids = ids.null_count()
        null_rejects = rejects.filter(pl.col("household_id").is_null() & (pl.col("field") == "household_id")).height
        if unexplained or null_rejects < null_ids or decisions.height + len(undecided) + null_ids != households.height:
            raise ScreenError(f"chunk {k}: households neither decided nor rejected: {sorted(unexplained)[:5]}")

    # ------------------------------------------------------------ finishing

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        decisions = pl.scan_parquet(sorted(self.work.glob("decisions-*.parquet")))
        rejects = pl.scan_parquet(
            [self.work / "rejects-prepare.parquet", *sorted(self.work.glob("rejects-*[0-9].parquet"))]
        )
        summary = self._summary(manifest, decisions, rejects)
        self._write(decisions, self.out / f"decisions.{self.fmt}")
        self._write(rejects, self.out / f"rejects.{self.fmt}")
        (self.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        return summary

    def _write(self, frame: pl.LazyFrame, path: Path) -> None:
        if self.fmt == "parquet":
            frame.sink_parquet(path)
        elif self.fmt == "csv":
            frame.sink_csv(path)
        else:
            rows = frame.select(pl.len()).collect().item()
            if rows > _XLSX_MAX_ROWS:
                raise ScreenError(f"{path.name}: {rows} rows do not fit in one XLSX sheet; use --format parquet or csv")
            frame.collect().write_excel(path, worksheet=path.stem)

    def _summary(self, manifest: dict[str, Any], decisions: pl.LazyFrame, rejects: pl.LazyFrame) -> dict[str, Any]:
        counts = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.work.glob("counts-*.json"))]
        decided = sum(c["decided"] for c in counts)
        rejected = (
            sum(c["rows"] - c["decided"] for c in counts)
            + manifest["duplicate_household_id_rows"]
            + manifest["bad_json_lines"]
        )
        rows_in = manifest["rows_in"]
        if rows_in != decided + rejected:
            raise ScreenError(
                f"rows in ({rows_in}) != decided ({decided}) + rejected ({rejected}); parts kept in {self.work}"
            )
        statuses = {}
        for col in self.ev.ruleset.reports.get("statuses") or {}:
            table = decisions.group_by(col).len().collect()
            statuses[col] = {str(r[col]): int(r["len"]) for r in table.sort(col).to_dicts()}
        findings = (
            decisions.select(pl.col("findings").str.split(";").alias("f"))
            .explode("f")
            .filter(pl.col("f") != "")
            .group_by("f")
            .len()
            .collect()
        )
        paid = self.ev.ruleset.reports.get("paid_before") or {}
        before = after = None
        if paid:
            after = decisions.select(pl.col(paid["after"]).cast(pl.Decimal(20, 2)).sum()).collect().item()
            households = pl.scan_parquet(self.work / "households.parquet")
            before = (
                households.join(decisions.select("household_id"), on="household_id", how="semi")
                .select(_money_sum(households, paid["amount"].replace(".", "_"), paid["recipient"].replace(".", "_")))
                .collect()
                .item()
            )
        return {
            "ruleset_version": self.ev.ruleset.ruleset_version,
            "rows_in": rows_in,
            "decided": decided,
            "rejected": rejected,
            "reject_rows": int(rejects.select(pl.len()).collect().item()),
            "member_rows_in": manifest["member_rows"],
            "member_rows_without_household": manifest["orphan_member_rows"],
            "statuses": statuses,
            "findings": {str(r["f"]): int(r["len"]) for r in findings.sort("f").to_dicts()},
            "monthly_paid_before": f"{before or 0:.2f}",
            "monthly_paid_after": f"{after or 0:.2f}",
            "registries": self.ev.registries.versions(),
        }


def _money_sum(households: pl.LazyFrame, amount_col: str, recipient_col: str) -> pl.Expr:
    """Monthly amount paid before the run: the recipients' current amounts (`reports.paid_before`)."""
    schema = households.collect_schema()
    amount = pl.col(amount_col)
    recipient = pl.col(recipient_col)
    if not isinstance(schema.get(amount_col), pl.Decimal):
        amount = amount.cast(pl.Utf8).str.strip_chars().cast(pl.Decimal(20, 2), strict=False)
    if schema.get(recipient_col) != pl.Boolean:
        recipient = recipient.cast(pl.Utf8).str.to_lowercase() == "true"
    return pl.when(recipient.fill_null(False)).then(amount).otherwise(None).cast(pl.Decimal(20, 2)).sum()


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
) -> dict[str, Any]:
    """Screen a caseload (a .jsonl file or a folder of tables) into ``out``; returns the summary."""
    job = _Screening(evaluator, caseload, out, fmt, decision_date, chunk_size, today or dt.date.today())
    manifest = job.prepare()
    job.run_chunks(manifest, progress)
    return job.finish(manifest)
