"""Better Auth's core tables: user, session, account, verification.

The same DDL as Better Auth's own migrations and ``metadata.create_all``: camelCase columns,
``session_userId_idx``, ``account_userId_idx``, ``verification_identifier_idx``; timestamps are
``timestamptz`` on PostgreSQL and ``date`` (holding ISO text) on SQLite.

Revision ID: 0001_core_tables
Revises:
Create Date: 2025-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flask_better_auth.models import UTCDateTime

revision: str = "0001_core_tables"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables this revision creates: ``migrate`` stamps it on a database that already has them.
tables: tuple[str, ...] = ("user", "session", "account", "verification")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("createdAt", UTCDateTime(), nullable=False),
        sa.Column("updatedAt", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "user",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False, unique=True),
        sa.Column("emailVerified", sa.Boolean(), nullable=False),
        sa.Column("image", sa.Text(), nullable=True),
        *_timestamps(),
    )
    op.create_table(
        "session",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("expiresAt", UTCDateTime(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False, unique=True),
        *_timestamps(),
        sa.Column("ipAddress", sa.Text(), nullable=True),
        sa.Column("userAgent", sa.Text(), nullable=True),
        sa.Column(
            "userId", sa.Text(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False
        ),
    )
    op.create_index("session_userId_idx", "session", ["userId"])
    op.create_table(
        "account",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("accountId", sa.Text(), nullable=False),
        sa.Column("providerId", sa.Text(), nullable=False),
        sa.Column(
            "userId", sa.Text(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("accessToken", sa.Text(), nullable=True),
        sa.Column("refreshToken", sa.Text(), nullable=True),
        sa.Column("idToken", sa.Text(), nullable=True),
        sa.Column("accessTokenExpiresAt", UTCDateTime(), nullable=True),
        sa.Column("refreshTokenExpiresAt", UTCDateTime(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        *_timestamps(),
    )
    op.create_index("account_userId_idx", "account", ["userId"])
    op.create_table(
        "verification",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expiresAt", UTCDateTime(), nullable=False),
        *_timestamps(),
    )
    op.create_index("verification_identifier_idx", "verification", ["identifier"])


def downgrade() -> None:
    op.drop_index("verification_identifier_idx", table_name="verification")
    op.drop_table("verification")
    op.drop_index("account_userId_idx", table_name="account")
    op.drop_table("account")
    op.drop_index("session_userId_idx", table_name="session")
    op.drop_table("session")
    op.drop_table("user")
