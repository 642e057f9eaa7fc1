"""What makes the service fast without making it less exact: the ledger's group commit,
compact stored records with the explanation derived on read, and short-lived caches."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.cache import TTLCache
from api.ledger_writer import GroupCommitter
from api.service import Service, Settings
from api.store import LedgerRecord, Store, Submission
from engine import BadJson, json_items, json_value
from fixtures.server import FIXTURES

ROOT = FIXTURES.parent


def _household(name: str = "HM-2019-000101") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def test_group_commit_writes_concurrent_submissions_together_and_in_chain(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    groups: list[int] = []
    gate = threading.Event()

    def write(subs: Sequence[Submission]) -> list[list[LedgerRecord]]:
        gate.wait(5)  # hold the first group so the others queue up behind it
        groups.append(len(subs))
        return store.append_many(subs)

    writer = GroupCommitter(write)
    results: dict[int, list[LedgerRecord]] = {}

    def client(i: int) -> None:
        results[i] = writer.submit(Submission([("decision", None, {"n": i, "k": k}, None) for k in range(3)]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    writer.close()
    assert sum(groups) == 20
    assert len(groups) < 20  # at least one transaction carried several requests
    for i, records in results.items():  # a submission is never split and keeps its order
        assert [r.body for r in records] == [{"n": i, "k": k} for k in range(3)]
        assert [r.seq for r in records] == list(range(records[0].seq, records[0].seq + 3))
    assert store.verify() == (60, None)


def test_a_failing_submission_fails_alone(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    gate = threading.Event()

    def write(subs: Sequence[Submission]) -> list[list[LedgerRecord]]:
        gate.wait(5)
        if any(body.get("bad") for sub in subs for _, _, body, _ in sub.entries):
            raise ValueError("refused by the database")
        return store.append_many(subs)

    writer = GroupCommitter(write)
    outcome: dict[int, object] = {}

    def client(i: int) -> None:
        try:
            outcome[i] = writer.submit(Submission([("decision", None, {"n": i, "bad": i == 3}, None)]))
        except ValueError as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    writer.close()
    assert isinstance(outcome[3], ValueError)
    assert all(isinstance(v, list) for i, v in outcome.items() if i != 3)
    assert store.verify() == (7, None)


def test_append_many_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.append("decision", None, {"n": 0})
    with store.engine.begin() as conn:  # the database refuses the batch's second record
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON ledger WHEN NEW.body LIKE '%boom%' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    with pytest.raises(sa.exc.IntegrityError):
        store.append_many([Submission([("decision", None, {"n": 1}, None), ("decision", None, {"n": "boom"}, None)])])
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ledger")).scalar_one() == 1


@pytest.fixture
def service(tmp_path: Path) -> Any:
    s = Service(
        Settings(
            db_url=f"sqlite:///{tmp_path / 'store.db'}",
            rules_dir=ROOT / "rules",
            data_dir=tmp_path,
            relatives=FIXTURES / "registries" / "relatives.csv",
            filings=FIXTURES / "registries" / "filings.csv",
        )
    )
    yield s
    s.close()


def test_ledger_keeps_a_compact_record_and_the_explanation_is_derived_on_read(service: Service) -> None:
    officer, _ = service.store.add_user("officer", "officer", "city")
    posted = service.decide(_household(), officer, "zh", text=True)
    stored = service.store.record(posted["decision_id"])
    assert stored is not None
    assert "explanation" not in stored.body["decision"]
    assert stored.body["household"] == _household()
    service._explained.clear()  # read as a fresh process would
    read = service.get(posted["decision_id"], "zh", text=True)
    assert read["explanation"] == posted["explanation"]
    assert read["explanation"]["rules"]  # the rules, their values and messages are all there
    assert {k: v for k, v in read.items() if k != "approvals"} == {k: v for k, v in posted.items() if k != "approvals"}
    assert service.replay(posted["decision_id"])["same"] is True


def test_a_record_written_with_its_explanation_still_reads_and_replays(service: Service) -> None:
    officer, _ = service.store.add_user("officer", "officer", "city")
    rid = service.ruleset_for(service._decide(_household())[1].decision_date)
    ev, reg_ids = service.evaluator(rid)
    full = ev.decide(_household()).to_dict(explain=True)
    rec = service.store.append(
        "decision",
        officer.id,
        {"household": _household(), "decision": full, "ruleset_id": rid, "registry_versions": reg_ids},
    )
    read = service.get(rec.seq, "en")
    assert read["explanation"]["parameters"] == full["explanation"]["parameters"]
    assert service.replay(rec.seq)["same"] is True


def test_batch_is_stored_in_one_unit_with_rejects_reported(service: Service) -> None:
    officer, _ = service.store.add_user("officer", "officer", "city")
    bad = {**_household(), "household_id": None}
    fresh, answer = service.decide_batch([_household(), bad, _household("HM-2019-000102")], officer, "zh")
    results = answer["results"]
    assert fresh is True
    assert results[1]["rejected"] is True
    assert results[1]["index"] == 1
    seqs = [results[0]["decision_id"], results[2]["decision_id"]]
    assert seqs[1] == seqs[0] + 1
    assert service.store.verify()[1] is None


def test_ttl_cache_expires_and_clears() -> None:
    loads: list[int] = []
    cache: TTLCache[str, int] = TTLCache(ttl=0.05, size=2)

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("a", load) == 1
    assert cache.get("a", load) == 1
    time.sleep(0.06)
    assert cache.get("a", load) == 2
    cache.clear()
    assert cache.get("a", load) == 3
    cache.get("b", load)
    cache.get("c", load)  # size 2: "a" is dropped
    assert cache.get("a", load) == 6


def test_a_token_revoked_by_another_process_stops_working_within_the_ttl(service: Service) -> None:
    _, token = service.store.add_user("data", "data")
    assert service.user_by_token(token) is not None
    with service.store.engine.begin() as conn:  # as another server's revocation would
        conn.execute(sa.text("DELETE FROM users WHERE name = 'data'"))
    time.sleep(service.tokens.ttl + 0.05)
    assert service.user_by_token(token) is None


def test_the_write_ahead_log_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}")
    for i in range(50):
        store.append("decision", None, {"n": i, "pad": "x" * 4000})
    written = 50 * 4000
    assert db.stat().st_size < written  # no commit checkpointed on its own: the records are still in the log
    store.checkpoints(every=0.01)
    deadline = time.monotonic() + 10
    while db.stat().st_size < written and time.monotonic() < deadline:
        time.sleep(0.02)
    assert db.stat().st_size >= written  # the background thread copied the log into the database file
    store.close()
    wal = db.with_name("store.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the last checkpoint truncates the log
    assert Store(f"sqlite:///{db}").verify() == (50, None)


def test_responses_encode_as_the_standard_library_would(service: Service) -> None:
    import datetime as dt
    from decimal import Decimal

    from api.app import JSON

    officer, _ = service.store.add_user("officer", "officer", "city")
    content: dict[Any, Any] = {
        **service.decide(_household(), officer, "zh", text=True),
        "when": dt.datetime(2026, 11, 25, 8, 30, tzinfo=dt.UTC),
        "day": dt.date(2019, 8, 1),
        "amount": Decimal("1238.00"),
        1: "a non-text key",
    }
    for case in (content, {**content, "big": 10**30}):  # past 64 bits: the fallback encoder writes it
        expected = json.dumps(case, ensure_ascii=False, separators=(",", ":"), default=str)
        body = bytes(JSON(case).body)
        assert json.loads(body) == json.loads(expected)
        assert "户" in body.decode("utf-8")  # Chinese as UTF-8, not \\u escapes


def test_what_the_event_loop_submits_in_one_turn_is_written_in_one_group() -> None:
    groups: list[list[int]] = []

    def write(subs: Sequence[int]) -> list[str]:
        groups.append(list(subs))
        return [f"stored {n}" for n in subs]

    writer: GroupCommitter[int, str] = GroupCommitter(write)

    async def one_turn() -> list[str]:
        waiting = []
        for n in range(20):
            waiting.append(writer.from_loop(n))
            time.sleep(0.001)  # the writer thread is free to take whatever has been queued so far
        return list(await asyncio.gather(*waiting))

    try:
        assert asyncio.run(one_turn()) == [f"stored {n}" for n in range(20)]
    finally:
        writer.close()
    assert groups == [list(range(20))]


def test_the_answer_to_a_decision_shows_one_language_and_no_other(service: Service) -> None:
    user = service.store.user_by_token(service.store.add_user("o", "officer", level="city")[1])
    assert user is not None
    answer = service.decide(_household(), user, "en")
    messages = [r["message"] for r in answer["explanation"]["rules"]]
    assert answer["explanation"]["language"] == "en"
    assert all(isinstance(m, str) for m in messages)  # one language: text, not {zh, en}
    assert any(m.isascii() for m in messages)
    assert service.get(answer["decision_id"], "en", user=user)["explanation"] == answer["explanation"]


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        ' [ 1 , {"a": 1.5} ] ',
        '{"a": 1}',
        "[",
        "[1,",
        "[1 2]",
        "[1]x",
        "[1,]",
        "[" * 64 + "]" * 64,
        "[" * 65 + "]" * 65,
    ],
)
def test_a_batch_read_item_by_item_reads_as_one_value(text: str) -> None:
    """`json_items` (a batch read one household at a time) accepts and refuses what `json_value` does."""

    def read(f: Any) -> Any:
        try:
            return f(text)
        except BadJson:
            return BadJson

    assert read(json_items) == read(json_value)


def test_a_batch_read_item_by_item_keeps_exact_money() -> None:
    assert json_items('[{"income": 1100.10}, 2]') == [{"income": Decimal("1100.10")}, 2]
