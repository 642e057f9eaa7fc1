"""Users and their tokens beyond adding one: revocation, the list an admin reads, and the
check that the users table still matches the ledger's record of every change to it."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import sqlalchemy as sa

from api.store import Store, hash_token, ledger, user_state, users, utc_naive

__all__ = ["list_users", "renew_token", "revoke_user", "users_unlike_ledger"]


def revoke_user(store: Store, name: str) -> bool:
    """Revoke a user's token (a ledger record); False when no active user has that name."""
    with store.appending() as conn:
        uid = conn.execute(
            sa.select(users.c.id).where(users.c.name == name, users.c.revoked_at.is_(None))
        ).scalar_one_or_none()
        if uid is None:
            return False
        conn.execute(users.update().where(users.c.id == uid).values(revoked_at=utc_naive()))
        store.record_user(conn, int(uid), "revoke")
    return True


def renew_token(store: Store, name: str, expires_in: dt.timedelta) -> str | None:
    """A new token for a user (the old one stops working; a revoked user is active again),
    recorded in the ledger; None when there is no such user."""
    token = secrets.token_urlsafe(32)
    with store.appending() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar_one_or_none()
        if uid is None:
            return None
        values = {"token_hash": hash_token(token), "token_expires_at": utc_naive() + expires_in, "revoked_at": None}
        conn.execute(users.update().where(users.c.id == uid).values(**values))
        store.record_user(conn, int(uid), "renew")
    return token


def list_users(store: Store) -> list[dict[str, Any]]:
    """Every user without its token or token hash: role, level, township, expiry, revocation."""
    now = utc_naive()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.id)).all()

    def text(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return [
        {
            "name": r.name,
            "role": r.role,
            "level": r.level,
            "township": r.township,
            "certificate_no": r.certificate_no,
            "certificate_valid_until": text(r.certificate_valid_until),
            "expires_at": text(r.token_expires_at),
            "expired": r.token_expires_at is not None and r.token_expires_at <= now,
            "revoked_at": text(r.revoked_at),
        }
        for r in rows
    ]


def users_unlike_ledger(store: Store) -> list[str]:
    """Users whose row differs from their last ledger record, or has none: an edit of the
    users table made outside the service (a role raised, a token hash swapped, a user added)."""
    recorded: dict[int, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        query = sa.select(ledger.c.ref, ledger.c.body).where(ledger.c.kind == "user").order_by(ledger.c.seq)
        for row in conn.execute(query):
            recorded[int(row.ref)] = json.loads(row.body)["user"]
        rows = conn.execute(sa.select(users).order_by(users.c.id)).all()
    problems = []
    for row in rows:
        state = recorded.pop(int(row.id), None)
        now = user_state(row)
        if state is None:
            problems.append(f"user {row.name} (id {row.id}) is not in the ledger")
        elif state != now:
            changed = sorted(k for k, v in now.items() if state.get(k) != v)
            problems.append(f"user {row.name} (id {row.id}) differs from the ledger: {', '.join(changed)}")
    problems += [
        f"user {state['name']} (id {uid}) is in the ledger but not in the users table"
        for uid, state in recorded.items()
    ]
    return problems
