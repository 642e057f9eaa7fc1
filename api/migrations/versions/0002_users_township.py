"""Officers' township (scoping): a nullable ``users.township``; skipped where a store already has it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_users_township"
down_revision = "0001"


def upgrade() -> None:
    if "township" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}:
        op.add_column("users", sa.Column("township", sa.String(100)))


def downgrade() -> None:
    op.drop_column("users", "township")
