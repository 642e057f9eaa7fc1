"""Uploads and jobs under attack (issue 10, rows 12 and 21): a real `jiuzhu serve` on
127.0.0.1 with a SQLite file, small limits set with `--limit`, and a server killed with -9."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.service import Service, Settings
from fixtures.server import Server, jiuzhu, start
from tests.conftest import FIXTURES, RULES

HOUSEHOLDS = 10_000  # a screening of a few seconds: long enough to be caught running


def _caseload(folder: Path, households: int = HOUSEHOLDS) -> Path:
    r = jiuzhu(
        "fixtures",
        "caseload",
        "--households",
        str(households),
        "--seed",
        "12",
        "--out",
        str(folder),
        "--format",
        "jsonl",
    )
    assert r.returncode == 0, r.stderr
    return folder / "households.jsonl"


def _job(server: Server, jid: int, until: tuple[str, ...] = ("done", "failed", "canceled")) -> dict[str, Any]:
    data = server.client(server.tokens["数据"])
    for _ in range(1200):
        job: dict[str, Any] = data.get(f"/v1/screenings/{jid}").json()
        if job["status"] in until:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {jid} never reached {until}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("jobs")
    _caseload(folder / "big", 3000)  # still queued or running when the next request comes
    s = start(folder, "--limit", "caseload=50000", "--limit", "jobs=1")
    s.add_user("数据", "data")
    yield s
    s.stop()


def _uploads(server: Server) -> list[Path]:
    folder = server.folder / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_row12_upload_over_the_limit_is_413_naming_it_and_leaves_no_file(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    line = (FIXTURES / "households.jsonl").read_bytes().splitlines()[0] + b"\n"
    body = line * (60_000 // len(line) + 1)
    declared = data.post("/v1/screenings", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert declared.status_code == 413
    assert "50000" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams to disk
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    streamed = data.post("/v1/screenings", content=chunks(), headers={"Content-Type": "application/x-ndjson"})
    assert streamed.status_code == 413
    assert "50000" in streamed.json()["detail"]
    assert _uploads(server) == []


def test_row12_upload_is_deleted_when_its_job_ends(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    body = (FIXTURES / "households.jsonl").read_bytes()
    r = data.post("/v1/screenings", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    job = _job(server, r.json()["id"])
    assert job["status"] == "done", job
    assert job["summary"]["decided"] == len(body.splitlines())  # every sample household
    assert _uploads(server) == []


def test_row12_jobs_are_limited_and_cancelable(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    first = data.post("/v1/screenings", json={"path": "big/households.jsonl", "format": "csv"})
    assert first.status_code == 202, first.text
    jid = first.json()["id"]
    second = data.post("/v1/screenings", json={"path": "big/households.jsonl"})
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) > 0
    cancel = data.post(f"/v1/screenings/{jid}/cancel")
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "canceled"
    assert data.post(f"/v1/screenings/{jid}/cancel").status_code == 409
    third = data.post("/v1/screenings", content=(FIXTURES / "households.jsonl").read_bytes(),
                      headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    assert third.status_code == 202, third.text
    assert _job(server, third.json()["id"])["status"] == "done"
    assert _job(server, jid)["status"] == "canceled"


def test_row12_caches_are_bounded(tmp_path: Path) -> None:
    settings = Settings(f"sqlite:///{tmp_path / 'store.db'}", RULES, tmp_path)
    settings.limits.update(evaluators_cached=2, rulesets_cached=1)
    service = Service(settings)
    user, _ = service.store.add_user("数据", "data")
    household = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    relatives = (FIXTURES / "registries" / "relatives.csv").read_text(encoding="utf-8")
    for _ in range(5):  # every registry version makes a new evaluator
        service.upload_registry("relatives", relatives, user)
        service.decide(household, user, "zh")
    sizes = service.cache_sizes()
    assert sizes["evaluators"] == 2
    assert sizes["rulesets"] == 1


def test_row21_jobs_left_running_by_a_dead_server_are_failed_resumable(tmp_path: Path) -> None:
    _caseload(tmp_path / "big")
    first = start(tmp_path)
    token = first.add_user("数据", "data")
    r = first.client(token).post("/v1/screenings", json={"path": "big/households.jsonl", "date": "2019-08-01"})
    assert r.status_code == 202, r.text
    jid = r.json()["id"]
    job = _job(first, jid, ("running", "done", "failed"))
    assert job["status"] == "running", job
    first.process.kill()  # kill -9: no shutdown, no finally
    first.process.wait()
    first.stop()
    second = start(tmp_path)
    try:
        second.tokens["数据"] = token
        job = second.client(token).get(f"/v1/screenings/{jid}").json()
        assert job["status"] == "failed"
        assert job["resumable"] is True
        assert "stopped" in job["error"]
        resumed = second.client(token).post(f"/v1/screenings/{jid}/resume")
        assert resumed.status_code == 202, resumed.text
        done = _job(second, jid)
        assert done["status"] == "done", done
        assert done["summary"]["rows_in"] == HOUSEHOLDS
        assert done["summary"]["decided"] + done["summary"]["rejected"] == HOUSEHOLDS
        assert second.client(token).post(f"/v1/screenings/{jid}/resume").status_code == 409
    finally:
        second.stop()


def test_row21_a_dead_job_that_cannot_resume_is_failed_and_its_upload_deleted(tmp_path: Path) -> None:
    from api.jobs import JobRunner
    from api.store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    upload = tmp_path / "events.jsonl"
    upload.write_text("{}\n", encoding="utf-8")
    folder = tmp_path / "jobs" / "job-1"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"kind": "monitor", "uploads": [str(upload)]}), encoding="utf-8")
    (folder / ".running").write_text("", encoding="utf-8")  # its lock file, held by nobody now
    jid = store.add_job("monitor", str(folder), None)
    store.update_job(jid, status="running")
    queued = store.add_job("screen", "", None)  # queued, no folder yet: its process is gone too
    runner = JobRunner(store, tmp_path / "jobs", 2, str)
    assert runner.recover(lambda params: params.get("kind") == "screen") == [jid, queued]
    row = store.job(jid)
    assert row is not None
    assert (row["status"], json.loads(row["summary"])) == ("failed", {"resumable": False})
    assert not upload.exists()
    assert runner.cancel(jid) is False
