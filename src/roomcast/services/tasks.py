"""Task records: creation, state changes and produced files, all in the database.

The spec of a task is kept as JSON so a restarted server can resume it; any secret inside it
(storage keys) is sealed with the data directory's key before it is written.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.crypto import SecretBox
from roomcast.domain.errors import NotFound
from roomcast.domain.task import Task, TaskFile, TaskState
from roomcast.store.tables import AppRow, TaskFileRow, TaskRow, utcnow

_SEALED = "$sealed"


def new_task_id() -> str:
    """Opaque and unguessable, URL-safe (like the vendors' long base64-ish task ids)."""
    return secrets.token_urlsafe(48)


def _seal_tree(value: Any, box: SecretBox, secret_keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                {_SEALED: box.seal(v)}
                if k in secret_keys and isinstance(v, str)
                else _seal_tree(v, box, secret_keys)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_seal_tree(v, box, secret_keys) for v in value]
    return value


def _open_tree(value: Any, box: SecretBox) -> Any:
    if isinstance(value, dict):
        if set(value) == {_SEALED}:
            return box.open(value[_SEALED])
        return {k: _open_tree(v, box) for k, v in value.items()}
    if isinstance(value, list):
        return [_open_tree(v, box) for v in value]
    return value


def _file(r: TaskFileRow) -> TaskFile:
    return TaskFile(
        key=r.key,
        track_type=r.track_type,
        content_type=r.content_type,
        begin_at=r.begin_at,
        state=r.state,
        user_id=r.user_id,
        stream=r.stream,
        end_at=r.end_at,
        duration_ms=r.duration_ms,
        size=r.size,
        width=r.width,
        height=r.height,
        local_path=r.local_path,
        expires_at=r.expires_at,
    )


class TaskService:
    SECRET_KEYS = frozenset({"secret_key", "access_key", "token", "password"})

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box

    def _task(self, row: TaskRow) -> Task:
        return Task(
            task_id=row.task_id,
            sdk_app_id=row.sdk_app_id,
            kind=row.kind,
            dialect=row.dialect,
            room_id=row.room_id,
            state=TaskState(row.state),
            created_at=row.created_at,
            spec=_open_tree(json.loads(row.spec), self._box),
            robot_user_id=row.robot_user_id,
            reason=row.reason,
            started_at=row.started_at,
            ended_at=row.ended_at,
            control_expires_at=row.control_expires_at,
        )

    async def create(
        self,
        *,
        sdk_app_id: int,
        kind: str,
        dialect: str,
        room_id: str,
        spec: dict[str, Any],
        robot_user_id: str | None = None,
        control_expires_at: datetime | None = None,
    ) -> Task:
        async with self._sessions.begin() as s:
            app_pk = (
                await s.execute(select(AppRow.id).where(AppRow.sdk_app_id == sdk_app_id))
            ).scalar_one_or_none()
            if app_pk is None:
                raise NotFound(f"app {sdk_app_id} does not exist", subject="app")
            now = utcnow()
            row = TaskRow(
                task_id=new_task_id(),
                app_pk=app_pk,
                sdk_app_id=sdk_app_id,
                kind=kind,
                dialect=dialect,
                room_id=room_id,
                robot_user_id=robot_user_id,
                spec=json.dumps(_seal_tree(spec, self._box, self.SECRET_KEYS)),
                state=TaskState.IDLE.value,
                created_at=now,
                updated_at=now,
                control_expires_at=control_expires_at,
            )
            s.add(row)
            await s.flush()
            return self._task(row)

    async def _row(self, s: AsyncSession, sdk_app_id: int, task_id: str) -> TaskRow:
        row = (
            await s.execute(
                select(TaskRow).where(TaskRow.task_id == task_id, TaskRow.sdk_app_id == sdk_app_id)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("task does not exist", subject="task")
        return row

    async def get(self, sdk_app_id: int, task_id: str) -> Task:
        async with self._sessions() as s:
            return self._task(await self._row(s, sdk_app_id, task_id))

    async def unfinished(self, kind: str | None = None) -> list[Task]:
        async with self._sessions() as s:
            q = select(TaskRow).where(TaskRow.state != TaskState.EXITED.value)
            if kind is not None:
                q = q.where(TaskRow.kind == kind)
            return [self._task(r) for r in (await s.execute(q.order_by(TaskRow.id))).scalars()]

    async def active_in_room(self, sdk_app_id: int, room_id: str) -> list[Task]:
        async with self._sessions() as s:
            rows = await s.execute(
                select(TaskRow).where(
                    TaskRow.sdk_app_id == sdk_app_id,
                    TaskRow.room_id == room_id,
                    TaskRow.state != TaskState.EXITED.value,
                )
            )
            return [self._task(r) for r in rows.scalars()]

    async def set_state(self, task_id: str, state: TaskState, reason: str | None = None) -> Task:
        async with self._sessions.begin() as s:
            row = (await s.execute(select(TaskRow).where(TaskRow.task_id == task_id))).scalar_one()
            now = utcnow()
            if row.state == TaskState.EXITED.value:
                return self._task(row)  # terminal: late updates are ignored
            row.state = state.value
            row.updated_at = now
            if state is TaskState.RUNNING and row.started_at is None:
                row.started_at = now
            if state is TaskState.EXITED:
                row.ended_at = now
            if reason is not None and row.reason is None:
                row.reason = reason
            return self._task(row)

    async def update_spec(self, task_id: str, spec: dict[str, Any]) -> None:
        async with self._sessions.begin() as s:
            row = (await s.execute(select(TaskRow).where(TaskRow.task_id == task_id))).scalar_one()
            row.spec = json.dumps(_seal_tree(spec, self._box, self.SECRET_KEYS))
            row.updated_at = utcnow()

    async def upsert_file(self, task_id: str, f: TaskFile) -> None:
        async with self._sessions.begin() as s:
            task = (await s.execute(select(TaskRow).where(TaskRow.task_id == task_id))).scalar_one()
            row = (
                await s.execute(
                    select(TaskFileRow).where(TaskFileRow.task_pk == task.id, TaskFileRow.key == f.key)
                )
            ).scalar_one_or_none()
            if row is None:
                row = TaskFileRow(task_pk=task.id, key=f.key, created_at=utcnow())
                s.add(row)
            row.user_id = f.user_id
            row.local_path = f.local_path
            row.expires_at = f.expires_at
            row.stream = f.stream
            row.track_type = f.track_type
            row.content_type = f.content_type
            row.begin_at = f.begin_at
            row.end_at = f.end_at
            row.duration_ms = f.duration_ms
            row.size = f.size
            row.width = f.width
            row.height = f.height
            row.state = f.state

    async def files(self, task_id: str) -> list[TaskFile]:
        async with self._sessions() as s:
            rows = await s.execute(
                select(TaskFileRow)
                .join(TaskRow, TaskFileRow.task_pk == TaskRow.id)
                .where(TaskRow.task_id == task_id)
                .order_by(TaskFileRow.id)
            )
            return [_file(r) for r in rows.scalars()]

    async def expired_files(self, now: datetime) -> list[tuple[str, TaskFile]]:
        """Stored files whose expiry has passed, with their task ids."""
        async with self._sessions() as s:
            rows = await s.execute(
                select(TaskRow.task_id, TaskFileRow)
                .join(TaskRow, TaskFileRow.task_pk == TaskRow.id)
                .where(TaskFileRow.expires_at.is_not(None), TaskFileRow.expires_at <= now)
                .where(TaskFileRow.state == "stored")
            )
            return [(task_id, _file(r)) for task_id, r in rows.all()]
