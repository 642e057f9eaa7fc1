"""The decision index: what officers search and their inboxes read (household, township, decision
date, workflow status, the level that approves, who asked), one row per stored decision, one
per person in it and one per member's name.

The ledger stays the record; the index is derived from it and can always be rebuilt:
``catch_up`` adds whatever the ledger has and the index lacks (after a crash between the two
writes, or on a store created before the index existed). Workflow status is ``pending`` until
an approval record closes the decision as ``approved`` or ``rejected``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from api.store import Insert, LedgerRecord, Store, ledger, metadata

__all__ = ["STATUSES", "DecisionIndex", "Query", "decision_names", "decision_persons", "decisions_index", "name_key"]

STATUSES = ("pending", "approved", "rejected")
_CLOSED = {"approve": "approved", "reject": "rejected"}

decisions_index = sa.Table(
    "decision_index",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("household_id", sa.String(200)),
    sa.Column("township", sa.String(200)),
    sa.Column("decision_date", sa.Date),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("authority", sa.String(20)),
    sa.Column("requested_by", sa.Integer),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("closed_by_seq", sa.Integer),
)
decision_persons = sa.Table(
    "decision_persons",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
)
# members' names (optional in a household), keyed by name first like the persons
decision_names = sa.Table(
    "decision_names",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
)


def name_key(value: Any) -> str:
    """A name as searched: without any whitespace (an officer types "张 三" or "张三")."""
    return "".join(str(value or "").split())[:100]


def person_key(value: Any) -> str:
    return str(value or "").strip().upper()


def township_of(household: Mapping[str, Any]) -> str:
    return str(household.get("township") or "").strip()


@dataclass(frozen=True)
class Query:
    household_id: str | None = None
    person_id: str | None = None
    name: str | None = None
    township: str | None = None
    status: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    authority_at_most: tuple[str, ...] | None = None  # the levels an officer may approve
    not_requested_by: int | None = None


def _row(
    seq: int, actor: int | None, created_at: str, body: Mapping[str, Any], authority_field: str | None
) -> dict[str, Any]:
    household = body.get("household") or {}
    decision = body.get("decision") or {}
    day = decision.get("decision_date")
    authority = decision.get(authority_field) if authority_field else None
    return {
        "seq": seq,
        "household_id": str(decision.get("household_id") or household.get("household_id") or "").strip()[:200],
        "township": township_of(household)[:200],
        "decision_date": dt.date.fromisoformat(day) if isinstance(day, str) else None,
        "status": "pending",
        "authority": str(authority)[:20] if authority else None,
        "requested_by": actor,
        "recorded_at": created_at,
        "closed_by_seq": None,
    }


def _persons(seq: int, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    members = (body.get("household") or {}).get("members") or []
    ids = {person_key(m.get("person_id"))[:64] for m in members if isinstance(m, Mapping)}
    return [{"seq": seq, "person_id": p} for p in sorted(ids) if p]


def _names(seq: int, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    members = (body.get("household") or {}).get("members") or []
    names = {name_key(m.get("name")) for m in members if isinstance(m, Mapping)}
    return [{"seq": seq, "name": n} for n in sorted(names) if n]


class DecisionIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    def _insert_ignore(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)

    def writes(self, authority_field: str | None) -> Callable[[LedgerRecord], list[Insert]]:
        """The index rows of a decision, for the transaction that appends it to the ledger
        (plain inserts of a new seq: no conflict is possible)."""

        def write(rec: LedgerRecord) -> list[Insert]:
            row = _row(rec.seq, rec.actor_id, rec.created_at, rec.body, authority_field)
            persons = [(decision_persons, p) for p in _persons(rec.seq, rec.body)]
            return [(decisions_index, row), *persons, *((decision_names, n) for n in _names(rec.seq, rec.body))]

        return write

    def closes(self, decision_seq: int, action: str) -> Callable[[sa.Connection, LedgerRecord], None]:
        """What marks a decision approved or rejected, for the transaction that appends the approval."""

        def write(conn: sa.Connection, approval: LedgerRecord) -> None:
            conn.execute(
                decisions_index.update()
                .where(decisions_index.c.seq == decision_seq, decisions_index.c.status == "pending")
                .values(status=_CLOSED.get(action, action), closed_by_seq=approval.seq)
            )

        return write

    def catch_up(self, authority_of: Any) -> int:
        """Index the ledger's decisions and approvals the index lacks; ``authority_of(ruleset_id)``
        names the decision field that holds the approving level. Returns rows added."""
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(decisions_index.c.seq))).scalar_one_or_none() or 0
        added = 0
        while True:  # in pages, so that a long ledger never sits in memory at once
            query = sa.select(ledger).where(ledger.c.kind == "decision", ledger.c.seq > last)
            with self.engine.connect() as conn:
                found = [self.store._record(r) for r in conn.execute(query.order_by(ledger.c.seq).limit(500))]
            if not found:
                break
            rows = [
                _row(r.seq, r.actor_id, r.created_at, r.body, authority_of(int(r.body.get("ruleset_id") or 0)))
                for r in found
            ]
            with self.engine.begin() as conn:
                self._insert_ignore(conn, decisions_index, rows)
                self._insert_ignore(conn, decision_persons, [p for r in found for p in _persons(r.seq, r.body)])
                self._insert_ignore(conn, decision_names, [n for r in found for n in _names(r.seq, r.body)])
            added += len(found)
            last = found[-1].seq
        # approvals of decisions the index still shows pending (the ledger's (ref, kind) index)
        pending = sa.select(decisions_index.c.seq).where(decisions_index.c.status == "pending")
        query = sa.select(ledger).where(ledger.c.kind == "approval", ledger.c.ref.in_(pending)).order_by(ledger.c.seq)
        with self.engine.connect() as conn:
            approvals = [self.store._record(a) for a in conn.execute(query).all()]
        for a in approvals:
            with self.engine.begin() as conn:
                self.closes(int(a.body.get("decision_id") or 0), str(a.body.get("action")))(conn, a)
        return added

    # ------------------------------------------------------------ reading

    def _where(self, q: Query, with_status: bool = True) -> list[sa.ColumnElement[bool]]:
        c = decisions_index.c
        where: list[sa.ColumnElement[bool]] = []
        if q.household_id:
            where.append(c.household_id == q.household_id.strip())
        if q.person_id:
            owners = sa.select(decision_persons.c.seq).where(decision_persons.c.person_id == person_key(q.person_id))
            where.append(c.seq.in_(owners))
        if q.name and name_key(q.name):
            named = sa.select(decision_names.c.seq).where(decision_names.c.name == name_key(q.name))
            where.append(c.seq.in_(named))
        if q.township is not None:
            where.append(c.township == q.township)
        if with_status and q.status:
            where.append(c.status == q.status)
        if q.since:
            where.append(c.decision_date >= q.since)
        if q.until:
            where.append(c.decision_date <= q.until)
        if q.authority_at_most is not None:
            where.append(sa.or_(c.authority.is_(None), c.authority.in_(q.authority_at_most)))
        if q.not_requested_by is not None:
            where.append(sa.or_(c.requested_by.is_(None), c.requested_by != q.not_requested_by))
        return where

    def search(
        self, q: Query, page: int, per_page: int, oldest_first: bool = False
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total, rows of the page) for the query, newest first unless ``oldest_first``."""
        where = self._where(q)
        order = decisions_index.c.seq.asc() if oldest_first else decisions_index.c.seq.desc()
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(decisions_index).where(*where)).scalar_one()
            rows = conn.execute(
                sa.select(decisions_index).where(*where).order_by(order).limit(per_page).offset((page - 1) * per_page)
            ).all()
        return int(total), [dict(r._mapping) for r in rows]

    def counts(self, q: Query) -> dict[str, int]:
        """Decisions per workflow status under the query's other filters."""
        where = self._where(q, with_status=False)
        c = decisions_index.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.status, sa.func.count()).where(*where).group_by(c.status)).all()
        found = {str(s): int(n) for s, n in rows}
        return {s: found.get(s, 0) for s in (*STATUSES, *sorted(set(found) - set(STATUSES)))}

    def townships_of(self, seqs: Iterable[int]) -> dict[int, str]:
        wanted = list(seqs)
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions_index.c.seq, decisions_index.c.township).where(decisions_index.c.seq.in_(wanted))
            ).all()
        return {int(s): str(t or "") for s, t in rows}
