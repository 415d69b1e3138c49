"""The initial enrollment store: writers, references, verification logs, API keys, meta.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "writers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_writers_external_id")),
    )
    op.create_table(
        "signature_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("writer_id", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("model_tag", sa.String(length=128), nullable=False),
        sa.Column("preprocess_version", sa.String(length=32), nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        # Blobs last (see inkproof.store.schema.Reference).
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["writer_id"],
            ["writers.id"],
            name=op.f("fk_signature_references_writer_id_writers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature_references")),
        sa.UniqueConstraint("writer_id", "image_sha256", name=op.f("uq_signature_references_writer_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_signature_references_writer_id"), "signature_references", ["writer_id"], unique=False)
    op.create_index(op.f("ix_signature_references_model_tag"), "signature_references", ["model_tag"], unique=False)
    op.create_table(
        "verification_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_sha256", sa.String(length=64), nullable=False),
        sa.Column("claimed_external_id", sa.String(length=255), nullable=False),
        sa.Column("writer_id", sa.Integer(), nullable=True),
        sa.Column("reference_scores", sa.JSON(), nullable=False),
        sa.Column("fused_score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("reject_threshold", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewer_decision", sa.String(length=16), nullable=True),
        sa.Column("reviewer", sa.String(length=255), nullable=True),
        sa.Column("reviewed_at", _utc(), nullable=True),
        sa.Column("model_tag", sa.String(length=128), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("query_png", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["writer_id"],
            ["writers.id"],
            name=op.f("fk_verification_logs_writer_id_writers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_logs")),
    )
    op.create_index(op.f("ix_verification_logs_status"), "verification_logs", ["status"], unique=False)
    op.create_index(op.f("ix_verification_logs_writer_id"), "verification_logs", ["writer_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("key_prefix", sa.String(length=8), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_index(op.f("ix_api_keys_key_prefix"), "api_keys", ["key_prefix"], unique=False)
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_store_meta")),
    )


def downgrade() -> None:
    op.drop_table("store_meta")
    op.drop_index(op.f("ix_api_keys_key_prefix"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_verification_logs_writer_id"), table_name="verification_logs")
    op.drop_index(op.f("ix_verification_logs_status"), table_name="verification_logs")
    op.drop_table("verification_logs")
    op.drop_index(op.f("ix_signature_references_model_tag"), table_name="signature_references")
    op.drop_index(op.f("ix_signature_references_writer_id"), table_name="signature_references")
    op.drop_table("signature_references")
    op.drop_table("writers")
