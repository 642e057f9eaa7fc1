"""The console's session cookie and CSRF tokens.

Signing in with a token gives a signed cookie (HMAC-SHA256): the user id, a fingerprint of the
token's hash and the session's end, which is never later than the token's own expiry. Each
request checks the signature, the end, and that the user's current token still has that hash
and is neither revoked nor expired, so revoking or renewing a token ends its sessions at once.
The key lives in the data folder (mode 0600), shared by every worker of one `jiuzhu serve`.

A form's CSRF token is an HMAC of the session cookie: forged requests from another site carry
neither (SameSite=Strict keeps the cookie off them as well). The sign-in form, which has no
session yet, is tied to a random pre-session cookie the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from api.store import Store, User, _user, hash_token, users, utc_naive

__all__ = ["COOKIE", "PRE_COOKIE", "Session", "Sessions", "signing_key"]

COOKIE = "jiuzhu_session"
PRE_COOKIE = "jiuzhu_signin"
LONGEST = dt.timedelta(hours=8)  # a working day; a token that expires sooner ends the session sooner
_KEY_FILE = "console-session.key"


def signing_key(folder: Path) -> bytes:
    """The key in ``folder``, made once (0600); every worker process reads the same file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it this very moment
            data = path.read_bytes()
            if len(data) == 32:
                return data
            time.sleep(0.01)
        raise RuntimeError(f"{_KEY_FILE} in the data folder is not a 32-byte key") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


@dataclass(frozen=True)
class Session:
    user: User
    cookie: str
    ends: int  # Unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Sessions:
    def __init__(self, store: Store, key: bytes) -> None:
        self.store = store
        self.key = key

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self.key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()[:24])

    def _active(self, where: sa.ColumnElement[bool]) -> tuple[User, str, dt.datetime | None] | None:
        """(user, token hash, token expiry) of an active user matching ``where``."""
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(
                    where,
                    users.c.revoked_at.is_(None),
                    sa.or_(users.c.token_expires_at.is_(None), users.c.token_expires_at > utc_naive()),
                )
            ).first()
        if row is None:
            return None
        return _user(row), str(row.token_hash), row.token_expires_at

    def sign_in(self, token: str) -> Session | None:
        """A new session for a valid token; None for an unknown, revoked or expired one."""
        found = self._active(users.c.token_hash == hash_token(token.strip()))
        if found is None:
            return None
        user, token_hash, expires = found
        now = int(time.time())
        ends = now + int(LONGEST.total_seconds())
        if expires is not None:  # stored as naive UTC
            ends = min(ends, int(expires.replace(tzinfo=dt.UTC).timestamp()))
        value = f"{user.id}.{token_hash[:32]}.{ends}"
        return Session(user, f"{value}.{self._mac('session', value)}", ends)

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, if its signature holds, it has not ended, and the
        user's token is still the one signed in with and still valid."""
        if not cookie or len(cookie) > 300:
            return None
        value, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session", value)):
            return None
        try:
            uid_text, fingerprint, ends_text = value.split(".")
            uid, ends = int(uid_text), int(ends_text)
        except ValueError:
            return None
        if ends <= time.time():
            return None
        found = self._active(users.c.id == uid)
        if found is None or not hmac.compare_digest(found[1][:32], fingerprint):
            return None
        return Session(found[0], cookie, ends)

    def csrf(self, cookie: str) -> str:
        """The CSRF token of the forms shown to the holder of ``cookie`` (a session or pre-session)."""
        return self._mac("csrf", cookie)

    def csrf_ok(self, cookie: str | None, sent: str | None) -> bool:
        return bool(cookie) and bool(sent) and hmac.compare_digest(self.csrf(str(cookie)), str(sent))
