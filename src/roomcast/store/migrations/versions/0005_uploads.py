"""Upload queue: files waiting to reach object storage.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("ordered", sa.Boolean, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("target_secrets_sealed", sa.Text, nullable=True),
        sa.Column("local_path", sa.Text, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("keep_local", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("mtime_ns", sa.BigInteger, nullable=True),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("finalized_at", TS, nullable=True),
    )
    op.create_index("ix_uploads_due", "uploads", ["state", "next_attempt_at"])
    op.create_index("ix_uploads_owner", "uploads", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_uploads_owner", "uploads")
    op.drop_index("ix_uploads_due", "uploads")
    op.drop_table("uploads")
