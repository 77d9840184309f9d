"""Stream ingest: one usage row per ended task, and the play position of running ones (issue 14).

Revision ID: 0012
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ingest_usage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(128), nullable=False, unique=True),
        sa.Column("sdk_app_id", sa.BigInteger, nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("video_mode", sa.String(16), nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
    )
    op.create_index("ix_ingest_usage_app_ended", "ingest_usage", ["sdk_app_id", "ended_at"])
    op.create_table(
        "ingest_progress",
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("position_s", sa.Float, nullable=False),
        sa.Column("plays_done", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_progress")
    op.drop_index("ix_ingest_usage_app_ended", table_name="ingest_usage")
    op.drop_table("ingest_usage")
