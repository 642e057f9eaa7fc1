"""Issue 10, item 4 and rows 4 and 13 under load: real `jiuzhu serve` processes sharing one
store, several client threads deciding, approving and rejecting at once; kill -9 during a
batch and a retry with the same Idempotency-Key."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.accounts import users_unlike_ledger
from api.store import Store
from fixtures.server import Server, start
from tests.api.test_store import PG_URL, _fresh_pg
from tests.conftest import FIXTURES

LOAD_SECONDS = 4.0
OFFICERS = ("市甲", "市乙", "市丙")


def _household(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _users(server: Server) -> None:
    server.add_user("数据", "data")
    server.add_user("数据二", "data")
    for name in OFFICERS:
        server.add_user(
            name, "officer", "--level", "city", "--certificate", f"JS-{name}", "--valid-until", "2099-12-31"
        )


def _mixed_load(servers: list[Server], tokens: dict[str, str], seed: int) -> dict[str, Any]:
    """Two threads decide, four approve or reject the newest decisions (racing each other
    across the servers) for LOAD_SECONDS; every response status is counted."""
    households = [_household(n) for n in ("HM-2019-000101", "HM-2019-000102", "HM-2019-000105", "HM-2019-000106")]
    decided: list[int] = []
    acknowledged: list[int] = []  # decisions whose approval or rejection got 201
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_SECONDS

    def client(token: str, i: int) -> httpx.Client:
        url = servers[i % len(servers)].url
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def decider(i: int) -> None:
        rng = random.Random(seed + i)
        with client(tokens["数据"], i) as c:
            while time.monotonic() < deadline:
                r = c.post("/v1/decisions", json=rng.choice(households))
                with lock:
                    statuses[f"decide {r.status_code}"] += 1
                    if r.status_code == 201:
                        decided.append(int(r.json()["decision_id"]))

    def approver(i: int) -> None:
        rng = random.Random(seed + 100 + i)
        with client(tokens[OFFICERS[i % len(OFFICERS)]], i) as c:
            while time.monotonic() < deadline:
                with lock:
                    newest = decided[-3:]
                if not newest:
                    time.sleep(0.01)
                    continue
                seq = rng.choice(newest)
                r = c.post(f"/v1/decisions/{seq}/{rng.choice(['approve', 'reject'])}")
                with lock:
                    statuses[f"approve {r.status_code}"] += 1
                    if r.status_code == 201:
                        acknowledged.append(seq)

    threads = [threading.Thread(target=decider, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=approver, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return {"statuses": statuses, "decided": decided, "acknowledged": acknowledged}


def _check(result: dict[str, Any], approvals_per_decision: dict[int, int]) -> None:
    statuses: Counter[str] = result["statuses"]
    assert not [s for s in statuses if int(s.split()[1]) >= 500], statuses
    assert set(statuses) <= {"decide 201", "approve 201", "approve 409"}, statuses
    assert statuses["decide 201"] > 0, statuses
    assert statuses["approve 201"] > 0, statuses
    assert statuses["approve 409"] > 0, statuses  # the officers did race for the same decisions
    assert max(approvals_per_decision.values()) == 1, "a decision was approved or rejected twice"
    assert sorted(approvals_per_decision) == sorted(result["acknowledged"])


def _sqlite_approvals(server: Server) -> dict[int, int]:
    con = sqlite3.connect(server.db.removeprefix("sqlite:///"))
    try:
        rows = con.execute("SELECT ref, count(*) FROM ledger WHERE kind = 'approval' GROUP BY ref").fetchall()
    finally:
        con.close()
    return {int(ref): int(n) for ref, n in rows}


def _verified(db: str) -> None:
    store = Store(db, create=False)
    try:
        checked, broken = store.verify()
        assert broken is None, f"ledger broken at record {broken}"
        assert checked > 0
        assert users_unlike_ledger(store) == []
    finally:
        store.engine.dispose()


def _two_servers(tmp_path: Path, db: str | None, check: Callable[[Server], dict[int, int]]) -> None:
    first = start(tmp_path / "a", db=db or f"sqlite:///{tmp_path / 'store.db'}")
    second = start(tmp_path / "b", db=first.db)
    try:
        _users(first)
        result = _mixed_load([first, second], first.tokens, seed=4)
    finally:
        log = first.stop() + second.stop()
    assert "Traceback" not in log, log[-3000:]
    _check(result, check(first))
    _verified(first.db)


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_row04_two_servers_on_one_sqlite_file(folders: Path) -> None:
    _two_servers(folders, None, _sqlite_approvals)


def test_row04_two_servers_on_postgresql(folders: Path) -> None:
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_PG_URL not set: no PostgreSQL server here")
    url = _fresh_pg(PG_URL)

    def approvals(_: Server) -> dict[int, int]:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT ref, count(*) FROM ledger WHERE kind = 'approval' GROUP BY ref")).all()
        engine.dispose()
        return {int(ref): int(n) for ref, n in rows}

    _two_servers(folders, url, approvals)


def _worker_processes(server: Server) -> int:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return len(children.read_text().split()) if children.exists() else -1


def test_row04_serve_with_two_workers(tmp_path: Path) -> None:
    server = start(tmp_path, "--workers", "2")
    try:
        workers = _worker_processes(server)
        assert workers == -1 or workers >= 2  # two workers (and multiprocessing's tracker), where /proc says
        _users(server)
        result = _mixed_load([server], server.tokens, seed=5)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log[-3000:]
    _check(result, _sqlite_approvals(server))
    _verified(server.db)


# ------------------------------------------------------------ row 13: Idempotency-Key


def _batch(n: int) -> list[dict[str, Any]]:
    names = ("HM-2019-000101", "HM-2019-000102", "HM-2019-000104", "HM-2019-000105")
    out = []
    for i in range(n):
        h = _household(names[i % len(names)])
        h["household_id"] = f"HM-BATCH-{i:04d}"
        out.append(h)
    return out


def _decisions(server: Server) -> int:
    con = sqlite3.connect(server.db.removeprefix("sqlite:///"))
    try:
        return int(con.execute("SELECT count(*) FROM ledger WHERE kind = 'decision'").fetchone()[0])
    finally:
        con.close()


def test_row13_a_retry_with_the_same_key_returns_the_same_decisions(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        _users(server)
        data = server.client(server.tokens["数据"])
        other = server.client(server.tokens["数据二"])
        one = _household("HM-2019-000101")
        first = data.post("/v1/decisions", json=one, headers={"Idempotency-Key": "a-1"})
        again = data.post("/v1/decisions", json=one, headers={"Idempotency-Key": "a-1"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["decision_id"] == first.json()["decision_id"]
        assert again.json()["dibao_amount"] == first.json()["dibao_amount"]
        changed = data.post("/v1/decisions", json=_household("HM-2019-000102"), headers={"Idempotency-Key": "a-1"})
        assert changed.status_code == 422
        assert changed.json()["errors"][0]["field"] == "Idempotency-Key"
        theirs = other.post("/v1/decisions", json=one, headers={"Idempotency-Key": "a-1"})
        assert theirs.status_code == 201  # keys belong to their user
        assert theirs.json()["decision_id"] != first.json()["decision_id"]
        bad = _household("HM-2019-000103")
        bad["members"][0]["disability"] = "sever"
        batch = [*_batch(3), bad]
        stored = data.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": "b-1"})
        retried = data.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": "b-1"})
        assert (stored.status_code, retried.status_code) == (201, 200)
        assert retried.json() == {**stored.json(), "results": retried.json()["results"]}
        ids = [r.get("decision_id") for r in stored.json()["results"]]
        assert [r.get("decision_id") for r in retried.json()["results"]] == ids
        assert retried.json()["results"][3]["rejected"] is True
        assert data.post("/v1/decisions/batch", json=batch[:2], headers={"Idempotency-Key": "b-1"}).status_code == 422
        assert data.post("/v1/decisions", json=one, headers={"Idempotency-Key": "x" * 201}).status_code == 422
        assert _decisions(server) == 2 + 3
    finally:
        server.stop()


def test_row13_kill_during_a_batch_then_retry_doubles_nothing(tmp_path: Path) -> None:
    server = start(tmp_path)
    token = server.add_user("数据", "data")
    batch = _batch(1000)
    began = time.monotonic()  # the same batch once, to know when the next one is half done here
    assert server.client(token).post("/v1/decisions/batch", json=batch).status_code == 201
    halfway = (time.monotonic() - began) / 2
    answer: list[httpx.Response | Exception] = []

    def send() -> None:
        try:
            with httpx.Client(headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "kill-1"}) as c:
                answer.append(c.post(server.url + "/v1/decisions/batch", json=batch, timeout=120))
        except httpx.HTTPError as exc:
            answer.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(halfway)  # the server is deciding or storing the batch
    server.process.send_signal(signal.SIGKILL)
    sender.join(timeout=60)
    server.stop()
    assert answer
    assert isinstance(answer[0], Exception), "the batch finished before the kill: nothing was tested"
    stored_before = _decisions(server) - 1000
    assert stored_before in (0, 1000)  # all or nothing
    again = start(tmp_path)
    try:
        r = again.client(token, **{"Idempotency-Key": "kill-1"}).post("/v1/decisions/batch", json=batch)
        assert r.status_code == (201 if stored_before == 0 else 200)
        ids = [x["decision_id"] for x in r.json()["results"]]
        assert len(set(ids)) == 1000
    finally:
        again.stop()
    assert _decisions(again) == 1000 + 1000
    _verified(again.db)
