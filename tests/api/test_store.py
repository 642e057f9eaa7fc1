"""The store on a real SQLite file and, where CI provides one, a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.masking import IdMaskingFilter, mask_id, mask_name, mask_text
from api.store import Store

PG_URL = os.environ.get("JIUZHU_TEST_PG_URL")
if not PG_URL:
    print(
        "notice: JIUZHU_TEST_PG_URL is not set; the PostgreSQL store tests are skipped (.ci/run sets it)",
        file=sys.stderr,
    )


def _fresh_pg(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


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


def test_users_tokens_are_hashed(store: Store) -> None:
    user, token = store.add_user("王镇", "officer", "township", "JS-1", dt.date(2030, 1, 1))
    assert store.user_by_token(token) == user
    assert store.user_by_token(token + "x") is None
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM users")).scalar_one()
    assert token not in stored
    assert user.certified_on(dt.date(2030, 1, 1))
    assert not user.certified_on(dt.date(2030, 1, 2))


def test_ledger_chain_and_append_only(store: Store) -> None:
    first = store.append("decision", None, {"household_id": "H-1", "amount": "480.00"})
    second = store.append("approval", None, {"decision_id": first.seq}, ref=first.seq)
    assert second.prev_hash == first.hash
    assert store.verify() == (2, None)
    assert [r.seq for r in store.records_for(first.seq, "approval")] == [second.seq]
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger"))
    assert store.verify() == (2, None)


def test_ruleset_in_force_by_date(store: Store) -> None:
    a = store.add_ruleset("v1", dt.date(1900, 1, 1), {"ruleset.yaml": "x"}, None)
    b = store.add_ruleset("v2", dt.date(2019, 9, 1), {"ruleset.yaml": "y"}, None)
    pick = store.ruleset_in_force
    assert [pick(dt.date(2019, 8, 31))["id"], pick(dt.date(2019, 9, 1))["id"]] == [a, b]  # type: ignore[index]
    store.set_ruleset_status(b, "withdrawn")
    assert pick(dt.date(2019, 9, 1))["id"] == a  # type: ignore[index]


def test_masking() -> None:
    assert mask_id("320684195001010014") == "3206**********0014"
    assert mask_name("张三") == "张*"
    assert mask_text("person 32068419500101001X moved") == "person 3206**********001X moved"
    record = __import__("logging").LogRecord("x", 20, __file__, 1, "decided %s", ("320684195001010014",), None)
    IdMaskingFilter().filter(record)
    assert record.getMessage() == "decided 3206**********0014"
