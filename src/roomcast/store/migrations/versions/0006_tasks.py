"""Tasks and the files they produce.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(128), nullable=False, unique=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sdk_app_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dialect", sa.String(16), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("robot_user_id", sa.String(128), nullable=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("control_expires_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.create_index("ix_tasks_room", "tasks", ["sdk_app_id", "room_id"])
    op.create_table(
        "task_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_pk", sa.Integer, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("local_path", sa.Text, nullable=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("stream", sa.String(16), nullable=True),
        sa.Column("track_type", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("begin_at", TS, nullable=False),
        sa.Column("end_at", TS, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_task_files_task", "task_files", ["task_pk"])


def downgrade() -> None:
    op.drop_index("ix_task_files_task", "task_files")
    op.drop_table("task_files")
    op.drop_index("ix_tasks_room", "tasks")
    op.drop_index("ix_tasks_state", "tasks")
    op.drop_table("tasks")
