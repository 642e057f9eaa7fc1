"""The database guards the ledger and the users: no fork of the chain (unique previous
hash), one approval or rejection per decision, Idempotency-Keys stored with their
decisions; users get a township, a token expiry and a revocation, and every existing user
is recorded in the ledger as it is now (later changes are appended by the service)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

# tokens issued before expiry existed expire like new ones
LEGACY_TOKEN_DAYS = 90


def upgrade() -> None:
    from api.store import StoreUnusable, append_record, user_state, users

    forked = (
        op.get_bind()
        .execute(sa.text("SELECT prev_hash FROM ledger GROUP BY prev_hash HAVING count(*) > 1 LIMIT 1"))
        .first()
    )
    if forked is not None:  # written before one writer at a time: the chain cannot be made unique
        raise StoreUnusable(
            f"the ledger is forked: two records follow the one hashed {forked[0][:16]}…; "
            "restore the store from a backup taken before the fork, then start again"
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("township", sa.String(100)))
        batch.add_column(sa.Column("token_expires_at", sa.DateTime))
        batch.add_column(sa.Column("revoked_at", sa.DateTime))
    op.create_index("ledger_prev_hash", "ledger", ["prev_hash"], unique=True)
    op.create_table(
        "approvals",
        sa.Column("decision_seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ledger_seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    conn = op.get_bind()
    # the first approval or rejection of each decision is the one that counts
    conn.execute(
        sa.text(
            "INSERT INTO approvals (decision_seq, ledger_seq, action) "
            "SELECT ref, MIN(seq), 'from-ledger' FROM ledger WHERE kind = 'approval' GROUP BY ref"
        )
    )
    expires = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) + dt.timedelta(days=LEGACY_TOKEN_DAYS)
    conn.execute(sa.text("UPDATE users SET token_expires_at = :t"), {"t": expires})
    for row in conn.execute(sa.select(users).order_by(users.c.id)).all():
        body = {"action": "adopt", "user_id": row.id, "user": user_state(row)}
        append_record(conn, "user", None, body, ref=int(row.id))


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("approvals")
    op.drop_index("ledger_prev_hash", "ledger")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("token_expires_at")
        batch.drop_column("township")
