"""A job's progress in its status (issue 13): partitions done of all, households done,
households per second and an ETA, written by the running job and read back by any server
process. First a real screening writing the progress file chunk by chunk (and resumed), then
a real `jiuzhu serve` whose screening and impact jobs show it in `GET /v1/screenings/{id}`."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.job_progress import JobProgress, read_progress
from engine import Evaluator
from engine.vector.screen import screen
from fixtures.server import Server, start
from tests.conftest import FIXTURES

DATE = dt.date(2019, 8, 1)
SAMPLES = len((FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines())
CHUNK = 4
CHUNKS = -(-SAMPLES // CHUNK)


def _screen_watching(evaluator: Evaluator, out: Path, folder: Path, stop_at: int | None = None) -> list[dict[str, Any]]:
    """Screen the samples, the progress file read back after every chunk."""
    meter = JobProgress(folder)
    seen: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def progress(done: int, total: int, households: int, seconds: float) -> None:
        meter(done, total, households, seconds)
        state = read_progress(folder)
        assert state is not None
        seen.append(state)
        if done == stop_at:
            raise Stop

    with contextlib.suppress(Stop):
        screen(evaluator, FIXTURES / "households.jsonl", out, chunk_size=CHUNK, today=DATE, row_progress=progress)
    return seen


def test_progress_moves_chunk_by_chunk_and_ends_at_the_total(evaluator: Evaluator, tmp_path: Path) -> None:
    seen = _screen_watching(evaluator, tmp_path / "out", tmp_path)
    assert [s["partitions_done"] for s in seen] == list(range(1, CHUNKS + 1))
    assert {s["partitions_total"] for s in seen} == {CHUNKS}
    households = [s["households_done"] for s in seen]
    assert households == sorted(households)
    assert len(set(households)) == CHUNKS
    assert households[0] == CHUNK
    last = seen[-1]
    assert last["households_done"] == SAMPLES
    assert last["eta_s"] == 0.0
    assert last["resumed_partitions"] == 0
    assert last["households_per_s"] is not None
    assert last["households_per_s"] > 0
    assert all(s["eta_s"] is not None and s["eta_s"] >= 0 for s in seen)


def test_a_resumed_run_counts_only_what_it_decides(evaluator: Evaluator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _screen_watching(evaluator, out, tmp_path, stop_at=2)
    assert first[-1]["partitions_done"] == 2
    assert first[-1]["households_done"] == 2 * CHUNK
    again = _screen_watching(evaluator, out, tmp_path)
    assert again[0]["resumed_partitions"] == 1
    assert again[0]["households_done"] == 0
    assert again[0]["households_per_s"] is None
    assert again[0]["eta_s"] is None
    last = again[-1]
    assert last["partitions_done"] == CHUNKS
    assert last["resumed_partitions"] == 2
    assert last["households_done"] == SAMPLES - 2 * CHUNK
    done = _screen_watching(evaluator, out, tmp_path)  # every chunk finished: nothing to decide
    assert done[-1]["resumed_partitions"] == CHUNKS
    assert done[-1]["households_done"] == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("progress")
    (folder / "caseload.jsonl").write_bytes((FIXTURES / "households.jsonl").read_bytes())
    s = start(folder, "--limit", f"screen_chunk={CHUNK}")
    s.add_user("数据", "data")
    s.add_user("政策", "policy")
    yield s
    s.stop()


def _poll(server: Server, token: str, jid: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The finished job, and every distinct progress seen while polling."""
    client = server.client(server.tokens[token])
    seen: list[dict[str, Any]] = []
    for _ in range(1200):
        job: dict[str, Any] = client.get(f"/v1/screenings/{jid}").json()
        if job["progress"] and (not seen or job["progress"] != seen[-1]):
            seen.append(job["progress"])
        if job["status"] in ("done", "failed", "canceled"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {jid} did not finish")


def test_screening_job_status_carries_its_progress(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    r = data.post("/v1/screenings", json={"path": "caseload.jsonl", "date": DATE.isoformat()})
    assert r.status_code == 202
    job, seen = _poll(server, "数据", r.json()["id"])
    assert job["status"] == "done", job
    progress = job["progress"]
    assert (progress["partitions_done"], progress["partitions_total"]) == (CHUNKS, CHUNKS)
    assert (job["done"], job["total"]) == (CHUNKS, CHUNKS)
    assert progress["households_done"] == job["summary"]["rows_in"] == SAMPLES
    assert progress["eta_s"] == 0.0
    assert progress["households_per_s"] > 0
    done = [s["partitions_done"] for s in seen]
    assert done == sorted(done)
    assert done[-1] == CHUNKS


def test_impact_job_status_carries_its_progress(server: Server) -> None:
    policy = server.client(server.tokens["政策"])
    body = {"caseload": "caseload.jsonl", "set": ["dibao.standard=850@2019-07-01"], "date": DATE.isoformat()}
    r = policy.post("/v1/impact", json=body)
    assert r.status_code == 202
    job, _ = _poll(server, "政策", r.json()["id"])
    assert job["status"] == "done", job
    progress = job["progress"]
    assert (progress["partitions_done"], progress["partitions_total"]) == (1, 1)  # impact is one step in-process
    assert progress["households_done"] == job["summary"]["rows_in"] == SAMPLES
    assert progress["eta_s"] == 0.0
