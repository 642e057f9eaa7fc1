"""Members' names in the decision index, for case search by name (``api/search.py``).

The index is derived from the ledger: emptying it here makes the service's ``catch_up`` on
start rebuild it whole, with the names of the decisions already stored."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_decision_names"
down_revision = "0003_decision_search_index"


def upgrade() -> None:
    op.create_table(
        "decision_names",
        # keyed by name first: a search by name reads this B-tree directly
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.execute("DELETE FROM decision_persons")
    op.execute("DELETE FROM decision_index")


def downgrade() -> None:
    op.drop_table("decision_names")
