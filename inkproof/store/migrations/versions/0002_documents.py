"""Documents and the signatures found on their pages, searchable by writer similarity.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("detector", sa.String(length=255), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("file_sha256", name=op.f("uq_documents_file_sha256")),
        sa.UniqueConstraint("name", name=op.f("uq_documents_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "document_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("x0", sa.Integer(), nullable=False),
        sa.Column("y0", sa.Integer(), nullable=False),
        sa.Column("x1", sa.Integer(), nullable=False),
        sa.Column("y1", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("crop_sha256", sa.String(length=64), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("model_tag", sa.String(length=128), nullable=False),
        sa.Column("preprocess_version", sa.String(length=32), nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=False),
        sa.Column("writer_id", sa.Integer(), nullable=True),
        sa.Column("writer_score", sa.Float(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        # Blobs last (see inkproof.store.schema.Reference).
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("crop_png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_signatures_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["writer_id"],
            ["writers.id"],
            name=op.f("fk_document_signatures_writer_id_writers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_signatures")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_document_signatures_document_id"), "document_signatures", ["document_id"], unique=False)
    op.create_index(op.f("ix_document_signatures_model_tag"), "document_signatures", ["model_tag"], unique=False)
    op.create_index(op.f("ix_document_signatures_writer_id"), "document_signatures", ["writer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_document_signatures_writer_id"), table_name="document_signatures")
    op.drop_index(op.f("ix_document_signatures_model_tag"), table_name="document_signatures")
    op.drop_index(op.f("ix_document_signatures_document_id"), table_name="document_signatures")
    op.drop_table("document_signatures")
    op.drop_table("documents")
