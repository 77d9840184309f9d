"""Tasks: long-running jobs attached to a room (recordings today), their states and files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class TaskState(StrEnum):
    IDLE = "idle"  # created, waiting for the streams it needs
    RUNNING = "running"  # producing output
    STOPPING = "stopping"  # finalizing files and uploads
    EXITED = "exited"  # finished (see reason)


class EndReason(StrEnum):
    STOPPED = "stopped"  # stopped through the API
    IDLE = "idle"  # no publisher for the idle timeout
    ROOM_DISMISSED = "room_dismissed"
    FAILED = "failed"
    SERVER_RESTART = "server_restart"  # the server restarted and could not resume the task


TERMINAL = frozenset({TaskState.EXITED})
ORDER = (TaskState.IDLE, TaskState.RUNNING, TaskState.STOPPING, TaskState.EXITED)
"""States only move forward along this order, whatever order the job's events arrive in."""


def later_states(state: TaskState) -> tuple[TaskState, ...]:
    """The states a task in ``state`` may move to (itself excluded)."""
    return ORDER[ORDER.index(state) + 1 :]


def earlier_states(state: TaskState) -> tuple[TaskState, ...]:
    """The states from which a task may move to ``state``."""
    return ORDER[: ORDER.index(state)]


@dataclass(frozen=True)
class TaskFile:
    key: str
    track_type: str  # audio | video | audio_video
    content_type: str
    begin_at: datetime
    state: str  # recording | uploading | stored | failed | expired
    user_id: str | None = None
    stream: str | None = None
    end_at: datetime | None = None
    duration_ms: int | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    local_path: str | None = None
    url: str | None = None  # where it plays, for files in the media library (or kept as a backup)
    expires_at: datetime | None = None  # media library: deleted after this
    backup: bool = False  # the target failed; the file is kept in the media library at ``url``
    error: str | None = None  # why it failed, or why it went to the backup store


@dataclass(frozen=True)
class Task:
    task_id: str
    sdk_app_id: int
    kind: str
    dialect: str
    room_id: str
    state: TaskState
    created_at: datetime
    spec: dict[str, Any] = field(repr=False)
    robot_user_id: str | None = None
    reason: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    control_expires_at: datetime | None = None
    request: dict[str, Any] = field(default_factory=dict, repr=False)
    """The dialect's own request (for its answers and callbacks only)."""
    node_id: str | None = None
    run: int = 0
    error: str | None = None
    library_expire_s: int = 0

    def controllable(self, now: datetime) -> bool:
        """Query/modify/stop calls are accepted until the control window closes."""
        return self.control_expires_at is None or now < self.control_expires_at


class TaskEventKind(StrEnum):
    """What a task reports to the outside (each dialect renders its own callback from these)."""

    RECORDER_STARTED = "recorder_started"
    RECORDER_STOPPED = "recorder_stopped"
    FILE_STARTED = "file_started"  # the recorder opened a file (an HLS playlist counts as one)
    UPLOAD_STARTED = "upload_started"
    PLAYLIST_STARTED = "playlist_started"  # the first playlist was produced and stored
    SEGMENT_STORED = "segment_stored"  # a playlist's first segment (slice) was stored
    FILE_STORED = "file_stored"  # a complete file is in the storage target
    FILE_FAILED = "file_failed"  # a file could not be stored (permanent store error)
    FILE_BACKED_UP = "file_backed_up"  # the target kept failing: the file is in the media library
    UPLOAD_STOPPED = "upload_stopped"  # every file of the task is stored (or failed)
    LIBRARY_COMMITTED = "library_committed"  # a file entered the media library (playable URL)
    LIBRARY_STOPPED = "library_stopped"
    TASK_MOVED = "task_moved"  # another node took the task over (its node was gone)


def event_id(task_id: str, kind: TaskEventKind, key: str = "", seq: int = 0) -> str:
    """The id of an event, derived from what it reports: a replay after a crash has the same id."""
    raw = f"{task_id}\x1f{kind.value}\x1f{key}\x1f{seq}".encode()
    return hashlib.sha256(raw).hexdigest()[:40]


@dataclass(frozen=True)
class TaskEvent:
    event_id: str  # stable: receivers de-duplicate on it
    task_id: str
    sdk_app_id: int
    room_id: str
    kind: TaskEventKind
    at: datetime
    user_id: str | None = None
    file: TaskFile | None = None
    url: str | None = None  # media library: where the file plays
    reason: str | None = None
    ok: bool = True
