"""Issue 10, the ledger and the users under attack (rows 4, 9, 20 and 22): the database
refuses forks and second approvals, an anchor finds a cut tail or a rewritten chain, a
mistyped --db is refused, tokens expire and can be revoked."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from api.store import AlreadyDecided, Store, record_hash
from fixtures.server import Server, jiuzhu, start
from tests.api.test_store import PG_URL, _fresh_pg
from tests.conftest import ROOT


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("JIUZHU_TEST_PG_URL not set: no PostgreSQL server here")
        s = Store(_fresh_pg(PG_URL))
    else:
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.engine.dispose()


def test_row04_database_refuses_a_fork_and_a_second_approval(store: Store) -> None:
    first = store.append("decision", None, {"household_id": "H-1"})
    store.append("decision", None, {"household_id": "H-2"})
    fork = {"kind": "decision", "created_at": "x", "body": "{}", "prev_hash": first.hash, "hash": "f" * 64}
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ledger (kind, created_at, body, prev_hash, hash) "
                "VALUES (:kind, :created_at, :body, :prev_hash, :hash)"
            ),
            fork,
        )
    store.add_approval(first.seq, None, {"decision_id": first.seq, "action": "approve"})
    with pytest.raises(AlreadyDecided):
        store.add_approval(first.seq, None, {"decision_id": first.seq, "action": "reject"})
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO approvals (decision_seq, ledger_seq, action) VALUES (:s, 99, 'reject')"),
            {"s": first.seq},
        )
    assert store.verify() == (3, None)
    assert len(store.records_for(first.seq, "approval")) == 1


def test_row04_a_ledger_forked_before_the_upgrade_is_refused_clearly(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "api" / "migrations"))
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # a store as the first release made it, forked by two writers
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for digest in ("a" * 64, "b" * 64):
            conn.execute(
                sa.text(
                    "INSERT INTO ledger (kind, created_at, body, prev_hash, hash) "
                    "VALUES ('decision', '2019-08-01', '{}', :prev, :hash)"
                ),
                {"prev": "0" * 64, "hash": digest},
            )
    engine.dispose()
    r = jiuzhu("audit", "verify", "--db", f"sqlite:///{db}")
    assert r.returncode == 2
    assert "the ledger is forked" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------ row 9: anchors


def _ledger_with_records(folder: Path, n: int) -> tuple[str, Path]:
    """A store with a user and n decisions, and an anchor key file."""
    db = f"sqlite:///{folder / 'store.db'}"
    store = Store(db)
    store.add_user("审计", "auditor")
    for i in range(n):
        store.append("decision", 1, {"household_id": f"H-{i}", "amount": f"{100 + i}.00"})
    store.engine.dispose()
    key = folder / "anchor.key"
    key.write_bytes(os.urandom(32))
    return db, key


def _anchor(db: str, key: Path, out: Path) -> None:
    r = jiuzhu("audit", "anchor", "--db", db, "--key-file", str(key), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["records"] > 0


def test_row09_tail_cut_detected_by_anchor(tmp_path: Path) -> None:
    db, key = _ledger_with_records(tmp_path, 6)
    anchor = tmp_path / "anchor.json"
    _anchor(db, key, anchor)
    ok = jiuzhu("audit", "verify", "--db", db, "--anchor", str(anchor), "--key-file", str(key))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    con = sqlite3.connect(db.removeprefix("sqlite:///"))
    con.execute("DROP TRIGGER ledger_no_delete")
    con.execute("DELETE FROM ledger WHERE seq > (SELECT max(seq) - 2 FROM ledger)")
    con.commit()
    con.close()
    plain = jiuzhu("audit", "verify", "--db", db)
    assert plain.returncode == 0  # the chain alone cannot tell: that is what the anchor is for
    cut = jiuzhu("audit", "verify", "--db", db, "--anchor", str(anchor), "--key-file", str(key))
    assert cut.returncode == 1
    assert "tail cut" in cut.stdout


def test_row09_rewritten_chain_detected_by_anchor(tmp_path: Path) -> None:
    db, key = _ledger_with_records(tmp_path, 6)
    anchor = tmp_path / "anchor.json"
    _anchor(db, key, anchor)
    con = sqlite3.connect(db.removeprefix("sqlite:///"))
    con.execute("DROP TRIGGER ledger_no_update")
    rows = con.execute("SELECT seq, kind, ref, actor_id, created_at, body FROM ledger ORDER BY seq").fetchall()
    prev = "0" * 64
    for seq, kind, ref, actor, created, body in rows:  # change one amount, recompute every hash after it
        body = body.replace('"102.00"', '"902.00"')
        digest = record_hash(prev, kind, ref, actor, created, body)
        con.execute("UPDATE ledger SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?", (body, prev, digest, seq))
        prev = digest
    con.commit()
    con.close()
    assert jiuzhu("audit", "verify", "--db", db).returncode == 0
    rewritten = jiuzhu("audit", "verify", "--db", db, "--anchor", str(anchor), "--key-file", str(key))
    assert rewritten.returncode == 1
    assert "rewritten" in rewritten.stdout
    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32))
    forged = jiuzhu("audit", "verify", "--db", db, "--anchor", str(anchor), "--key-file", str(other_key))
    assert forged.returncode == 1
    assert "signature" in forged.stdout


def test_row09_users_table_edits_detected(tmp_path: Path) -> None:
    db, _ = _ledger_with_records(tmp_path, 1)
    assert jiuzhu("users", "add", "数据", "--role", "data", "--db", db).returncode == 0
    assert jiuzhu("users", "revoke", "数据", "--db", db).returncode == 0
    assert jiuzhu("audit", "verify", "--db", db).returncode == 0
    con = sqlite3.connect(db.removeprefix("sqlite:///"))
    con.execute("UPDATE users SET role = 'admin', revoked_at = NULL WHERE name = '数据'")
    con.commit()
    con.close()
    r = jiuzhu("audit", "verify", "--db", db)
    assert r.returncode == 1
    assert "user 数据" in r.stdout
    assert "revoked_at, role" in r.stdout


# ------------------------------------------------------------ row 20: a mistyped --db


def test_row20_verify_and_users_add_refuse_a_missing_database(tmp_path: Path) -> None:
    nope = tmp_path / "var" / "nope.db"
    for args in (("audit", "verify"), ("users", "add", "x", "--role", "data"), ("users", "list")):
        r = jiuzhu(*args, "--db", f"sqlite:///{nope}")
        assert r.returncode == 2, (args, r.stdout)
        assert "no store at" in r.stderr
        assert "Traceback" not in r.stderr
        assert not nope.exists()
    made = jiuzhu("users", "add", "x", "--role", "data", "--db", f"sqlite:///{nope}", "--create")
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(nope.stat().st_mode) == 0o600
    assert jiuzhu("audit", "verify", "--db", f"sqlite:///{nope}").returncode == 0


# ------------------------------------------------------------ row 22: tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("tokens"))
    yield s
    s.stop()


def test_row22_tokens_expire_and_revoke(server: Server) -> None:
    short = server.add_user("短期", "auditor", "--expires-in-days", "0.00005")  # 4.3 seconds
    assert server.client(short).get("/v1/rulesets").status_code == 200
    revoked = server.add_user("撤销", "auditor")
    revoked_http = server.add_user("撤销2", "auditor")
    assert server.client(revoked).get("/v1/rulesets").status_code == 200
    r = jiuzhu("users", "revoke", "撤销", "--db", server.db)
    assert r.returncode == 0, r.stderr
    for _ in range(50):  # revoked from another process: the server's token cache holds at most a second
        if server.client(revoked).get("/v1/rulesets").status_code == 401:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the revoked token still works")
    admin = server.client(server.admin)
    assert server.client(revoked_http).post("/v1/users/撤销2/revoke").status_code == 403
    assert admin.post("/v1/users/撤销2/revoke").status_code == 200
    assert server.client(revoked_http).get("/v1/rulesets").status_code == 401
    assert admin.post("/v1/users/撤销2/revoke").status_code == 404
    for _ in range(300):  # the short token stops working once its expiry passes
        if server.client(short).get("/v1/rulesets").status_code == 401:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the token never expired")
    listed = {u["name"]: u for u in admin.get("/v1/users").json()}
    assert listed["短期"]["expired"] is True
    assert listed["撤销"]["revoked_at"]
    assert listed["撤销2"]["revoked_at"]
    assert listed["admin"]["expires_at"] > listed["短期"]["expires_at"]
    shown = jiuzhu("users", "list", "--db", server.db)
    assert shown.returncode == 0
    assert "撤销\tauditor\t\t\t" in shown.stdout
    assert "revoked" in shown.stdout
    everything = shown.stdout + json.dumps(listed, ensure_ascii=False)
    assert not any(token in everything for token in (short, revoked, revoked_http, server.admin))
    assert "token_hash" not in everything
    renewed = jiuzhu("users", "renew", "撤销", "--db", server.db)
    assert renewed.returncode == 0, renewed.stderr
    fresh = renewed.stdout.strip().splitlines()[-1]
    assert server.client(fresh).get("/v1/rulesets").status_code == 200
    assert server.client(revoked).get("/v1/rulesets").status_code == 401
    verify = jiuzhu("audit", "verify", "--db", server.db)
    assert verify.returncode == 0, verify.stdout


def test_row22_users_add_of_an_existing_name_is_a_clear_message(server: Server) -> None:
    server.add_user("重名", "data")
    again = jiuzhu("users", "add", "重名", "--role", "data", "--db", server.db)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    assert "IntegrityError" not in again.stderr + again.stdout


def test_row22_township_is_stored_for_officers(server: Server) -> None:
    server.add_user("海门镇", "officer", "--level", "township", "--township", "海门街道")
    listed = {u["name"]: u for u in server.client(server.admin).get("/v1/users").json()}
    assert listed["海门镇"]["township"] == "海门街道"
    wrong = jiuzhu("users", "add", "政策2", "--role", "policy", "--township", "海门街道", "--db", server.db)
    assert wrong.returncode == 2
