"""Anchors: the chain's head (record count, last record, its hash) signed with HMAC-SHA256
under a key kept outside the database. A later `audit verify --anchor` finds a cut tail
(the anchored record is gone or fewer records lead to it) and a rewritten chain (the
anchored record hashes differently), which recomputing the chain alone cannot."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api.store import Store, ledger

__all__ = ["AnchorError", "check_anchor", "make_anchor", "read_key"]

FORMAT = "jiuzhu-anchor-1"
MIN_KEY = 16


class AnchorError(Exception):
    """A key or anchor file that cannot be used."""


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise AnchorError(f"cannot read the key file {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY:
        raise AnchorError(f"the key file {path} must hold at least {MIN_KEY} bytes (e.g. head -c 32 /dev/urandom)")
    return key


def _sign(fields: dict[str, Any], key: bytes) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def make_anchor(store: Store, key: bytes) -> dict[str, Any]:
    """The signed head of the chain, as written to anchor.json."""
    with store.engine.connect() as conn:
        count = int(conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one())
        row = conn.execute(sa.select(ledger.c.seq, ledger.c.hash).order_by(ledger.c.seq.desc()).limit(1)).first()
    fields = {
        "format": FORMAT,
        "records": count,
        "seq": int(row.seq) if row else 0,
        "hash": str(row.hash) if row else "",
        "anchored_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return {**fields, "hmac": _sign(fields, key)}


def check_anchor(store: Store, anchor: dict[str, Any], key: bytes) -> str | None:
    """None when the chain still leads to the anchored head, else what is wrong."""
    fields = {k: v for k, v in anchor.items() if k != "hmac"}
    if fields.get("format") != FORMAT or not hmac.compare_digest(str(anchor.get("hmac", "")), _sign(fields, key)):
        return "the anchor's signature does not match this key (a wrong key, or the anchor was edited)"
    records, seq, digest = int(fields["records"]), int(fields["seq"]), str(fields["hash"])
    if records == 0:
        return None
    with store.engine.connect() as conn:
        now = conn.execute(sa.select(ledger.c.hash).where(ledger.c.seq == seq)).scalar_one_or_none()
        upto = int(conn.execute(sa.select(sa.func.count()).select_from(ledger).where(ledger.c.seq <= seq)).scalar_one())
    if now is None or upto < records:
        return f"ledger tail cut: the anchor signed {records} records up to record {seq}; {upto} remain up to it"
    if now != digest or upto != records:
        return f"ledger rewritten: record {seq} hashes to {now[:16]}…, the anchor signed {digest[:16]}… ({records} records)"
    return None
