"""Idempotency keys on logged claims: a claim submitted again with its key (a resumed batch job)
returns the logged row instead of logging twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column and a unique index: on SQLite neither rebuilds the table (batch mode
    # copies it only for changes SQLite cannot ALTER), so a large log migrates in place.
    with op.batch_alter_table("verification_logs") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch.create_index(op.f("ix_verification_logs_idempotency_key"), ["idempotency_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("verification_logs") as batch:
        batch.drop_index(op.f("ix_verification_logs_idempotency_key"))
        batch.drop_column("idempotency_key")
