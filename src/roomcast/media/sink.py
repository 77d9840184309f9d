"""Where finished files go (the sink) and the events a recording reports to the task layer."""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .outputs import FileInfo, FileStarted

__all__ = [
    "EndReason",
    "FileCompleted",
    "FileOpened",
    "LocalSink",
    "RecordingEnded",
    "RecordingEvent",
    "RecordingSink",
    "RecordingStarted",
]


class RecordingSink(Protocol):
    """The engine awaits each call, in order, from one task per recording.

    ``file_completed`` must return only once the file is durably stored (e.g. its upload is
    confirmed); the engine reports ``FileCompleted`` after that.
    """

    async def file_started(self, info: FileStarted) -> None: ...

    async def segment_ready(self, path: Path, key: str, content_type: str, seq: int) -> None: ...

    async def file_completed(self, info: FileInfo) -> None: ...


class LocalSink:
    """Keeps files where the engine wrote them (records what it was told, for inspection)."""

    def __init__(self) -> None:
        self.started: list[FileStarted] = []
        self.segments: list[tuple[Path, str, str, int]] = []
        self.completed: list[FileInfo] = []

    async def file_started(self, info: FileStarted) -> None:
        self.started.append(info)

    async def segment_ready(self, path: Path, key: str, content_type: str, seq: int) -> None:
        self.segments.append((path, key, content_type, seq))

    async def file_completed(self, info: FileInfo) -> None:
        self.completed.append(info)


class EndReason(enum.StrEnum):
    STOPPED = "stopped"  # asked to stop
    IDLE = "idle"  # no publisher for limits.idle_timeout
    NO_STREAM = "no_stream"  # nothing to record within limits.start_timeout
    MAX_DURATION = "max_duration"
    ROOM_CLOSED = "room_closed"
    ERROR = "error"


def _event_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, kw_only=True)
class RecordingEvent:
    task_id: str
    at: float = field(default_factory=time.time)
    event_id: str = field(default_factory=_event_id)


@dataclass(frozen=True, kw_only=True)
class RecordingStarted(RecordingEvent):
    """The first file of the recording was opened."""


@dataclass(frozen=True, kw_only=True)
class FileOpened(RecordingEvent):
    info: FileStarted


@dataclass(frozen=True, kw_only=True)
class FileCompleted(RecordingEvent):
    """A file is finalized and the sink confirmed it (uploaded)."""

    info: FileInfo


@dataclass(frozen=True, kw_only=True)
class RecordingEnded(RecordingEvent):
    reason: EndReason
    files: tuple[FileInfo, ...] = ()
    error: str | None = None
