"""Tasks: long-running jobs attached to a room (recordings today), their states and files."""

from __future__ import annotations

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


@dataclass(frozen=True)
class TaskFile:
    key: str
    track_type: str  # audio | video | audio_video
    content_type: str
    begin_at: datetime
    state: str  # recording | uploading | stored | failed
    user_id: str | None = None
    stream: str | None = None
    end_at: datetime | None = None
    duration_ms: int | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    local_path: str | None = None
    url: str | None = None  # where it plays, for files in the media library
    expires_at: datetime | None = None  # media library: deleted after this


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

    def controllable(self, now: datetime) -> bool:
        """Query/modify/stop calls are accepted until the control window closes."""
        return self.control_expires_at is None or now < self.control_expires_at


class TaskEventKind(StrEnum):
    """What a task reports to the outside (each dialect renders its own callback from these)."""

    RECORDER_STARTED = "recorder_started"
    RECORDER_STOPPED = "recorder_stopped"
    UPLOAD_STARTED = "upload_started"
    PLAYLIST_STARTED = "playlist_started"  # the first playlist was produced and stored
    SEGMENT_STORED = "segment_stored"  # a playlist's first segment (slice) was stored
    FILE_STORED = "file_stored"  # a complete file is in the storage target
    UPLOAD_STOPPED = "upload_stopped"  # every file of the task is stored (or failed)
    LIBRARY_COMMITTED = "library_committed"  # a file entered the media library (playable URL)
    LIBRARY_STOPPED = "library_stopped"
    FAILED = "failed"


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
