"""Read-only views of tasks and their files for the console, the native API and the CLI.

These read the tables directly (tasks, task files, uploads) and never the stored spec: a task's
request format belongs to its dialect. Where a file is comes from its upload row (the target
without credentials); a file in roomcast's media library plays at ``/media/<key>`` for as long as
it is kept, whether or not the task has ended.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import load_only

from roomcast.store.tables import TaskFileRow, TaskRow, UploadRow

# Neither the spec nor the dialect's request: what the task reports is in its own columns.
_COLUMNS = load_only(
    TaskRow.error,
    TaskRow.node_id,
    TaskRow.id,
    TaskRow.task_id,
    TaskRow.sdk_app_id,
    TaskRow.kind,
    TaskRow.dialect,
    TaskRow.room_id,
    TaskRow.state,
    TaskRow.reason,
    TaskRow.robot_user_id,
    TaskRow.created_at,
    TaskRow.started_at,
    TaskRow.ended_at,
    raiseload=True,
)
LIBRARY_BUCKET = "library"  # the media library's folder in the local store (see services/recordings.py)
UNFINISHED = ("idle", "running", "stopping")


@dataclass(frozen=True)
class FileView:
    key: str
    state: str  # recording | uploading | stored | failed
    content_type: str
    track_type: str
    begin_at: datetime
    user_id: str | None = None
    stream: str | None = None
    end_at: datetime | None = None
    duration_ms: int | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    expires_at: datetime | None = None
    storage: str | None = None
    """Where the file went: ``library``, ``local:<folder>`` or ``<vendor>:<bucket>``."""
    object_key: str | None = None
    url: str | None = None
    """Where roomcast serves it (media library files), absolute."""
    backup: bool = False
    """Kept in the media library because its target kept failing (``error`` says why)."""
    error: str | None = None


@dataclass(frozen=True)
class TaskView:
    task_id: str
    sdk_app_id: int
    kind: str
    dialect: str
    room_id: str
    state: str
    reason: str | None
    robot_user_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None = None
    """Why it failed (e.g. the store's answer), when it did."""
    node_id: str | None = None
    """The node that runs (or last ran) it."""
    file_count: int = 0
    files: list[FileView] = field(default_factory=list)


def _task(row: TaskRow, file_count: int = 0, files: list[FileView] | None = None) -> TaskView:
    return TaskView(
        task_id=row.task_id,
        sdk_app_id=row.sdk_app_id,
        kind=row.kind,
        dialect=row.dialect,
        room_id=row.room_id,
        state=row.state,
        reason=row.reason,
        robot_user_id=row.robot_user_id,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        node_id=row.node_id,
        file_count=file_count,
        files=files or [],
    )


class TaskQueries:
    """Tasks as an operator or tenant sees them; ``sdk_app_ids`` limits to one tenant's apps."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, storage_dir: Path, public_url: str
    ) -> None:
        self._sessions = sessions
        self._library = (storage_dir / LIBRARY_BUCKET).resolve()
        self._public_url = public_url.rstrip("/")

    async def list(
        self,
        *,
        sdk_app_ids: Collection[int] | None = None,
        room_id: str | None = None,
        kind: str | None = None,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[TaskView]:
        """Newest first."""
        counts = select(TaskFileRow.task_pk, func.count().label("n")).group_by(TaskFileRow.task_pk).subquery()
        q = (
            select(TaskRow, func.coalesce(counts.c.n, 0))
            .options(_COLUMNS)
            .outerjoin(counts, counts.c.task_pk == TaskRow.id)
        )
        if sdk_app_ids is not None:
            q = q.where(TaskRow.sdk_app_id.in_(list(sdk_app_ids)))
        if room_id is not None:
            q = q.where(TaskRow.room_id == room_id)
        if kind is not None:
            q = q.where(TaskRow.kind == kind)
        if unfinished:
            q = q.where(TaskRow.state.in_(UNFINISHED))
        q = q.order_by(TaskRow.id.desc()).limit(limit)
        async with self._sessions() as s:
            return [_task(row, int(n)) for row, n in (await s.execute(q)).all()]

    async def get(self, task_id: str, *, sdk_app_ids: Collection[int] | None = None) -> TaskView | None:
        """One task with its files, or None (also for another tenant's task)."""
        async with self._sessions() as s:
            row = (
                await s.execute(select(TaskRow).options(_COLUMNS).where(TaskRow.task_id == task_id))
            ).scalar_one_or_none()
            if row is None or (sdk_app_ids is not None and row.sdk_app_id not in sdk_app_ids):
                return None
            files = (
                await s.execute(
                    select(TaskFileRow).where(TaskFileRow.task_pk == row.id).order_by(TaskFileRow.id)
                )
            ).scalars()
            uploads = (
                await s.execute(
                    select(UploadRow.label, UploadRow.target, UploadRow.object_key)
                    .where(UploadRow.owner == task_id)
                    .order_by(UploadRow.id)
                )
            ).all()
            where = {label: (target, key) for label, target, key in uploads if label}
            views = [self._file(f, where.get(f.key)) for f in files]
            return _task(row, len(views), views)

    async def recording_rooms(self, sdk_app_id: int) -> dict[str, int]:
        """Rooms of an app with unfinished recording tasks, and how many."""
        q = (
            select(TaskRow.room_id, func.count())
            .where(TaskRow.sdk_app_id == sdk_app_id, TaskRow.kind == "recording")
            .where(TaskRow.state.in_(UNFINISHED))
            .group_by(TaskRow.room_id)
        )
        async with self._sessions() as s:
            return {room: int(n) for room, n in (await s.execute(q)).all()}

    def library_path(self, key: str) -> Path | None:
        """The media library file for ``key`` if it exists (and stays inside the library)."""
        path = (self._library / key).resolve()
        if not key or ".." in Path(key).parts or not path.is_relative_to(self._library):
            return None
        return path if path.is_file() else None

    def _file(self, r: TaskFileRow, upload: tuple[str, str] | None) -> FileView:
        storage: str | None = None
        object_key: str | None = None
        url: str | None = None
        if upload is not None:
            target = json.loads(upload[0])
            object_key = upload[1]
            if target.get("kind") == "local":
                bucket = target.get("bucket") or ""
                storage = "library" if bucket == LIBRARY_BUCKET else f"local:{bucket}"
            else:
                storage = f"{target.get('vendor') or 's3'}:{target.get('bucket')}"
        if r.state == "stored" and storage in (None, "library"):
            key = object_key if storage == "library" and object_key else r.key
            if self.library_path(key) is not None:
                storage, object_key = "library", key
                url = f"{self._public_url}/media/{key}"
        return FileView(
            key=r.key,
            state=r.state,
            content_type=r.content_type,
            track_type=r.track_type,
            begin_at=r.begin_at,
            user_id=r.user_id,
            stream=r.stream,
            end_at=r.end_at,
            duration_ms=r.duration_ms,
            size=r.size,
            width=r.width,
            height=r.height,
            expires_at=r.expires_at,
            storage=storage,
            object_key=object_key,
            url=url or r.url,
            backup=bool(r.backup),
            error=r.error,
        )
