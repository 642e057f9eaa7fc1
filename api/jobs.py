"""Jobs beside the requests (screenings, monitoring, impact): a bounded number at a time,
each cancelable, its uploads deleted when it ends, and each holding a lock file while it
runs, so that a server starting later finds the jobs a dead process left ``running`` and
marks them failed (resumable where the work can pick up where it stopped)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from api.store import Store, jobs
from engine import Said

__all__ = ["Busy", "Canceled", "JobRunner"]

ACTIVE = ("queued", "running")
_LOCK_FILE = ".running"
_PARAMS_FILE = "job.json"
_DIED = "the server stopped while this job ran"

Work = Callable[[int, Path], dict[str, Any]]


class Busy(Said):
    """Too many jobs at once; try again after ``retry_after`` seconds."""

    def __init__(self, limit: int, retry_after: int = 30) -> None:
        super().__init__("api.busy", limit=limit)
        self.retry_after = retry_after


class Canceled(Exception):
    """Raised inside a job's work when it has been canceled."""


class JobRunner:
    def __init__(self, store: Store, root: Path, limit: int, scrub: Callable[[str], str]) -> None:
        self.store = store
        self.root = root
        self.limit = limit
        self.scrub = scrub
        self._lock = threading.Lock()
        self._stops: dict[int, threading.Event] = {}

    # ------------------------------------------------------------ state

    def _set(self, jid: int, status: str, was: tuple[str, ...], **values: Any) -> bool:
        """Move a job to ``status`` only from one of ``was`` (a canceled job stays canceled)."""
        with self.store.engine.begin() as conn:
            query = jobs.update().where(jobs.c.id == jid, jobs.c.status.in_(was)).values(status=status, **values)
            return bool(conn.execute(query).rowcount)

    def _active(self) -> int:
        with self.store.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status.in_(ACTIVE))
            return int(conn.execute(query).scalar_one())

    def params(self, jid: int) -> dict[str, Any]:
        row = self.store.job(jid)
        path = Path(row["folder"]) / _PARAMS_FILE if row and row["folder"] else None
        if path is None or not path.exists():
            return {}
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    # ------------------------------------------------------------ start, run, cancel

    def start(
        self,
        kind: str,
        actor: int | None,
        work: Work,
        params: dict[str, Any] | None = None,
        uploads: tuple[Path, ...] = (),
        again: int | None = None,
    ) -> int:
        """Queue ``work(job id, output folder)`` in a thread (or ``again``, a failed job, in
        its own folder); raises ``Busy`` past the limit."""
        with self._lock:
            if self._active() >= self.limit:
                for upload in uploads:
                    upload.unlink(missing_ok=True)
                raise Busy(self.limit)
            if again is None:
                jid = self.store.add_job(kind, "", actor)
            else:
                jid = again
                self._set(jid, "queued", ("failed",), error=None, summary=None)
            out = self.root / f"job-{jid}"
            out.mkdir(parents=True, exist_ok=True)
            self.store.update_job(jid, folder=str(out))
            # what a later start needs to resume the job, or to delete what a dead one left
            record = {"kind": kind, "uploads": [str(u) for u in uploads], **(params or {})}
            (out / _PARAMS_FILE).write_text(json.dumps(record), encoding="utf-8")
            lock = _hold(out)  # taken before the request returns: this process owns the job
            self._stops[jid] = threading.Event()

        def run() -> None:
            try:
                if not self._set(jid, "running", ("queued",)):
                    return  # canceled while queued
                try:
                    summary = work(jid, out)
                    self._set(jid, "done", ("running",), summary=json.dumps(summary, ensure_ascii=False))
                except Canceled:
                    pass
                except Exception as exc:  # a job reports its failure instead of dying silently
                    self._set(jid, "failed", ("running",), error=self.scrub(str(exc)))
            finally:
                for upload in uploads:
                    upload.unlink(missing_ok=True)
                self._stops.pop(jid, None)
                lock.close()

        threading.Thread(target=run, name=f"{kind}-{jid}", daemon=True).start()
        return jid

    def stopper(self, jid: int) -> Callable[[], None]:
        """A check the work calls between steps: raises ``Canceled`` once the job is canceled."""
        stop = self._stops.get(jid)

        def check() -> None:
            if stop is not None and stop.is_set():
                raise Canceled

        return check

    def cancel(self, jid: int) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        if not self._set(jid, "canceled", ACTIVE, error="canceled"):
            return False
        stop = self._stops.get(jid)
        if stop is not None:
            stop.set()
        return True

    # ------------------------------------------------------------ start-up

    def recover(self, resumable: Callable[[dict[str, Any]], bool]) -> list[int]:
        """Mark failed every job left queued or running whose process is gone (nobody holds
        its lock file); ``resumable(params)`` says whether it can be started again."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.id, jobs.c.folder).where(jobs.c.status.in_(ACTIVE))).all()
        dead = []
        for jid, folder in rows:
            if folder and _held(Path(folder)):
                continue
            params = self.params(jid)
            can = resumable(params)
            summary = json.dumps({"resumable": can})
            if self._set(jid, "failed", ACTIVE, error=_DIED, summary=summary):
                dead.append(jid)
                if not can:  # nothing will read its uploads again
                    for upload in params.get("uploads", []):
                        Path(upload).unlink(missing_ok=True)
        return dead


def _hold(folder: Path) -> IO[str]:
    """An exclusive lock on the job's lock file, held until the file is closed."""
    f = open(folder / _LOCK_FILE, "w")  # noqa: SIM115 (closed when the job ends)
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def _held(folder: Path) -> bool:
    """Whether some living process holds the job's lock."""
    path = folder / _LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
