"""Better Auth's rateLimit table (used with BETTER_AUTH_RATE_LIMIT_STORAGE = "database").

Created whatever the storage setting, so the recorded revision always says which tables exist;
an unused empty table costs nothing.

Revision ID: 0002_rate_limit
Revises: 0001_core_tables
Create Date: 2025-06-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_rate_limit"
down_revision: str | Sequence[str] | None = "0001_core_tables"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables this revision creates: ``migrate`` stamps it on a database that already has them.
tables: tuple[str, ...] = ("rateLimit",)


def upgrade() -> None:
    op.create_table(
        "rateLimit",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("key", sa.Text(), nullable=False, unique=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("lastRequest", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rateLimit")
