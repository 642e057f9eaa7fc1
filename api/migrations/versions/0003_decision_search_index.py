"""The decision index for search and approval inboxes: household, township, decision date,
workflow status, approving level and requester per stored decision, and its persons. Filled
from the ledger by the service on start (``api/search.py``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_decision_search_index"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "decision_index",
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
    op.create_index("decision_index_household", "decision_index", ["household_id"])
    op.create_index("decision_index_township_status", "decision_index", ["township", "status", "seq"])
    op.create_index("decision_index_status", "decision_index", ["status", "seq"])
    op.create_index("decision_index_date", "decision_index", ["decision_date"])
    op.create_table(
        "decision_persons",
        # one B-tree, keyed by person first: a search by person reads it directly
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    )


def downgrade() -> None:
    op.drop_table("decision_persons")
    op.drop_table("decision_index")
