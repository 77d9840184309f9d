"""Statistics: usage and quality buckets, client telemetry, and indexes for per-user queries.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_index("ix_room_sessions_app", "room_sessions", ["app_key", "opened_at"])
    op.create_index("ix_user_sessions_app", "user_sessions", ["app_key", "joined_at"])
    op.create_index("ix_room_events_type", "room_events", ["app_key", "type", "at"])
    op.create_index("ix_track_samples_user", "track_samples", ["app_key", "room_id", "user_id", "at"])
    op.create_index(
        "ix_track_samples_subscriber", "track_samples", ["app_key", "room_id", "subscriber_id", "at"]
    )
    op.create_table(
        "usage_buckets",
        _id(),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("product", sa.String(24), nullable=False),
        sa.Column("span", sa.String(1), nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("tier", sa.String(24), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_usage_buckets_q", "usage_buckets", ["app_key", "product", "span", "start"])
    counts = [
        "video_samples",
        "video_frozen",
        "audio_samples",
        "audio_frozen",
        "rtt_samples",
        "rtt_high",
        "up_video_samples",
        "up_video_bad",
        "up_audio_samples",
        "up_audio_bad",
        "joins",
        "joins_ok",
        "joins_timed",
        "joins_fast",
        "peak_users",
        "peak_rooms",
    ]
    op.create_table(
        "quality_buckets",
        _id(),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("span", sa.String(1), nullable=False),
        sa.Column("start", TS, nullable=False),
        *[sa.Column(c, sa.Integer, nullable=False) for c in counts],
    )
    op.create_index("ix_quality_buckets_q", "quality_buckets", ["app_key", "span", "start"])
    values = [
        "capture_fps",
        "send_fps",
        "decode_fps",
        "audio_stall_ms",
        "video_stall_ms",
        "app_cpu",
        "sys_cpu",
        "rtt_ms",
    ]
    op.create_table(
        "client_samples",
        _id(),
        sa.Column("app_key", sa.String(64), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("peer_id", sa.String(128), nullable=False),
        sa.Column("at", TS, nullable=False),
        *[sa.Column(c, sa.Float, nullable=True) for c in values],
    )
    op.create_index("ix_client_samples_user", "client_samples", ["app_key", "room_id", "user_id", "at"])
    op.create_table(
        "client_infos",
        _id(),
        sa.Column("session_id", sa.String(64), nullable=False, unique=True),
        sa.Column("device_type", sa.String(64), nullable=True),
        sa.Column("os", sa.String(64), nullable=True),
        sa.Column("sdk_version", sa.String(64), nullable=True),
        sa.Column("network_type", sa.String(16), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("client_infos")
    op.drop_index("ix_client_samples_user", table_name="client_samples")
    op.drop_table("client_samples")
    op.drop_index("ix_quality_buckets_q", table_name="quality_buckets")
    op.drop_table("quality_buckets")
    op.drop_index("ix_usage_buckets_q", table_name="usage_buckets")
    op.drop_table("usage_buckets")
    op.drop_index("ix_track_samples_subscriber", table_name="track_samples")
    op.drop_index("ix_track_samples_user", table_name="track_samples")
    op.drop_index("ix_room_events_type", table_name="room_events")
    op.drop_index("ix_user_sessions_app", table_name="user_sessions")
    op.drop_index("ix_room_sessions_app", table_name="room_sessions")
