"""Reading and screening records of a declared record type in bulk.

A bulk run decides the records one by one with ``SubjectEvaluator``, the same code that
decides one record, and reads a table row as the mapping of its columns, so one record and
the same record in a table get the same verdict, field and reason. These subjects are few (a
review round is thousands of people, not millions of households), so the columnar kernel
is not used: there is no second implementation to keep in agreement, and a round of ten
thousand records takes seconds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.cells import safe_frame
from engine.errors import FieldProblem, InputError
from engine.messages import text as catalogue_text
from engine.spreadsheet import write_xlsx
from engine.validation.rules import json_value

from .evaluate import SubjectEvaluator
from .record import SubjectRegistry, parse_subject_registry
from .spec import RecordTypeSpec

__all__ = ["read_records", "record_type_of", "screen_records", "subject_registries"]

_TABLE_SUFFIXES = (".parquet", ".csv", ".xlsx")


def record_type_of(types: Mapping[str, RecordTypeSpec], path: Path) -> str | None:
    """The record type a file or folder holds, or None for households.

    A folder or file named after a type's table (``candidates.csv``), or JSON whose first
    object has the type's id field and no household id."""
    for name, spec in types.items():
        if path.is_dir() and any((path / f"{spec.table}{s}").exists() for s in (*_TABLE_SUFFIXES, ".jsonl")):
            return name
        if path.is_file() and path.stem == spec.table:
            return name
    if path.is_file() and path.suffix in (".json", ".jsonl"):
        first = next((ln for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()), "")
        try:
            obj = json_value(first if path.suffix == ".jsonl" else path.read_text(encoding="utf-8"))
        except ValueError:  # not JSON, or too deep: the household reader reports it
            return None
        if isinstance(obj, dict) and "household_id" not in obj:
            return next((n for n, s in types.items() if s.role("id") in obj), None)
    return None


def subject_registries(spec: RecordTypeSpec, paths: Mapping[str, str | Path]) -> dict[str, SubjectRegistry]:
    """The type's registries read from CSV files (the others empty)."""
    out: dict[str, SubjectRegistry] = {}
    for name, path in paths.items():
        if name in spec.registries:
            out[name] = parse_subject_registry(spec, spec.registries[name], Path(path).read_text(encoding="utf-8"))
    return out


def read_records(spec: RecordTypeSpec, path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, the record or why it is not one) from JSON, JSON Lines or a table."""
    if path.is_dir():
        path = next(p for p in (path / f"{spec.table}{s}" for s in (*_TABLE_SUFFIXES, ".jsonl")) if p.exists())
    if path.suffix in (".json", ".jsonl"):
        text = path.read_text(encoding="utf-8")
        chunks = text.split("\n") if path.suffix == ".jsonl" else [text]
        for i, chunk in enumerate(chunks, start=1):
            if chunk.strip():
                try:
                    yield i, json_value(chunk)
                except ValueError as exc:  # not JSON, or nested too deep: a rejected row
                    yield i, exc
        return
    import polars as pl  # a table needs Polars; JSON does not

    if path.suffix == ".csv":
        frame = pl.read_csv(path, infer_schema=False)
    elif path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_excel(path, infer_schema_length=0)
    for i, row in enumerate(frame.iter_rows(named=True), start=2):
        yield i, row


def screen_records(evaluator: SubjectEvaluator, source: Path, out_dir: Path, fmt: str = "csv") -> dict[str, Any]:
    """Decide every record of a file or table; write decisions, rejects and summary.json."""
    spec = evaluator.spec
    id_field = spec.role("id")
    rows = list(read_records(spec, source))
    ids = Counter(str(r.get(id_field)).strip() for _, r in rows if isinstance(r, dict) and r.get(id_field) is not None)
    decided: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for line, raw in rows:
        rid = raw.get(id_field) if isinstance(raw, dict) else None
        try:
            if isinstance(raw, ValueError):
                raise InputError([FieldProblem("(json)", str(raw))])
            if rid is not None and ids[str(rid).strip()] > 1:
                raise InputError([FieldProblem(id_field, catalogue_text("input.repeated_record", "en"))])
            decided.append(evaluator.decide(raw).row())
        except InputError as exc:
            rejects.extend({id_field: rid, "line": line, "field": p.field, "reason": p.message} for p in exc.problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / f"decisions.{fmt}", decided, list(spec.decision))
    _write(out_dir / f"rejects.{fmt}", rejects, [id_field, "line", "field", "reason"])
    status = Counter(d[spec.status_field] for d in decided)
    actions = Counter(d[spec.action_field] for d in decided)
    summary = {
        "record_type": spec.name,
        "rows": len(rows),
        "decided": len(decided),
        "rejected": len({r["line"] for r in rejects}),
        spec.status_field: dict(sorted(status.items())),
        spec.action_field: dict(sorted(actions.items())),
        "registry_versions": {n: r.version for n, r in sorted(evaluator.registries.items())},
        "ruleset_version": evaluator.ruleset_version,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def _write(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import polars as pl

    frame = pl.DataFrame({c: [_cell(r.get(c)) for r in rows] for c in columns})
    frame = frame.cast(dict.fromkeys(columns, pl.Utf8))
    if path.suffix == ".csv":
        safe_frame(frame).write_csv(path)
    elif path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        write_xlsx(frame, path, worksheet=path.stem)  # text that cannot run, as every XLSX we write


def _cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
