"""Task records: creation, state changes, produced files and ownership by node, in the database.

A task row holds the normalized spec (versioned JSON, no vendor fields, no secrets), its storage
target (credentials sealed with the data directory's key) and, apart, the dialect's own request,
which only that dialect reads to render its answers and callbacks. States only move forward
(:data:`roomcast.domain.task.ORDER`); each change is a compare-and-set, so late or reordered job
events can never take a task back.

Methods that take a session (``*_in``) work inside the caller's transaction, so a state change and
the outbox row that reports it commit together.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.crypto import SecretBox
from roomcast.domain.errors import NotFound
from roomcast.domain.task import Task, TaskFile, TaskState, earlier_states
from roomcast.storage.target import StorageTarget
from roomcast.store.ownership import orphaned
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


def task_file(r: TaskFileRow) -> TaskFile:
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
        url=r.url,
        expires_at=r.expires_at,
        backup=bool(r.backup),
        error=r.error,
    )


class TaskNodes(Protocol):
    """How task services reach the other nodes of a cluster (``cluster.node.Cluster``)."""

    async def room_node(self, app_key: str, room_id: str) -> str | None:
        """The other node that serves the room; None if it is served here (placed here if it was
        not placed yet)."""
        ...

    async def call(self, node_id: str, method: str, params: dict[str, Any]) -> Any:
        """Run one of the RPC methods a task service registered (its ``calls()``) on ``node_id``."""
        ...


class TaskService:
    SECRET_KEYS = frozenset({"secret_key", "access_key", "token", "password"})

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self.sessions = sessions
        self._box = box

    def task(self, row: TaskRow) -> Task:
        return Task(
            task_id=row.task_id,
            sdk_app_id=row.sdk_app_id,
            kind=row.kind,
            dialect=row.dialect,
            room_id=row.room_id,
            state=TaskState(row.state),
            created_at=row.created_at,
            spec=json.loads(row.spec),
            robot_user_id=row.robot_user_id,
            reason=row.reason,
            started_at=row.started_at,
            ended_at=row.ended_at,
            control_expires_at=row.control_expires_at,
            request=_open_tree(json.loads(row.request), self._box) if row.request else {},
            node_id=row.node_id,
            run=row.run,
            error=row.error,
            library_expire_s=row.library_expire_s,
        )

    async def create(
        self,
        *,
        sdk_app_id: int,
        kind: str,
        dialect: str,
        room_id: str,
        spec: dict[str, Any],
        request: dict[str, Any],
        target: StorageTarget | None,
        node_id: str | None,
        robot_user_id: str | None = None,
        control_expires_at: datetime | None = None,
        library_expire_s: int = 0,
    ) -> Task:
        async with self.sessions.begin() as s:
            app_pk = (
                await s.execute(select(AppRow.id).where(AppRow.sdk_app_id == sdk_app_id))
            ).scalar_one_or_none()
            if app_pk is None:
                raise NotFound(f"app {sdk_app_id} does not exist", subject="app")
            now = utcnow()
            secrets_ = target.secrets() if target is not None else {}
            row = TaskRow(
                task_id=new_task_id(),
                app_pk=app_pk,
                sdk_app_id=sdk_app_id,
                kind=kind,
                dialect=dialect,
                room_id=room_id,
                robot_user_id=robot_user_id,
                spec=json.dumps(spec),
                request=json.dumps(_seal_tree(request, self._box, self.SECRET_KEYS)),
                target=target.public_json() if target is not None else None,
                target_secrets_sealed=self._box.seal(json.dumps(secrets_)) if secrets_ else None,
                library_expire_s=library_expire_s,
                node_id=node_id,
                run=0,
                state=TaskState.IDLE.value,
                created_at=now,
                updated_at=now,
                control_expires_at=control_expires_at,
            )
            s.add(row)
            await s.flush()
            return self.task(row)

    async def target(self, task_id: str) -> StorageTarget | None:
        """The task's storage target with its credentials (None: the media library)."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(TaskRow.target, TaskRow.target_secrets_sealed).where(TaskRow.task_id == task_id)
                )
            ).one_or_none()
        if row is None or row.target is None:
            return None
        secrets_ = json.loads(self._box.open(row.target_secrets_sealed)) if row.target_secrets_sealed else {}
        return StorageTarget.from_parts(json.loads(row.target), secrets_)

    @staticmethod
    async def row_in(s: AsyncSession, task_id: str) -> TaskRow | None:
        return (await s.execute(select(TaskRow).where(TaskRow.task_id == task_id))).scalar_one_or_none()

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
        async with self.sessions() as s:
            return self.task(await self._row(s, sdk_app_id, task_id))

    async def by_id(self, task_id: str) -> Task | None:
        async with self.sessions() as s:
            row = await self.row_in(s, task_id)
            return self.task(row) if row is not None else None

    async def unfinished(self, kind: str | None = None, node_id: str | None = None) -> list[Task]:
        async with self.sessions() as s:
            q = select(TaskRow).where(TaskRow.state != TaskState.EXITED.value)
            if kind is not None:
                q = q.where(TaskRow.kind == kind)
            if node_id is not None:
                q = q.where(TaskRow.node_id == node_id)
            return [self.task(r) for r in (await s.execute(q.order_by(TaskRow.id))).scalars()]

    async def active_in_room(self, sdk_app_id: int, room_id: str) -> list[Task]:
        async with self.sessions() as s:
            rows = await s.execute(
                select(TaskRow).where(
                    TaskRow.sdk_app_id == sdk_app_id,
                    TaskRow.room_id == room_id,
                    TaskRow.state != TaskState.EXITED.value,
                )
            )
            return [self.task(r) for r in rows.scalars()]

    async def claim_orphaned(self, kind: str, node_id: str) -> list[tuple[Task, str | None]]:
        """Move unfinished tasks of nodes that are gone to ``node_id``; returns them with their
        previous owner. Each move is a compare-and-set: one node wins each task."""
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(TaskRow.task_id, TaskRow.node_id)
                    .where(TaskRow.kind == kind, TaskRow.state != TaskState.EXITED.value)
                    .where(orphaned(TaskRow.node_id, node_id))
                    .order_by(TaskRow.id)
                )
            ).all()
        out: list[tuple[Task, str | None]] = []
        for task_id, old in rows:
            async with self.sessions.begin() as s:
                owner = TaskRow.node_id.is_(None) if old is None else TaskRow.node_id == old
                res = await s.execute(
                    update(TaskRow)
                    .where(TaskRow.task_id == task_id, owner)
                    .values(node_id=node_id, updated_at=utcnow())
                )
                if int(getattr(res, "rowcount", 0) or 0) != 1:
                    continue
                row = await self.row_in(s, task_id)
                if row is not None:
                    out.append((self.task(row), old))
        return out

    async def move(self, task_id: str, from_node: str, to_node: str) -> bool:
        """Give an unfinished task of ``from_node`` to ``to_node`` (compare-and-set)."""
        async with self.sessions.begin() as s:
            res = await s.execute(
                update(TaskRow)
                .where(
                    TaskRow.task_id == task_id,
                    TaskRow.node_id == from_node,
                    TaskRow.state != TaskState.EXITED.value,
                )
                .values(node_id=to_node, updated_at=utcnow())
            )
            return int(getattr(res, "rowcount", 0) or 0) == 1

    async def next_run(self, task_id: str) -> int:
        """Count a new start of the task's job; returns its run number."""
        async with self.sessions.begin() as s:
            await s.execute(update(TaskRow).where(TaskRow.task_id == task_id).values(run=TaskRow.run + 1))
            return int((await s.execute(select(TaskRow.run).where(TaskRow.task_id == task_id))).scalar_one())

    async def transition_in(
        self,
        s: AsyncSession,
        task_id: str,
        state: TaskState,
        *,
        reason: str | None = None,
        error: str | None = None,
    ) -> TaskRow | None:
        """Move the task forward to ``state`` in the caller's transaction.

        Returns the updated row, or None when the task is already there or further along."""
        now = utcnow()
        values: dict[str, Any] = {"state": state.value, "updated_at": now}
        if state is TaskState.RUNNING:
            values["started_at"] = func.coalesce(TaskRow.started_at, now)
        if state is TaskState.EXITED:
            values["ended_at"] = now
        if reason is not None:
            values["reason"] = func.coalesce(TaskRow.reason, reason)
        if error is not None:
            values["error"] = func.coalesce(TaskRow.error, error)
        res = await s.execute(
            update(TaskRow)
            .where(TaskRow.task_id == task_id, TaskRow.state.in_([st.value for st in earlier_states(state)]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(res, "rowcount", 0) or 0) != 1:
            return None
        row = await self.row_in(s, task_id)
        if row is not None:
            await s.refresh(row)
        return row

    async def set_error_in(self, s: AsyncSession, task_id: str, error: str) -> None:
        await s.execute(
            update(TaskRow)
            .where(TaskRow.task_id == task_id)
            .values(error=func.coalesce(TaskRow.error, error), updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    async def set_state(
        self, task_id: str, state: TaskState, reason: str | None = None, error: str | None = None
    ) -> Task:
        async with self.sessions.begin() as s:
            await self.transition_in(s, task_id, state, reason=reason, error=error)
            row = await self.row_in(s, task_id)
            if row is None:
                raise NotFound("task does not exist", subject="task")
            return self.task(row)

    async def update_spec(self, task_id: str, spec: dict[str, Any], request: dict[str, Any]) -> None:
        async with self.sessions.begin() as s:
            await s.execute(
                update(TaskRow)
                .where(TaskRow.task_id == task_id)
                .values(
                    spec=json.dumps(spec),
                    request=json.dumps(_seal_tree(request, self._box, self.SECRET_KEYS)),
                    updated_at=utcnow(),
                )
            )

    async def upsert_file_in(self, s: AsyncSession, task_id: str, f: TaskFile) -> None:
        task = await self.row_in(s, task_id)
        if task is None:
            raise NotFound("task does not exist", subject="task")
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
        row.url = f.url
        row.backup = f.backup
        row.error = f.error
        await s.flush()

    async def upsert_file(self, task_id: str, f: TaskFile) -> None:
        async with self.sessions.begin() as s:
            await self.upsert_file_in(s, task_id, f)

    @staticmethod
    async def file_in(s: AsyncSession, task_id: str, key: str) -> TaskFile | None:
        row = (
            await s.execute(
                select(TaskFileRow)
                .join(TaskRow, TaskFileRow.task_pk == TaskRow.id)
                .where(TaskRow.task_id == task_id, TaskFileRow.key == key)
            )
        ).scalar_one_or_none()
        return task_file(row) if row is not None else None

    @staticmethod
    async def files_in(s: AsyncSession, task_id: str) -> list[TaskFile]:
        rows = await s.execute(
            select(TaskFileRow)
            .join(TaskRow, TaskFileRow.task_pk == TaskRow.id)
            .where(TaskRow.task_id == task_id)
            .order_by(TaskFileRow.id)
        )
        return [task_file(r) for r in rows.scalars()]

    async def files(self, task_id: str) -> list[TaskFile]:
        async with self.sessions() as s:
            return await self.files_in(s, task_id)

    async def expired_files(self, now: datetime, node_id: str | None = None) -> list[tuple[str, TaskFile]]:
        """Stored files whose expiry has passed, with their task ids (with ``node_id``: only of
        tasks that node owns, or that no live node owns: the library is on a node's disk)."""
        async with self.sessions() as s:
            q = (
                select(TaskRow.task_id, TaskFileRow)
                .join(TaskRow, TaskFileRow.task_pk == TaskRow.id)
                .where(TaskFileRow.expires_at.is_not(None), TaskFileRow.expires_at <= now)
                .where(TaskFileRow.state == "stored")
            )
            if node_id is not None:
                q = q.where(or_(TaskRow.node_id == node_id, orphaned(TaskRow.node_id, node_id)))
            rows = await s.execute(q)
            return [(task_id, task_file(r)) for task_id, r in rows.all()]
