"""Room and user sessions, room events and track quality samples.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "room_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.String(64), nullable=True),
    )
    op.create_index("ix_room_sessions_room", "room_sessions", ["app_key", "room_id", "opened_at"])
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False, unique=True),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("left_at", TS, nullable=True),
        sa.Column("leave_reason", sa.String(64), nullable=True),
    )
    op.create_index("ix_user_sessions_room", "user_sessions", ["app_key", "room_id", "joined_at"])
    op.create_table(
        "room_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_room_events_room", "room_events", ["app_key", "room_id", "at"])
    op.create_table(
        "track_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("track_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("subscriber_id", sa.String(128), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("interval_s", sa.Float, nullable=False),
        sa.Column("bitrate_bps", sa.Float, nullable=True),
        sa.Column("packets_lost", sa.Integer, nullable=True),
        sa.Column("fraction_lost", sa.Float, nullable=True),
        sa.Column("jitter_ms", sa.Float, nullable=True),
        sa.Column("rtt_ms", sa.Float, nullable=True),
        sa.Column("fps", sa.Float, nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
    )
    op.create_index("ix_track_samples_room", "track_samples", ["app_key", "room_id", "at"])


def downgrade() -> None:
    for table in ("track_samples", "room_events", "user_sessions", "room_sessions"):
        op.drop_index(f"ix_{table}_room", table)
        op.drop_table(table)
