"""A job's progress, as its status shows it: partitions (chunks) done of all, households done,
households per second and the seconds left.

The running job writes ``progress.json`` in its folder after each partition, and the status
reads it back: every server process answers for the job, whichever process runs it (`jiuzhu
serve --workers N` runs several). The fields (see `JobProgress.snapshot`):

- ``partitions_done``, ``partitions_total``: partitions (in one process: chunks) finished,
  counting those an earlier run of a resumed job had finished;
- ``resumed_partitions``: how many of them an earlier run had finished;
- ``households_done``: households (input rows) this run decided or rejected;
- ``households_per_s``: ``households_done`` over ``elapsed_s`` (null before any household);
- ``eta_s``: seconds left, from this run's seconds per partition times the partitions left
  (null until one partition is finished, 0 at the end);
- ``elapsed_s``: seconds since the first partition began;
- ``updated_at``: when this was written (UTC, ISO 8601).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["JobProgress", "read_progress"]

_FILE = "progress.json"


class JobProgress:
    """A progress callback, (partitions done, in all, households done, seconds), that writes
    the job's progress file; partitions that bring no households were finished before."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / _FILE
        self.done = 0
        self.households = 0
        self.resumed = 0

    def __call__(self, done: int, total: int, households: int, seconds: float) -> None:
        if households == self.households:  # nothing decided: finished by an earlier run
            self.resumed += max(0, done - self.done)
        self.done, self.households = done, households
        self.write(self.snapshot(done, total, households, seconds))

    def snapshot(self, done: int, total: int, households: int, seconds: float) -> dict[str, Any]:
        ran = done - self.resumed
        eta = seconds * (total - done) / ran if ran > 0 else None
        return {
            "partitions_done": done,
            "partitions_total": total,
            "resumed_partitions": self.resumed,
            "households_done": households,
            "households_per_s": round(households / seconds, 1) if seconds > 0 and households else None,
            "eta_s": 0.0 if done >= total else None if eta is None else round(eta, 1),
            "elapsed_s": round(seconds, 3),
            "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def clear(self) -> None:
        """Forget what an earlier run of the job wrote (a resumed job starts its own count)."""
        self.path.unlink(missing_ok=True)

    def write(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{_FILE}.tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.path)  # a reader sees the last state or the one before, never half


def read_progress(folder: str | Path | None) -> dict[str, Any] | None:
    """The job's last progress, or None before its first partition (or for a job without)."""
    if not folder:
        return None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((Path(folder) / _FILE).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return None
