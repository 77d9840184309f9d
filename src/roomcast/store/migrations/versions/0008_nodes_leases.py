"""Nodes with heartbeat leases; owner nodes on tasks, uploads, callbacks and sessions; tasks keep a
normalized spec, their storage target and the dialect's request apart; upload completion reports.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(64), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("public_url", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("lease_expires_at", TS, nullable=False),
        sa.Column("stopped_at", TS, nullable=True),
        sa.Column("reaped_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_nodes_state", "nodes", ["state", "lease_expires_at"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("request", sa.Text, nullable=True))
        batch.add_column(sa.Column("target", sa.Text, nullable=True))
        batch.add_column(sa.Column("target_secrets_sealed", sa.Text, nullable=True))
        batch.add_column(sa.Column("library_expire_s", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("run", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("error", sa.Text, nullable=True))
        batch.create_index("ix_tasks_node", ["node_id", "state"])
    # Tasks written before this revision stored the dialect's request as their spec: keep it as the
    # request; their spec is marked version 0, which a new node does not resume (it only finishes
    # their uploads).
    op.execute("UPDATE tasks SET request = spec, spec = '{\"v\": 0}'")
    with op.batch_alter_table("task_files") as batch:
        batch.add_column(sa.Column("url", sa.Text, nullable=True))
        batch.add_column(sa.Column("backup", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("error", sa.Text, nullable=True))
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("report", sa.String(16), nullable=True))
        batch.add_column(sa.Column("fallback", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("backed_up", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.create_index("ix_uploads_node", ["node_id", "state"])
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("task_id", sa.String(128), nullable=True))
    for table in ("room_sessions", "user_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
    # The reaper looks for open sessions of gone nodes every few seconds.
    op.create_index("ix_room_sessions_open", "room_sessions", ["closed_at", "node_id"])
    op.create_index("ix_user_sessions_open", "user_sessions", ["left_at", "node_id"])


def downgrade() -> None:
    op.drop_index("ix_user_sessions_open", "user_sessions")
    op.drop_index("ix_room_sessions_open", "room_sessions")
    for table in ("room_sessions", "user_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("node_id")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("task_id")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_index("ix_uploads_node")
        for c in ("backed_up", "fallback", "report", "node_id"):
            batch.drop_column(c)
    with op.batch_alter_table("task_files") as batch:
        for c in ("error", "backup", "url"):
            batch.drop_column(c)
    op.execute("UPDATE tasks SET spec = request WHERE request IS NOT NULL")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_node")
        for c in (
            "error",
            "run",
            "library_expire_s",
            "target_secrets_sealed",
            "target",
            "request",
            "node_id",
        ):
            batch.drop_column(c)
    op.drop_index("ix_nodes_state", "nodes")
    op.drop_table("nodes")
