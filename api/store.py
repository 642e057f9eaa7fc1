"""The decision store: users, rule versions, registry versions, jobs, and an append-only,
hash-chained ledger of decisions and approvals (SQLite file by default, PostgreSQL by URL).

Every ledger record carries the hash of the one before; `verify` recomputes the chain, so
an edited or deleted record is found. The database also refuses UPDATE and DELETE on the
ledger (triggers created by the migration).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

__all__ = ["LedgerRecord", "Store", "User", "metadata"]

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("level", sa.String(20)),
    sa.Column("certificate_no", sa.String(50)),
    sa.Column("certificate_valid_until", sa.Date),
    sa.Column("township", sa.String(100)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
rulesets = sa.Table(
    "rulesets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version", sa.String(100), nullable=False),
    sa.Column("effective_from", sa.Date, nullable=False),
    sa.Column("files", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_by", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
registry_versions = sa.Table(
    "registry_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("keys", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Text, nullable=False),
    sa.Column("created_by", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("ref", sa.Integer),
    sa.Column("actor_id", sa.Integer),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_by", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

GENESIS = "0" * 64
_HEAD = sa.select(ledger.c.seq, ledger.c.hash).order_by(ledger.c.seq.desc()).limit(1)
_INSERT = ledger.insert()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    level: str | None
    certificate_no: str | None
    certificate_valid_until: dt.date | None
    township: str | None = None

    def certified_on(self, day: dt.date) -> bool:
        return (
            bool(self.certificate_no)
            and self.certificate_valid_until is not None
            and day <= self.certificate_valid_until
        )


@dataclass(frozen=True)
class LedgerRecord:
    seq: int
    kind: str
    ref: int | None
    actor_id: int | None
    created_at: str
    body: dict[str, Any]
    prev_hash: str
    hash: str


Also = Callable[[sa.Connection, LedgerRecord], None]  # writes what derives from a record, in its transaction
Entry = (
    tuple[str, int | None, dict[str, Any], int | None] | tuple[str, int | None, dict[str, Any], int | None, Also | None]
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; NORMAL sync is durable at each checkpoint."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # no connection checkpoints as it commits: `Store.checkpoints` does it in the background
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record_hash(prev: str, kind: str, ref: int | None, actor: int | None, created_at: str, body_text: str) -> str:
    material = json.dumps([prev, kind, ref, actor, created_at, body_text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def _user(row: Any) -> User:
    return User(row.id, row.name, row.role, row.level, row.certificate_no, row.certificate_valid_until, row.township)


class Store:
    """All persistence; one instance per process."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._append_lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self.migrate()

    def checkpoints(self, every: float = 1.0) -> None:
        """Copy SQLite's write-ahead log into the database file from a background thread, so
        no request waits for it (each connection's own automatic checkpoint is off)."""
        if self.engine.dialect.name != "sqlite" or self._checkpointer is not None:
            return

        def run() -> None:
            while not self._stop.wait(every):
                with contextlib.suppress(sa.exc.OperationalError), self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        self._checkpointer = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
        self._checkpointer.start()

    def close(self) -> None:
        """Stop the background checkpoint (one last one runs) and release connections."""
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
            with contextlib.suppress(sa.exc.OperationalError), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.engine.dispose()

    def migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # ------------------------------------------------------------ users

    def add_user(
        self,
        name: str,
        role: str,
        level: str | None = None,
        certificate_no: str | None = None,
        valid_until: dt.date | None = None,
    ) -> tuple[User, str]:
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            result = conn.execute(
                users.insert().values(
                    name=name,
                    role=role,
                    level=level,
                    certificate_no=certificate_no,
                    certificate_valid_until=valid_until,
                    token_hash=_hash_token(token),
                    created_at=_now(),
                )
            )
            uid = int(result.inserted_primary_key[0])  # type: ignore[index]
        return User(uid, name, role, level, certificate_no, valid_until), token

    def user_by_token(self, token: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.token_hash == _hash_token(token))).first()
        return _user(row) if row else None

    def user(self, uid: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == uid)).first()
        return _user(row) if row else None

    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    # ------------------------------------------------------------ rule versions

    def add_ruleset(self, version: str, effective_from: dt.date, files: dict[str, str], actor: int | None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                rulesets.insert().values(
                    version=version,
                    effective_from=effective_from,
                    files=json.dumps(files, ensure_ascii=False),
                    status="published",
                    created_by=actor,
                    created_at=_now(),
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def rulesets(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    rulesets.c.id,
                    rulesets.c.version,
                    rulesets.c.effective_from,
                    rulesets.c.status,
                    rulesets.c.created_at,
                ).order_by(rulesets.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def ruleset_files(self, rid: int) -> dict[str, str] | None:
        with self.engine.connect() as conn:
            text = conn.execute(sa.select(rulesets.c.files).where(rulesets.c.id == rid)).scalar_one_or_none()
        return json.loads(text) if text else None

    def set_ruleset_status(self, rid: int, status: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(rulesets.update().where(rulesets.c.id == rid).values(status=status)).rowcount)

    def change_ruleset_status(
        self, rid: int, status: str, check: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> bool:
        """Give version ``rid`` ``status``; False if it has it already. ``check`` sees every
        version as they will be and raises to undo the change. The versions are locked for
        the transaction (PostgreSQL; SQLite has one writer), so two servers cannot each
        withdraw one of the two versions that cover some dates."""
        with self.engine.begin() as conn:
            conn.execute(sa.select(rulesets.c.id).with_for_update())
            changed = conn.execute(
                rulesets.update().where(rulesets.c.id == rid, rulesets.c.status != status).values(status=status)
            ).rowcount
            if not changed:
                return False
            if check is not None:
                cols = (rulesets.c.id, rulesets.c.version, rulesets.c.effective_from, rulesets.c.status)
                check([dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(rulesets.c.id))])
        return True

    def ruleset_in_force(self, day: dt.date) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(rulesets.c.id, rulesets.c.version, rulesets.c.effective_from)
                .where(rulesets.c.status == "published", rulesets.c.effective_from <= day)
                .order_by(rulesets.c.effective_from.desc(), rulesets.c.id.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row else None

    # ------------------------------------------------------------ registries

    def add_registry_version(
        self, name: str, version: str, keys: list[str], rows: int, rejected: list[dict[str, Any]], actor: int | None
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                registry_versions.insert().values(
                    name=name,
                    version=version,
                    keys=json.dumps(sorted(keys)),
                    rows=rows,
                    rejected=json.dumps(rejected, ensure_ascii=False),
                    created_by=actor,
                    created_at=_now(),
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def latest_registry(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(registry_versions)
                .where(registry_versions.c.name == name)
                .order_by(registry_versions.c.id.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row else None

    def registry_version(self, vid: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(registry_versions).where(registry_versions.c.id == vid)).first()
        return dict(row._mapping) if row else None

    # ------------------------------------------------------------ the ledger

    def append(
        self,
        kind: str,
        actor: int | None,
        body: dict[str, Any],
        ref: int | None = None,
        also: Also | None = None,
    ) -> LedgerRecord:
        """Append one record to the chain (serialized: each record hashes the one before);
        ``also(connection, record)`` writes what derives from it in the same transaction."""
        ((record,),) = self.append_many([[(kind, actor, body, ref, also)]])
        return record

    def append_many(self, submissions: Sequence[Sequence[Entry]]) -> list[list[LedgerRecord]]:
        """Append several submissions of (kind, actor, body, ref[, also]) in ONE transaction,
        in order, each record hashing the one before; all are stored or none.

        The chain is computed first and written with one multi-row insert: under the writer's
        lock the next sequence numbers are known, so a group of fifty costs one statement.
        Each entry's ``also(connection, record)`` then writes what derives from it (the
        search index) in the same transaction."""
        entries = [[(*e, None)[:5] for e in sub] for sub in submissions]
        texts = [
            [json.dumps(e[2], ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str) for e in sub]
            for sub in entries
        ]
        out: list[list[LedgerRecord]] = []
        rows: list[dict[str, Any]] = []
        derived: list[tuple[Also, LedgerRecord]] = []
        with self._append_lock, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("LOCK TABLE ledger IN SHARE ROW EXCLUSIVE MODE"))
            head = conn.execute(_HEAD).first()
            seq, prev = (int(head.seq), str(head.hash)) if head is not None else (0, GENESIS)
            for sub, sub_texts in zip(entries, texts, strict=True):
                records: list[LedgerRecord] = []
                for (kind, actor, body, ref, also), body_text in zip(sub, sub_texts, strict=True):
                    seq += 1
                    created = _now().isoformat()
                    digest = record_hash(prev, kind, ref, actor, created, body_text)
                    rows.append(
                        {
                            "seq": seq,
                            "kind": kind,
                            "ref": ref,
                            "actor_id": actor,
                            "created_at": created,
                            "body": body_text,
                            "prev_hash": prev,
                            "hash": digest,
                        }
                    )
                    record = LedgerRecord(seq, kind, ref, actor, created, body, prev, digest)
                    records.append(record)
                    if also is not None:
                        derived.append((also, record))
                    prev = digest
                out.append(records)
            if rows:
                conn.execute(_INSERT, rows)
            for also, record in derived:
                also(conn, record)
        return out

    def record(self, seq: int) -> LedgerRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(ledger).where(ledger.c.seq == seq)).first()
        return self._record(row) if row else None

    def _record(self, row: Any) -> LedgerRecord:
        return LedgerRecord(
            row.seq, row.kind, row.ref, row.actor_id, row.created_at, json.loads(row.body), row.prev_hash, row.hash
        )

    def records_for(self, ref: int, kind: str) -> list[LedgerRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ledger).where(ledger.c.ref == ref, ledger.c.kind == kind).order_by(ledger.c.seq)
            ).all()
        return [self._record(r) for r in rows]

    def records(self, kind: str, since: str | None = None, until: str | None = None) -> list[LedgerRecord]:
        query = sa.select(ledger).where(ledger.c.kind == kind)
        if since:
            query = query.where(ledger.c.created_at >= since)
        if until:
            query = query.where(ledger.c.created_at < until)
        with self.engine.connect() as conn:
            return [self._record(r) for r in conn.execute(query.order_by(ledger.c.seq)).all()]

    def verify(self) -> tuple[int, int | None]:
        """(records checked, first bad seq or None): recompute every hash in order."""
        prev = GENESIS
        count = 0
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(ledger).order_by(ledger.c.seq)):
                count += 1
                expected = record_hash(prev, row.kind, row.ref, row.actor_id, row.created_at, row.body)
                if row.prev_hash != prev or row.hash != expected:
                    return count, int(row.seq)
                prev = row.hash
        return count, None

    # ------------------------------------------------------------ jobs

    def add_job(self, kind: str, folder: str, actor: int | None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                jobs.insert().values(
                    kind=kind, status="queued", done=0, total=0, folder=folder, created_by=actor, created_at=_now()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def update_job(self, jid: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == jid).values(**values))

    def job(self, jid: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == jid)).first()
        return dict(row._mapping) if row else None
