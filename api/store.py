"""The decision store: users, rule versions, registry versions, jobs, and an append-only,
hash-chained ledger of decisions and approvals (SQLite file by default, PostgreSQL by URL).

Every ledger record carries the hash of the one before; `verify` recomputes the chain, so
an edited or deleted record is found. The database also refuses UPDATE and DELETE on the
ledger (triggers created by the migration), refuses two records with one predecessor (a
fork) and a second approval or rejection of one decision. Appends hold the database's write
lock from the read of the chain head to the commit (SQLite ``BEGIN IMMEDIATE``, a
PostgreSQL advisory transaction lock), so any number of processes share one chain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["AlreadyDecided", "LedgerRecord", "Store", "StoreMissing", "StoreUnusable", "User", "metadata"]

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
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("township", sa.String(100)),
    sa.Column("token_expires_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
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
    sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hash", sa.String(64), nullable=False),
)
# one row per decided decision: its primary key refuses a second approval or rejection
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("decision_seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ledger_seq", sa.Integer, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
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


def _loads(text: str) -> Any:
    """A stored body: orjson (several times faster on a decision's 8 KB), the standard
    library for what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class StoreUnusable(Exception):
    """The database named cannot serve as the store (the message says why)."""


class StoreMissing(StoreUnusable):
    """The database named does not exist (and creating it was not asked for)."""


class AlreadyDecided(Exception):
    """The decision already has an approval or a rejection."""


Insert = tuple[sa.Table, dict[str, Any]]  # a row for a table, written beside the records that derive it


@dataclass(frozen=True)
class Submission:
    """Records one request appends as a unit (all or none), and what derives from them, written
    in the same transaction once they have their sequence numbers (search index rows, an
    Idempotency-Key). Rows ``after`` returns are inserted with those of the whole group, one
    multi-row insert per table."""

    entries: Sequence[tuple[str, int | None, dict[str, Any], int | None]]
    after: Callable[[sa.Connection, list[LedgerRecord]], list[Insert] | None] | None = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; NORMAL sync is durable at each checkpoint.
    The driver's own transaction handling is off: ``_sqlite_begin`` says BEGIN itself."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    # no connection checkpoints as it commits: `Store.checkpoints` does it in the background
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    """A writer takes the write lock at BEGIN (IMMEDIATE), so it never reads a chain head that
    another process is about to move, and waits (busy timeout) instead of failing on upgrade."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("jiuzhu_write") else "BEGIN")


def _lock_chain(conn: sa.Connection) -> None:
    """On PostgreSQL one transaction at a time may extend the chain (released at commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('jiuzhu.ledger'))"))


def _write_chain(
    conn: sa.Connection, units: Sequence[Sequence[tuple[str, int | None, dict[str, Any], int | None]]]
) -> list[list[LedgerRecord]]:
    """Extend the chain with units of (kind, actor, body, ref), in order, inside the caller's
    transaction (which holds the chain lock): the hashes are computed first and the records
    written with one multi-row insert; under the lock the next sequence numbers are known."""
    texts = [
        [json.dumps(e[2], ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str) for e in unit]
        for unit in units
    ]
    head = conn.execute(_HEAD).first()
    seq, prev = (int(head.seq), str(head.hash)) if head is not None else (0, GENESIS)
    out: list[list[LedgerRecord]] = []
    rows: list[dict[str, Any]] = []
    for unit, unit_texts in zip(units, texts, strict=True):
        records: list[LedgerRecord] = []
        for (kind, actor, body, ref), body_text in zip(unit, unit_texts, strict=True):
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
            records.append(LedgerRecord(seq, kind, ref, actor, created, body, prev, digest))
            prev = digest
        out.append(records)
    if rows:
        conn.execute(_INSERT, rows)
    return out


def append_record(
    conn: sa.Connection, kind: str, actor: int | None, body: dict[str, Any], ref: int | None = None
) -> LedgerRecord:
    """Append one record inside the caller's write transaction."""
    _lock_chain(conn)
    return _write_chain(conn, [[(kind, actor, body, ref)]])[0][0]


def user_state(row: Any) -> dict[str, Any]:
    """What the ledger records of a user: every column that grants or limits access."""

    def text(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "name": row.name,
        "role": row.role,
        "level": row.level,
        "township": row.township,
        "certificate_no": row.certificate_no,
        "certificate_valid_until": text(row.certificate_valid_until),
        "token_hash": row.token_hash,
        "token_expires_at": text(row.token_expires_at),
        "revoked_at": text(row.revoked_at),
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record_hash(prev: str, kind: str, ref: int | None, actor: int | None, created_at: str, body_text: str) -> str:
    material = json.dumps([prev, kind, ref, actor, created_at, body_text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def _user(row: Any) -> User:
    return User(
        row.id, row.name, row.role, row.level, row.certificate_no, row.certificate_valid_until, township=row.township
    )


def utc_naive() -> dt.datetime:
    """Token times are stored as naive UTC to the second: equal on SQLite and PostgreSQL."""
    return _now().replace(tzinfo=None, microsecond=0)


def _create_private(path: Path) -> None:
    """Create an empty SQLite file readable by its owner only (its WAL files inherit the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class Store:
    """All persistence; one instance per process."""

    def __init__(self, url: str, create: bool = True) -> None:
        """Open (and migrate) the store at ``url``; with ``create=False`` a database that does
        not exist yet is refused with StoreMissing instead of being made empty."""
        self.url = url
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.exists():
                if not create:
                    raise StoreMissing(f"no store at {path} (check --db; --create makes a new one)")
                _create_private(path)
        self.engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        # every transaction that writes goes through this engine (BEGIN IMMEDIATE on SQLite)
        self.writer = self.engine.execution_options(jiuzhu_write=True)
        self._append_lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if not create and not url.startswith("sqlite"):
            try:
                present = sa.inspect(self.engine).has_table("ledger")
            except sa.exc.OperationalError as exc:
                raise StoreMissing(f"cannot open the store {shown}: {exc.orig}") from None
            if not present:
                raise StoreMissing(f"{shown} holds no store (check --db; --create makes a new one)")
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
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self.engine.connect() as conn:  # up to date: no write lock (workers start together)
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        with self.writer.begin() as conn:
            if conn.dialect.name == "postgresql":  # servers starting together migrate one at a time
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('jiuzhu.migrate'))"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self.writer.begin() as conn:
            yield conn

    @contextmanager
    def appending(self) -> Iterator[sa.Connection]:
        """A write transaction for ledger appends (``append_record``); one thread of this
        process at a time, so threads queue here rather than in the database's busy wait."""
        with self._append_lock, self.writer.begin() as conn:
            yield conn

    # ------------------------------------------------------------ users

    def add_user(
        self,
        name: str,
        role: str,
        level: str | None = None,
        certificate_no: str | None = None,
        valid_until: dt.date | None = None,
        township: str | None = None,
        expires_in: dt.timedelta = dt.timedelta(days=90),
    ) -> tuple[User, str]:
        """A new user and its token (shown once; only its hash is kept); recorded in the ledger."""
        token = secrets.token_urlsafe(32)
        with self.appending() as conn:
            result = conn.execute(
                users.insert().values(
                    name=name,
                    role=role,
                    level=level,
                    township=township,
                    certificate_no=certificate_no,
                    certificate_valid_until=valid_until,
                    token_hash=hash_token(token),
                    token_expires_at=utc_naive() + expires_in,
                    created_at=_now(),
                )
            )
            uid = int(result.inserted_primary_key[0])  # type: ignore[index]
            self.record_user(conn, uid, "add")
        return User(uid, name, role, level, certificate_no, valid_until, township=township), token

    def record_user(self, conn: sa.Connection, uid: int, action: str) -> None:
        """Append the user's row as it now is to the ledger (``accounts.users_unlike_ledger`` checks)."""
        row = conn.execute(sa.select(users).where(users.c.id == uid)).one()
        append_record(conn, "user", None, {"action": action, "user_id": uid, "user": user_state(row)}, ref=uid)

    def has_user(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None

    def user_by_token(self, token: str) -> User | None:
        """The user of a token that is known, not revoked and not expired."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(
                    users.c.token_hash == hash_token(token),
                    users.c.revoked_at.is_(None),
                    sa.or_(users.c.token_expires_at.is_(None), users.c.token_expires_at > utc_naive()),
                )
            ).first()
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
        with self._writing() as conn:
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
        with self._writing() as conn:
            return bool(conn.execute(rulesets.update().where(rulesets.c.id == rid).values(status=status)).rowcount)

    def change_ruleset_status(
        self, rid: int, status: str, check: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> bool:
        """Give version ``rid`` ``status``; False if it has it already. ``check`` sees every
        version as they will be and raises to undo the change. The versions are locked for
        the transaction (PostgreSQL; SQLite has one writer), so two servers cannot each
        withdraw one of the two versions that cover some dates."""
        with self._writing() as conn:
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
        with self._writing() as conn:
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
        also: Callable[[sa.Connection, LedgerRecord], None] | None = None,
    ) -> LedgerRecord:
        """Append one record to the chain (one writer at a time: each record hashes the one
        before); ``also(connection, record)`` writes what derives from it in the same transaction."""
        after = None if also is None else (lambda conn, records: also(conn, records[0]))
        ((record,),) = self.append_many([Submission([(kind, actor, body, ref)], after)])
        return record

    def append_many(self, submissions: Sequence[Submission]) -> list[list[LedgerRecord]]:
        """Append several submissions in ONE transaction, in order, each record hashing the one
        before; all are stored or none.

        The chain is computed first and written with one multi-row insert: under the chain
        lock the next sequence numbers are known, so a group of fifty costs one statement.
        Each submission's ``after(connection, records)`` then runs in the same transaction."""
        with self.appending() as conn:
            _lock_chain(conn)
            out = _write_chain(conn, [sub.entries for sub in submissions])
            rows: dict[sa.Table, list[dict[str, Any]]] = {}
            for sub, records in zip(submissions, out, strict=True):
                if sub.after is not None:
                    for table, row in sub.after(conn, records) or ():
                        rows.setdefault(table, []).append(row)
            for table, values in rows.items():
                conn.execute(table.insert(), values)
        return out

    def add_approval(
        self,
        decision_seq: int,
        actor: int | None,
        body: dict[str, Any],
        also: Callable[[sa.Connection, LedgerRecord], None] | None = None,
    ) -> LedgerRecord:
        """Append an approval or rejection; AlreadyDecided when the decision has one, even one
        made a moment ago by another process (the approvals table's primary key)."""

        def record_it(conn: sa.Connection, records: list[LedgerRecord]) -> None:
            conn.execute(
                approvals.insert().values(
                    decision_seq=decision_seq, ledger_seq=records[0].seq, action=str(body["action"])
                )
            )
            if also is not None:
                also(conn, records[0])

        try:
            ((rec,),) = self.append_many([Submission([("approval", actor, body, decision_seq)], record_it)])
        except sa.exc.IntegrityError:
            raise AlreadyDecided(decision_seq) from None
        return rec

    def record(self, seq: int) -> LedgerRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(ledger).where(ledger.c.seq == seq)).first()
        return self._record(row) if row else None

    def records_by_seq(self, seqs: Sequence[int]) -> dict[int, LedgerRecord]:
        """Several records in one query (a search page's rows), by sequence number."""
        if not seqs:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(ledger).where(ledger.c.seq.in_(list(seqs)))).all()
        return {int(r.seq): self._record(r) for r in rows}

    def _record(self, row: Any) -> LedgerRecord:
        return LedgerRecord(
            row.seq, row.kind, row.ref, row.actor_id, row.created_at, _loads(row.body), row.prev_hash, row.hash
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
        with self._writing() as conn:
            result = conn.execute(
                jobs.insert().values(
                    kind=kind, status="queued", done=0, total=0, folder=folder, created_by=actor, created_at=_now()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def update_job(self, jid: int, **values: Any) -> None:
        with self._writing() as conn:
            conn.execute(jobs.update().where(jobs.c.id == jid).values(**values))

    def job(self, jid: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == jid)).first()
        return dict(row._mapping) if row else None
