"""Idempotency-Key for storing decisions: a retry with the same key (same user) is answered
with the decisions the first request stored; the key is stored in the same transaction as
the decisions, so after a crash either both are there or neither."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from api.store import LedgerRecord, Store, metadata

__all__ = ["IdempotencyKey", "KeyTaken", "remember", "request_hash", "stored_result", "valid_key"]

MAX_KEY = 200

# a client's key and what its first request stored (created by migration 0002)
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class KeyTaken(Exception):
    """Another request stored its result under this key first."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key, the hash of its request, and the service's layout of the response
    (kept with the stored decisions so a retry is answered the same way)."""

    user_id: int
    key: str
    request_hash: str
    layout: Any = None


def valid_key(key: str) -> bool:
    """1 to 200 visible ASCII characters (a UUID, say)."""
    return 0 < len(key) <= MAX_KEY and all("!" <= c <= "~" for c in key)


def request_hash(route: str, body: Any) -> str:
    """The same request, whatever its whitespace or key order, hashes the same."""
    text = json.dumps([route, body], ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def remember(conn: sa.Connection, key: IdempotencyKey, records: list[LedgerRecord]) -> None:
    """Store ``key`` with the decisions it stored, in their transaction (an IntegrityError
    when the key is taken: the caller's whole transaction is refused)."""
    result = {"decisions": [r.seq for r in records], "layout": key.layout}
    conn.execute(
        idempotency_keys.insert().values(
            user_id=key.user_id,
            key=key.key,
            request_hash=key.request_hash,
            result=json.dumps(result, ensure_ascii=False),
            created_at=dt.datetime.now(dt.UTC),
        )
    )


def stored_result(store: Store, user_id: int, key: str) -> tuple[str, dict[str, Any]] | None:
    """(request hash, {"decisions": [seq, ...], "layout": ...}) stored under a key, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.result).where(
                idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
            )
        ).first()
    return (str(row.request_hash), json.loads(row.result)) if row else None
