"""Per-writer claim scoring: the fitted classifier and the references flagged at enrollment.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "writer_models",
        sa.Column("writer_id", sa.Integer(), nullable=False),
        sa.Column("model_tag", sa.String(length=128), nullable=False),
        sa.Column("scoring", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("reference_ids", sa.JSON(), nullable=False),
        sa.Column("flagged_ids", sa.JSON(), nullable=False),
        sa.Column("consistency", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=True),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["writer_id"], ["writers.id"], name=op.f("fk_writer_models_writer_id_writers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("writer_id", name=op.f("pk_writer_models")),
    )


def downgrade() -> None:
    op.drop_table("writer_models")
