"""What a logged claim needs to be reproduced and explained: scoring method, operating point,
threshold source, preprocessing version, and the reviewer's note.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("method", sa.String(length=32)),
    ("operating_point", sa.String(length=32)),
    ("threshold_source", sa.String(length=64)),
    ("preprocess_version", sa.String(length=32)),
    ("review_note", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("verification_logs") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verification_logs") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
