"""SQLAlchemy tables. Secrets are stored sealed (see :mod:`roomcast.crypto`), never in clear."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    project_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_account", "account_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    secret_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    secret_key_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AppRow(Base):
    __tablename__ = "apps"
    __table_args__ = (Index("ix_apps_account", "account_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    app_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    sdk_app_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="enabled")
    app_key_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    auth_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    auth_expire_s: Mapped[int] = mapped_column(Integer, nullable=False, default=300)
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_key_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_events: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    state_updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    auth_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    callback_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReservationRow(Base):
    """A recording reservation: a resource id handed out before a recording starts (valid briefly)."""

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_app", "app_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_pk: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), nullable=False)
    reservation_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    task_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class RoomSessionRow(Base):
    """One life of a room: opened at the first join, closed when empty past its grace or dismissed."""

    __tablename__ = "room_sessions"
    __table_args__ = (
        Index("ix_room_sessions_room", "app_key", "room_id", "opened_at"),
        Index("ix_room_sessions_open", "closed_at", "node_id"),
        Index("ix_room_sessions_app", "app_key", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class UserSessionRow(Base):
    """One participant's stay in a room."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        Index("ix_user_sessions_room", "app_key", "room_id", "joined_at"),
        Index("ix_user_sessions_open", "left_at", "node_id"),
        Index("ix_user_sessions_app", "app_key", "joined_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    leave_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RoomEventRow(Base):
    """Publish/unpublish/mute/block/remove events, each once (by its event id)."""

    __tablename__ = "room_events"
    __table_args__ = (
        Index("ix_room_events_room", "app_key", "room_id", "at"),
        Index("ix_room_events_type", "app_key", "type", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class TrackSampleRow(Base):
    """A periodic quality sample of a published track (direction in) or a subscription (out)."""

    __tablename__ = "track_samples"
    __table_args__ = (
        Index("ix_track_samples_room", "app_key", "room_id", "at"),
        Index("ix_track_samples_user", "app_key", "room_id", "user_id", "at"),
        Index("ix_track_samples_subscriber", "app_key", "room_id", "subscriber_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    track_id: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    subscriber_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    interval_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    bitrate_bps: Mapped[float | None] = mapped_column(Float, nullable=True)
    packets_lost: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fraction_lost: Mapped[float | None] = mapped_column(Float, nullable=True)
    jitter_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    rtt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CallbackRow(Base):
    """An event callback waiting to be delivered (a transactional outbox row)."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    headers: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The node delivering it now (the lease is ``next_attempt_at``)."""
    task_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class UploadRow(Base):
    """A file on local disk waiting to reach (or having reached) an object store.

    ``target`` is the storage target without credentials (JSON); the credentials are sealed in
    ``target_secrets_sealed``. ``state`` is pending, uploading, done or failed. The local copy is
    removed only after the row is marked done (``finalized_at`` records that, and that the
    completion hooks ran). Rows of one ``owner`` with ``ordered`` set wait for every earlier
    (smaller id) row of that owner to be done: an HLS playlist never overtakes its segments.
    """

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_due", "state", "next_attempt_at"),
        Index("ix_uploads_owner", "owner", "id"),
        Index("ix_uploads_node", "node_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ordered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    label: Mapped[str | None] = mapped_column(Text, nullable=True)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    target_secrets_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    local_path: Mapped[str] = mapped_column(Text, nullable=False)
    object_key: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(String(128), nullable=False)
    keep_local: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The node that uploads it (its local file is on that node's disk)."""
    report: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """What its completion reports to the owner task (``file``, ``playlist``), in the same transaction."""
    fallback: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """May go to the backup store when transient errors outlast the retry limit."""
    backed_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class NodeRow(Base):
    """A roomcast process: its heartbeat lease tells the others whether its work is live."""

    __tablename__ = "nodes"
    __table_args__ = (Index("ix_nodes_state", "state", "lease_expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    public_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # alive | stopped | reaped
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    lease_expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reaped_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TaskRow(Base):
    """A long-running job (a recording today; relay, ingest, transcription later) and its state."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_state", "state"),
        Index("ix_tasks_room", "sdk_app_id", "room_id"),
        Index("ix_tasks_node", "node_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    app_pk: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), nullable=False)
    sdk_app_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    dialect: Mapped[str] = mapped_column(String(16), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    robot_user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    spec: Mapped[str] = mapped_column(Text, nullable=False)
    """The normalized spec (versioned JSON, no vendor fields)."""
    request: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The dialect's own request (secrets sealed), only for rendering its answers and callbacks."""
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Where files go, without credentials (JSON); None: the media library."""
    target_secrets_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    library_expire_s: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    run: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    """Incremented at each (re)start of the task's job: event ids of a run stay the same on replay."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    control_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class TaskFileRow(Base):
    """A file a task produced, and where it is (uploading, stored)."""

    __tablename__ = "task_files"
    __table_args__ = (Index("ix_task_files_task", "task_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_pk: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    local_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    stream: Mapped[str | None] = mapped_column(String(16), nullable=True)
    track_type: Mapped[str] = mapped_column(String(16), nullable=False)
    content_type: Mapped[str] = mapped_column(String(64), nullable=False)
    begin_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="recording")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    backup: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class RecordRuleRow(Base):
    """A recording rule: where an app's recordings go and how they are cut (one per location)."""

    __tablename__ = "record_rules"
    __table_args__ = (Index("ux_record_rules_location", "app_pk", "location", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    app_pk: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), nullable=False)
    location: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    """The storage target without credentials (JSON)."""
    settings: Mapped[str] = mapped_column(Text, nullable=False)
    """The dialect's format settings (JSON), opaque to the store."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AutoRecordRow(Base):
    """An app's automatic per-user recording switch and the rule it records with."""

    __tablename__ = "auto_record_modes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_pk: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    rule_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """None: off."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


# --- issue 14: stream ingest usage ---


class IngestUsageRow(Base):
    """One ended stream ingest task: how long it ran (billed, pauses included) and how its video
    went out. Written with the task's end, in the same transaction: a record of how each ingest
    ran. Billing minutes are in the usage ledger (product ``ingest``), not read from here."""

    __tablename__ = "ingest_usage"
    __table_args__ = (Index("ix_ingest_usage_app_ended", "sdk_app_id", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    sdk_app_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    video_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """copy (forwarded as it is) | transcode | None (no video)."""
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)


class IngestProgressRow(Base):
    """Where a running ingest task's file is (written every few seconds): a task taken over or
    restarted resumes there. Deleted with the task's end."""

    __tablename__ = "ingest_progress"

    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    position_s: Mapped[float] = mapped_column(Float, nullable=False)
    plays_done: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


# --- issue 17: whiteboard ---
class WhiteboardOpRow(Base):
    """One accepted whiteboard operation of a room, in the room's order (``seq``)."""

    __tablename__ = "whiteboard_ops"
    __table_args__ = (
        Index("ux_whiteboard_ops_seq", "app_key", "room_id", "seq", unique=True),
        Index("ux_whiteboard_ops_op_id", "app_key", "room_id", "op_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(32), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    op_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    at_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    """The normalized operation (JSON, see roomcast.domain.whiteboard)."""


# --- issue 16: AI transcripts ---
class TranscriptLineRow(Base):
    """A final sentence an AI robot recognized (transcription or conversation), kept with its task."""

    __tablename__ = "ai_transcript_lines"
    __table_args__ = (Index("ix_ai_transcript_task", "task_pk", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_pk: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    start_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    end_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


# --- issue 15: statistics, call quality, usage ---


class UsageBucketRow(Base):
    """Seconds of use per app, room, product and tier in one minute (span "m") or hour ("h").

    Written as use happens (each node adds to its own rows; several rows for one key are summed),
    so usage queries read buckets, never sessions or samples. ``room_id`` is "" for use that
    belongs to no room; spans "M" and "H" hold the app-wide sums (``room_id`` ""). Products:
    ``rtc`` (presence), ``record_single``, ``record_mixed``, ``transcode``, ``relay``, ``ingest``;
    see :mod:`roomcast.stats.ledger`.
    """

    __tablename__ = "usage_buckets"
    __table_args__ = (Index("ix_usage_buckets_q", "app_key", "product", "span", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    product: Mapped[str] = mapped_column(String(24), nullable=False)
    span: Mapped[str] = mapped_column(String(1), nullable=False)
    start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    tier: Mapped[str] = mapped_column(String(24), nullable=False)
    seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)


class QualityBucketRow(Base):
    """Counts of downstream quality samples per app and room in 10 s (span "t") or hour ("h")
    buckets: how many were frozen, had a high RTT; and join attempts (``joins``), how many entered
    (``joins_ok``), how many were timed from the signalling connection (``joins_timed``) and
    entered within 5 s (``joins_fast``). Rates are ratios of these counts. Spans "T" and "H"
    hold the app-wide sums (``room_id`` ""); the "H" rows also the most users and calls present
    at once on the node that wrote them (``peak_users``, ``peak_rooms``)."""

    __tablename__ = "quality_buckets"
    __table_args__ = (Index("ix_quality_buckets_q", "app_key", "span", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    span: Mapped[str] = mapped_column(String(1), nullable=False)
    start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    video_samples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    video_frozen: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    audio_samples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    audio_frozen: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rtt_samples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rtt_high: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    up_video_samples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    up_video_bad: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    up_audio_samples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    up_audio_bad: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    joins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    joins_ok: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    joins_timed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    joins_fast: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    peak_users: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    peak_rooms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ClientSampleRow(Base):
    """A getStats-style sample a client reported about itself (``peer_id`` "") or about what it
    receives from one peer. Only what a client can know; None when it did not say."""

    __tablename__ = "client_samples"
    __table_args__ = (Index("ix_client_samples_user", "app_key", "room_id", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    peer_id: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    capture_fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    send_fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    decode_fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    audio_stall_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    video_stall_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    app_cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    sys_cpu: Mapped[float | None] = mapped_column(Float, nullable=True)
    rtt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)


class ClientInfoRow(Base):
    """What a client said about itself during one user session (device, OS, SDK, network)."""

    __tablename__ = "client_infos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    device_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sdk_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    network_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


# --- issue 15: scale marks (who was present in which hour) ---
class ScaleMarkRow(Base):
    """One user (``kind`` "u", ``subject`` the user id) or one call (``kind`` "c", ``subject`` its
    opening time) present in an hour of an app's room, and how many sessions entered in that hour
    (``entries``). Written by the statistics recorder as sessions open, leave and at each flush,
    so distinct users, calls and entries per hour or day are counted without reading sessions."""

    __tablename__ = "scale_marks"
    __table_args__ = (
        UniqueConstraint("app_key", "start", "kind", "room_id", "subject", name="uq_scale_marks"),
        Index("ix_scale_marks_start", "start"),  # when marking began; retention
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_key: Mapped[str] = mapped_column(String(64), nullable=False)
    start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(1), nullable=False)
    room_id: Mapped[str] = mapped_column(String(128), nullable=False)
    subject: Mapped[str] = mapped_column(String(128), nullable=False)
    entries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
