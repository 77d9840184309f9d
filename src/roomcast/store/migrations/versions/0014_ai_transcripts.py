"""AI transcripts: the final sentences of transcription and conversation tasks.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ai_transcript_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_pk", sa.Integer, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("start_ms", sa.Integer, nullable=False),
        sa.Column("end_ms", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_ai_transcript_task", "ai_transcript_lines", ["task_pk", "seq"])


def downgrade() -> None:
    op.drop_index("ix_ai_transcript_task", table_name="ai_transcript_lines")
    op.drop_table("ai_transcript_lines")
