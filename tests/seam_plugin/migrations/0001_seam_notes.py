"""The seam-notes test plugin: its note table and its user/session columns.

Revision ID: seam_notes_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "seam_notes_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("seam-notes",)
depends_on: str | Sequence[str] | None = None

#: What this revision creates: ``migrate`` stamps it on a database that already has them.
tables: tuple[str, ...] = ("seamNote",)
columns: tuple[str, ...] = ("user.favoriteColor", "session.deviceLabel")


def upgrade() -> None:
    op.create_table(
        "seamNote",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "userId", sa.Text(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False
        ),
    )
    op.add_column("user", sa.Column("favoriteColor", sa.Text(), nullable=True))
    op.add_column("session", sa.Column("deviceLabel", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("session", "deviceLabel")
    op.drop_column("user", "favoriteColor")
    op.drop_table("seamNote")
