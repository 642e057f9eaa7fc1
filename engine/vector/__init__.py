"""The vectorized backend: whole caseloads as columns, compiled from the same IR."""

from engine.vector.caseload import jsonl_to_tables, read_table, validate_frames
from engine.vector.decisions import decide_frames
from engine.vector.plan import ColumnRun
from engine.vector.runs import decide_caseload, duplicate_persons

__all__ = [
    "ColumnRun",
    "decide_caseload",
    "decide_frames",
    "duplicate_persons",
    "jsonl_to_tables",
    "read_table",
    "validate_frames",
]
