"""Recording tasks: from a normalized request to files in storage, with state, events and take-over.

The data path: ``api/<dialect>`` builds a :class:`RecordingRequest` (a normalized spec, a storage
target, the dialect's own request) -> :class:`RecordingService` checks the target, records the task
and starts the media engine with a :class:`TaskSink` -> the engine writes files -> the sink puts
each finished file in the durable upload queue, in the same transaction as the file's row, and
returns at once -> the queue uploads; the transaction that marks an upload done (or failed) also
marks the task's file and writes the event that reports it (``_upload_finished_in``) -> each event
becomes the dialect's callback through the outbox, in that same transaction.

States move only forward: ``idle`` -> ``running`` -> ``stopping`` (finalizing and uploading) ->
``exited`` (with a reason). Event ids derive from (task, kind, file, run): replaying after a crash
writes nothing twice.

Nodes: a task belongs to the node that runs it. When a node is gone (``services.nodes``), another
node takes its tasks over (:meth:`RecordingService.take_over`): files left half-written are
finalized (fragmented MP4 plays) and queued, tasks that were recording resume with new files (a
``task_moved`` event tells the dialect), and stopping tasks finish once their uploads are done.

Several nodes (:class:`TaskNodes`): a recorder reads media in-process, so a task runs on the node
serving its room. A task created on another node is recorded with that node's id and handed to it
(:meth:`RecordingService.adopt`); stop and modify calls go to the task's node the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from roomcast.background import Background
from roomcast.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    RoomcastError,
    Unavailable,
)
from roomcast.domain.jsondata import decode, encode
from roomcast.domain.recording import (
    LayoutRef,
    RecordingSpec,
    UserSelection,
    spec_from_json,
    spec_to_json,
    validate_spec,
)
from roomcast.domain.task import (
    EndReason,
    Task,
    TaskEvent,
    TaskEventKind,
    TaskFile,
    TaskState,
    event_id,
)
from roomcast.domain.tenancy import App
from roomcast.events.outbox import Callback, CallbackOutbox
from roomcast.log import event
from roomcast.media import sink as msink
from roomcast.media.outputs import FileInfo, FileStarted, finalize_mp4
from roomcast.services.tasks import TaskNodes, TaskService
from roomcast.storage.base import StorageError
from roomcast.storage.check import check_target
from roomcast.storage.objects import TargetObjects
from roomcast.storage.queue import UploadQueue, UploadRecord
from roomcast.storage.target import StorageTarget
from roomcast.store.tables import utcnow

log = logging.getLogger("roomcast.recordings")

KIND = "recording"
LIBRARY_BUCKET = "library"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
REPORT_FILE = "file"
REPORT_PLAYLIST = "playlist"

_END_REASONS = {
    "stopped": EndReason.STOPPED,
    "idle": EndReason.IDLE,
    "no_stream": EndReason.IDLE,
    "max_duration": EndReason.STOPPED,
    "room_closed": EndReason.ROOM_DISMISSED,
    "room_dismissed": EndReason.ROOM_DISMISSED,
    "error": EndReason.FAILED,
    "failed": EndReason.FAILED,
    "server_restart": EndReason.SERVER_RESTART,
}


async def snapshot(path: Path, seq: int) -> Path:
    """A private copy of a file its writer will change again (an HLS playlist)."""
    copy = path.with_name(f".{path.name}.{seq if seq >= 0 else 'final'}.{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(shutil.copyfile, path, copy)
    return copy


CallbackBuilder = Callable[[App, TaskEvent, Task], Callback | None]
"""A dialect's renderer: a task event to that vendor's callback (None: nothing to send)."""

Finisher = Callable[["RecordingService", Task, list[TaskFile], StorageTarget], Awaitable[None]]
"""A dialect's post-processing once the recorder stopped and before the task ends (TIW's
whiteboard and class videos): it may make more files from the recorded ones and queue them
(:meth:`RecordingService.queue_file`). The recorded files of such a dialect keep their local
copy until the finisher ran."""


@dataclass(frozen=True)
class RecordingRequest:
    app: App
    room_id: str
    spec: RecordingSpec
    storage: StorageTarget | None  # None: roomcast's media library
    dialect: str
    dialect_request: dict[str, Any]  # the dialect's own request, for its answers (secrets sealed)
    robot_user_id: str | None = None
    control_hours: float | None = None
    library_expire_s: int = 0  # media library: delete files this long after they are stored (0: keep)


def _ts(wallclock: float) -> datetime:
    return datetime.fromtimestamp(wallclock, UTC)


def _track_type(info: FileInfo) -> str:
    if info.has_audio and info.has_video:
        return "audio_video"
    return "video" if info.has_video else "audio"


@dataclass
class _Running:
    task: Task
    target: StorageTarget
    uploads_started: bool = False
    playlists: set[str] = field(default_factory=set)
    job_running: bool = False
    finishing: asyncio.Task[Any] | None = None
    abandoned: bool = False  # another node took the task over: this node only lets go


class TaskSink:
    """The engine's sink for one task: files are queued for upload, never waited for."""

    def __init__(self, service: RecordingService, run: _Running) -> None:
        self._svc = service
        self._run = run

    @property
    def task_id(self) -> str:
        return self._run.task.task_id

    async def file_started(self, info: FileStarted) -> None:
        """The file's row (recording) and its ``file_started`` event, committed together."""
        await self._svc.file_started(
            self._run,
            TaskFile(
                key=info.key,
                track_type="audio_video" if info.media == "av" else info.media,
                content_type="application/octet-stream",
                begin_at=_ts(info.start_wallclock),
                state="recording",
                user_id=info.user_id if info.user_id != "mix" else None,
                stream=info.stream,
                local_path=str(info.path),
            ),
        )

    async def segment_ready(self, path: Path, key: str, content_type: str, seq: int) -> None:
        await self._svc.upload_started(self._run)
        is_playlist = content_type == PLAYLIST_TYPE
        # Segments upload in parallel; a playlist waits for everything queued before it, so it
        # never names a segment the store does not have yet. The writer rewrites its playlist in
        # place, so each version is uploaded from a snapshot of its own.
        source = await snapshot(path, seq) if is_playlist else path
        first_playlist = is_playlist and key not in self._run.playlists
        if is_playlist:
            self._run.playlists.add(key)
        await self._svc.uploads.enqueue(
            self._run.target,
            source,
            key,
            content_type=content_type,
            owner=self.task_id,
            ordered=is_playlist,
            label=key,
            report=REPORT_PLAYLIST if first_playlist else None,
            fallback=True,
        )

    async def file_completed(self, info: FileInfo) -> None:
        """Queue the finished file with its row, in one transaction; the queue reports it."""
        await self._svc.upload_started(self._run)
        source = await snapshot(info.path, -1) if info.content_type == PLAYLIST_TYPE else info.path
        done = TaskFile(
            key=info.key,
            track_type=_track_type(info),
            content_type=info.content_type,
            begin_at=_ts(info.start_wallclock),
            end_at=_ts(info.end_wallclock),
            duration_ms=int(info.duration * 1000),
            size=info.size,
            width=info.width,
            height=info.height,
            state="uploading",
            user_id=info.user_id if info.user_id != "mix" else None,
            stream=info.stream,
            local_path=str(info.path),
        )
        keep = self._svc.keeps_sources(self._run.task)
        await self._svc.queue_file(self._run.task.task_id, self._run.target, source, done, keep_local=keep)


class RecordingService:
    def __init__(
        self,
        *,
        tasks: TaskService,
        engine: Any,
        uploads: UploadQueue,
        outbox: CallbackOutbox,
        apps: Callable[[int], Awaitable[App]],
        public_url: str,
        node_id: str,
        max_tasks: int = 100,
        room_exists: Callable[[str, str], bool] | None = None,
        room_users: Callable[[str, str], list[str]] | None = None,
        check_storage: Callable[[StorageTarget], Awaitable[None]] | None = None,
        nodes: TaskNodes | None = None,
    ) -> None:
        self.tasks = tasks
        self.engine = engine
        self.uploads = uploads
        self.outbox = outbox
        self._apps = apps
        self._public_url = public_url.rstrip("/")
        self.node_id = node_id
        self.max_tasks = max_tasks
        self._room_exists = room_exists or (lambda app, room: False)
        self._room_users = room_users or (lambda app, room: [])
        self._check_storage = check_storage or (lambda target: check_target(target, self.uploads.options))
        self.nodes = nodes
        self.builders: dict[str, CallbackBuilder] = {}
        self.finishers: dict[str, Finisher] = {}
        self._running: dict[str, _Running] = {}
        self._background = Background("recordings")
        self._shutting_down = False
        self._lock = asyncio.Lock()
        uploads.on_finished_tx = self._upload_finished_in
        uploads.on_failed = self._upload_failed

    # -- wiring ----------------------------------------------------------------------------------
    def register_dialect(self, name: str, builder: CallbackBuilder, finisher: Finisher | None = None) -> None:
        self.builders[name] = builder
        if finisher is not None:
            self.finishers[name] = finisher

    def keeps_sources(self, task: Task) -> bool:
        """Whether the task's recorded files stay on disk after upload (for its finisher)."""
        return task.dialect in self.finishers

    def library_target(self) -> StorageTarget:
        return StorageTarget(kind="local", bucket=LIBRARY_BUCKET)

    def library_url(self, key: str) -> str:
        return f"{self._public_url}/media/{key}"

    @staticmethod
    def is_library(target: StorageTarget) -> bool:
        return target.kind == "local" and target.bucket == LIBRARY_BUCKET

    # -- events ----------------------------------------------------------------------------------
    async def _emit_in(
        self,
        s: AsyncSession,
        app: App,
        task: Task,
        kind: TaskEventKind,
        *,
        file: TaskFile | None = None,
        seq: int = 0,
        reason: str | None = None,
        ok: bool = True,
        url: str | None = None,
    ) -> None:
        """Write the event's callback in the caller's transaction (nothing if written before)."""
        ev = TaskEvent(
            event_id=event_id(task.task_id, kind, file.key if file else "", seq),
            task_id=task.task_id,
            sdk_app_id=task.sdk_app_id,
            room_id=task.room_id,
            kind=kind,
            at=utcnow(),
            user_id=(file.user_id if file else None) or task.robot_user_id,
            file=file,
            reason=reason,
            ok=ok,
            url=url,
        )
        builder = self.builders.get(task.dialect)
        cb = builder(app, ev, task) if builder is not None else None
        added = await self.outbox.add(s, cb) if cb is not None else True
        if added:
            event(
                log, "recording.event", task_id=task.task_id, kind=kind.value, key=file.key if file else None
            )

    async def upload_started(self, run: _Running) -> None:
        if run.uploads_started:
            return
        run.uploads_started = True
        app = await self._apps(run.task.sdk_app_id)
        async with self.tasks.sessions.begin() as s:
            await self._emit_in(s, app, run.task, TaskEventKind.UPLOAD_STARTED)
        self.outbox.notify()

    async def file_started(self, run: _Running, f: TaskFile) -> None:
        """A file was opened: its row and the event reporting it, in one transaction (the event
        id derives from the task, the file's key and the run, so a replay writes nothing twice)."""
        app = await self._apps(run.task.sdk_app_id)
        async with self.tasks.sessions.begin() as s:
            await self.tasks.upsert_file_in(s, run.task.task_id, f)
            await self._emit_in(s, app, run.task, TaskEventKind.FILE_STARTED, file=f, seq=run.task.run)
        self.outbox.notify()

    async def queue_file(
        self, task_id: str, target: StorageTarget, source: Path, f: TaskFile, *, keep_local: bool = False
    ) -> None:
        """The file's row (uploading) and its upload row, committed together."""
        async with self.tasks.sessions.begin() as s:
            await self.tasks.upsert_file_in(s, task_id, f)
            await self.uploads.enqueue(
                target,
                source,
                f.key,
                content_type=f.content_type,
                owner=task_id,
                ordered=True,
                label=f.key,
                report=REPORT_FILE,
                fallback=True,
                keep_local=keep_local,
                session=s,
            )
        self.uploads.wake()

    async def _upload_finished_in(self, s: AsyncSession, rec: UploadRecord) -> None:
        """In the upload's own finishing transaction: the task file's state and its events."""
        if rec.owner is None or rec.label is None:
            return
        row = await self.tasks.row_in(s, rec.owner)
        if row is None or row.kind != KIND:
            return
        if rec.failed:
            await self.tasks.set_error_in(s, rec.owner, f"storage: {rec.last_error or 'upload failed'}")
        if rec.report not in (REPORT_FILE, REPORT_PLAYLIST):
            return
        task = self.tasks.task(row)
        app = await self._apps(task.sdk_app_id)
        f = await self.tasks.file_in(s, task.task_id, rec.label)
        if rec.report == REPORT_PLAYLIST:
            if rec.done and f is not None:
                await self._emit_in(s, app, task, TaskEventKind.PLAYLIST_STARTED, file=f)
                await self._emit_in(s, app, task, TaskEventKind.SEGMENT_STORED, file=f)
            return
        if f is None:
            return
        if rec.done:
            library = rec.backed_up or self._is_library_json(rec)
            url = self.library_url(rec.key) if library else None
            expires = (
                utcnow() + timedelta(seconds=task.library_expire_s)
                if library and not rec.backed_up and task.library_expire_s > 0
                else None
            )
            stored = replace(
                f,
                state="stored",
                url=url,
                expires_at=expires,
                backup=rec.backed_up,
                error=rec.last_error if rec.backed_up else None,
            )
            await self.tasks.upsert_file_in(s, task.task_id, stored)
            if rec.backed_up:
                await self._emit_in(
                    s, app, task, TaskEventKind.FILE_BACKED_UP, file=stored, url=url, reason=rec.last_error
                )
                return
            await self._emit_in(s, app, task, TaskEventKind.FILE_STORED, file=stored)
            if library:
                await self._emit_in(s, app, task, TaskEventKind.LIBRARY_COMMITTED, file=stored, url=url)
            return
        error = rec.last_error or "upload failed"
        failed = replace(f, state="failed", error=error)
        await self.tasks.upsert_file_in(s, task.task_id, failed)
        await self._emit_in(s, app, task, TaskEventKind.FILE_FAILED, file=failed, reason=error, ok=False)

    def _is_library_json(self, rec: UploadRecord) -> bool:
        return self.is_library(rec.target)

    async def _upload_failed(self, rec: UploadRecord) -> None:
        """After a file failed for good: the target is unusable, so the recording ends (failed)."""
        self.outbox.notify()
        if rec.owner is None:
            return
        run = self._running.get(rec.owner)
        if run is None or not run.job_running or run.task.state is TaskState.STOPPING:
            return
        event(log, "recording.storage_failed", level=logging.ERROR, task_id=rec.owner, error=rec.last_error)
        await self._request_stop(run, msink.EndReason.ERROR)

    # -- engine events ---------------------------------------------------------------------------
    async def _on_engine_event(self, run: _Running, ev: object) -> None:
        if isinstance(ev, msink.RecordingStarted):
            app = await self._apps(run.task.sdk_app_id)
            async with self.tasks.sessions.begin() as s:
                row = await self.tasks.transition_in(s, run.task.task_id, TaskState.RUNNING)
                if row is not None:
                    run.task = self.tasks.task(row)
                if run.task.state is not TaskState.EXITED:
                    await self._emit_in(s, app, run.task, TaskEventKind.RECORDER_STARTED, seq=run.task.run)
            self.outbox.notify()
        elif isinstance(ev, msink.FileCompleted):
            self.outbox.notify()
        elif isinstance(ev, msink.RecordingEnded):
            run.job_running = False
            if run.abandoned:
                return
            if self._shutting_down and run.task.state is not TaskState.STOPPING:
                # The server is going down, not the task: it stays unfinished and is resumed by
                # the next node to take it (its finished files are in the upload queue already).
                event(log, "recording.suspended", task_id=run.task.task_id)
                return
            self._start_finish(run, ev.reason.value, ev.error)

    def _start_finish(self, run: _Running, reason: str, error: str | None = None) -> None:
        if run.finishing is None:
            run.finishing = self._background.spawn(
                f"finish-{run.task.task_id[:12]}", self._finish(run, reason, error)
            )

    async def _finish(self, run: _Running, reason: str, error: str | None = None) -> None:
        """The job ended: report the recorder stopped, wait for every upload, then exit."""
        task_id = run.task.task_id
        mapped = _END_REASONS.get(reason, EndReason.STOPPED)
        app = await self._apps(run.task.sdk_app_id)
        async with self.tasks.sessions.begin() as s:
            row = await self.tasks.transition_in(
                s, task_id, TaskState.STOPPING, reason=mapped.value, error=error
            )
            current = await self.tasks.row_in(s, task_id)
            if current is None or current.state == TaskState.EXITED.value:
                self._running.pop(task_id, None)
                return
            run.task = self.tasks.task(row or current)
            final = run.task.reason or mapped.value
            await self._emit_in(s, app, run.task, TaskEventKind.RECORDER_STOPPED, reason=final)
        self.outbox.notify()
        finisher = self.finishers.get(run.task.dialect)
        if finisher is not None:
            await self._run_finisher(finisher, run)
        uploads = await self.uploads.wait_owner(task_id)
        app = await self._apps(run.task.sdk_app_id)
        async with self.tasks.sessions.begin() as s:
            files = await self.tasks.files_in(s, task_id)
            current = await self.tasks.row_in(s, task_id)
            if current is None:
                return
            task = self.tasks.task(current)
            # As the vendors' "upload stop" means it: every file reached the requested target (a
            # file kept in the backup store is stored, but not there).
            ok = not any(f.state == "failed" or f.backup for f in files)
            if uploads or run.uploads_started:
                await self._emit_in(s, app, task, TaskEventKind.UPLOAD_STOPPED, ok=ok)
            if self.is_library(run.target):
                await self._emit_in(s, app, task, TaskEventKind.LIBRARY_STOPPED, ok=ok)
            final_reason = task.reason or mapped.value
            row = await self.tasks.transition_in(s, task_id, TaskState.EXITED, reason=final_reason)
            if row is not None:
                run.task = self.tasks.task(row)
        self.outbox.notify()
        self._running.pop(task_id, None)
        event(log, "recording.exited", task_id=task_id, reason=run.task.reason, error=run.task.error)

    async def _run_finisher(self, finisher: Finisher, run: _Running) -> None:
        """The dialect's post-processing; then the recorded files' local copies go, once
        uploaded. A failing finisher is the task's error, never a stuck task."""
        task_id = run.task.task_id
        try:
            await finisher(self, run.task, await self.tasks.files(task_id), run.target)
        except Exception as exc:
            log.exception("recording.finisher_failed", extra={"fields": {"task_id": task_id}})
            async with self.tasks.sessions.begin() as s:
                await self.tasks.set_error_in(s, task_id, f"post-processing failed: {exc!r}"[:500])
        await self.uploads.wait_owner(task_id)
        for f in await self.tasks.files(task_id):
            if f.local_path and f.state == "stored":
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(Path(f.local_path).unlink, True)

    # -- the API ---------------------------------------------------------------------------------
    async def create(self, req: RecordingRequest) -> Task:
        validate_spec(req.spec)
        app_key = str(req.app.sdk_app_id)
        if not req.app.enabled:
            raise FailedPrecondition("the app is disabled", subject="app_state")
        if req.storage is not None:
            try:
                await self._check_storage(req.storage)
            except StorageError as exc:
                # Refused for good (no such bucket, access denied, bad keys): the request is wrong.
                # Unreachable or failing for now: try again later.
                error = InvalidArgument if not exc.retryable else Unavailable
                raise error(f"the storage target cannot be used: {exc.message}", subject="storage") from None
        if self.nodes is not None:
            owner = await self.nodes.room_node(app_key, req.room_id)
            if owner is not None:
                return await self._create_on(owner, req)
        async with self._lock:
            if len(self._running) >= self.max_tasks:
                raise LimitExceeded(
                    "the maximum number of concurrent recordings is reached", subject="recording"
                )
            if req.robot_user_id is not None and req.robot_user_id in self._room_users(app_key, req.room_id):
                raise InvalidArgument(
                    "the recorder's user id is already in the room", subject="robot_user_id"
                )
            task = await self._insert_task(req, self.node_id)
            run = _Running(task=task, target=req.storage or self.library_target())
            try:
                await self._launch(run, req.spec)
            except Exception:
                await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.FAILED.value)
                raise
            return task

    async def _insert_task(self, req: RecordingRequest, node_id: str | None) -> Task:
        """The task's row, owned by ``node_id``; refused when another recorder in the room already
        uses the robot user id."""
        if req.robot_user_id is not None:
            for other in await self.tasks.active_in_room(req.app.sdk_app_id, req.room_id):
                if other.robot_user_id == req.robot_user_id:
                    raise InvalidArgument(
                        "another recorder in the room uses this user id", subject="robot_user_id"
                    )
        control = utcnow() + timedelta(hours=req.control_hours) if req.control_hours is not None else None
        return await self.tasks.create(
            sdk_app_id=req.app.sdk_app_id,
            kind=KIND,
            dialect=req.dialect,
            room_id=req.room_id,
            spec=spec_to_json(req.spec),
            request=req.dialect_request,
            target=req.storage,
            node_id=node_id,
            robot_user_id=req.robot_user_id,
            control_expires_at=control,
            library_expire_s=req.library_expire_s,
        )

    async def _create_on(self, node_id: str, req: RecordingRequest) -> Task:
        """The room is served by ``node_id``: record the task as that node's and hand it over."""
        assert self.nodes is not None
        task = await self._insert_task(req, node_id)
        try:
            await self.nodes.call(
                node_id, "recordings.adopt", {"sdk_app_id": req.app.sdk_app_id, "task_id": task.task_id}
            )
        except RoomcastError:
            with contextlib.suppress(Exception):
                await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.FAILED.value)
            raise
        event(log, "recording.created_on", task_id=task.task_id, node_id=node_id)
        return await self.tasks.get(req.app.sdk_app_id, task.task_id)

    async def adopt(self, sdk_app_id: int, task_id: str) -> None:
        """Start a task another node created for a room served here."""
        task = await self.tasks.get(sdk_app_id, task_id)
        if task.node_id != self.node_id or task.state is not TaskState.IDLE or task_id in self._running:
            raise FailedPrecondition("the task cannot be started on this node", subject="task")
        async with self._lock:
            if len(self._running) >= self.max_tasks:
                raise LimitExceeded(
                    "the maximum number of concurrent recordings is reached", subject="recording"
                )
            if task.robot_user_id is not None and task.robot_user_id in self._room_users(
                str(sdk_app_id), task.room_id
            ):
                raise InvalidArgument(
                    "the recorder's user id is already in the room", subject="robot_user_id"
                )
            target = await self.tasks.target(task_id) or self.library_target()
            await self._launch(_Running(task=task, target=target), spec_from_json(task.spec))

    def calls(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        """What other nodes may ask of this one (cluster RPC methods)."""

        async def adopt(p: dict[str, Any]) -> None:
            await self.adopt(int(p["sdk_app_id"]), str(p["task_id"]))

        async def stop(p: dict[str, Any]) -> None:
            await self.stop(await self._apps(int(p["sdk_app_id"])), str(p["task_id"]))

        async def modify(p: dict[str, Any]) -> None:
            users = p.get("users")
            layout = p.get("layout")
            await self.modify(
                await self._apps(int(p["sdk_app_id"])),
                str(p["task_id"]),
                users=decode(UserSelection, users, "users") if users is not None else None,
                layout=decode(LayoutRef, layout, "layout") if layout is not None else None,
                dialect_request=p.get("dialect_request"),
            )

        return {"recordings.adopt": adopt, "recordings.stop": stop, "recordings.modify": modify}

    def records_room(self, app_key: str, room_id: str) -> bool:
        """A task of this node records the room (the room stays placed here while it waits)."""
        return any(
            str(r.task.sdk_app_id) == app_key and r.task.room_id == room_id for r in self._running.values()
        )

    def _elsewhere(self, task: Task) -> str | None:
        """The other node running ``task`` (several nodes), or None."""
        if self.nodes is None or task.node_id in (None, self.node_id) or task.task_id in self._running:
            return None
        return task.node_id

    async def _launch(self, run: _Running, spec: RecordingSpec) -> None:
        """Start the engine for ``run`` (a new task, or one taken over)."""
        task_id = run.task.task_id
        number = await self.tasks.next_run(task_id)
        run.task = replace(run.task, run=number)
        self._running[task_id] = run

        async def listener(ev: object) -> None:
            try:
                await self._on_engine_event(run, ev)
            except Exception:
                log.exception("recording.listener_failed")

        try:
            await self.engine.start(
                task_id,
                str(run.task.sdk_app_id),
                run.task.room_id,
                spec,
                sink=TaskSink(self, run),
                listener=listener,
                objects=TargetObjects(run.target, self.uploads.options),
            )
            run.job_running = True
        except Exception:
            self._running.pop(task_id, None)
            raise

    async def get(self, app: App, task_id: str) -> tuple[Task, list[TaskFile]]:
        task = await self.tasks.get(app.sdk_app_id, task_id)
        return task, await self.tasks.files(task_id)

    def spec_of(self, task: Task) -> RecordingSpec:
        return spec_from_json(task.spec)

    async def modify(
        self,
        app: App,
        task_id: str,
        *,
        users: UserSelection | None = None,
        layout: LayoutRef | None = None,
        dialect_request: dict[str, Any] | None = None,
    ) -> Task:
        """Change a running task's users or layout; the stored spec changes with it."""
        task = await self.tasks.get(app.sdk_app_id, task_id)
        if task.state in (TaskState.STOPPING, TaskState.EXITED):
            raise NotFound("the task has ended", subject="task")
        if self.nodes is not None and (owner := self._elsewhere(task)) is not None:
            params: dict[str, Any] = {"sdk_app_id": app.sdk_app_id, "task_id": task_id}
            if users is not None:
                params["users"] = encode(UserSelection, users, "users")
            if layout is not None:
                params["layout"] = encode(LayoutRef, layout, "layout")
            if dialect_request is not None:
                params["dialect_request"] = dialect_request
            await self.nodes.call(owner, "recordings.modify", params)
            return task
        run = self._running.get(task_id)
        if run is None or not run.job_running:
            if task.node_id != self.node_id:
                raise Unavailable("the task is run by another node", subject="task")
            raise NotFound("the task has ended", subject="task")
        spec = self.spec_of(task)
        if users is not None:
            spec = replace(spec, users=users)
        if layout is not None:
            spec = replace(spec, layout=layout)
        validate_spec(spec)
        await self.engine.update(task_id, users=users, layout=layout)
        await self.tasks.update_spec(task_id, spec_to_json(spec), dialect_request or task.request)
        return task

    def running(self, dialect: str) -> list[Task]:
        """The tasks of a dialect that this node is recording now."""
        return [r.task for r in self._running.values() if r.task.dialect == dialect and r.job_running]

    def recording_here(self, task: Task) -> bool | None:
        """Whether the task's recorder runs on this node now (None: the task is another node's)."""
        if task.node_id not in (None, self.node_id):
            return None
        run = self._running.get(task.task_id)
        return run is not None and run.job_running

    def spawn(self, name: str, coro: Any) -> None:
        """Run a dialect's background work (a watchdog) for as long as the service runs."""
        self._background.spawn(name, coro)

    async def stop(self, app: App, task_id: str, reason: msink.EndReason = msink.EndReason.STOPPED) -> Task:
        """Ask the task to stop; finalizing and uploading go on in the background."""
        task = await self.tasks.get(app.sdk_app_id, task_id)
        if task.state is TaskState.EXITED:
            raise NotFound("the task has ended", subject="task")
        if self.nodes is not None and (owner := self._elsewhere(task)) is not None:
            await self.nodes.call(
                owner, "recordings.stop", {"sdk_app_id": app.sdk_app_id, "task_id": task_id}
            )
            return await self.tasks.get(app.sdk_app_id, task_id)
        run = self._running.get(task_id)
        if run is None:
            if task.node_id != self.node_id:
                raise Unavailable("the task is run by another node", subject="task")
            raise NotFound("the task has ended", subject="task")
        if task.state is not TaskState.STOPPING:
            await self._request_stop(run, reason)
        return run.task

    async def _request_stop(self, run: _Running, reason: msink.EndReason) -> None:
        row_task = await self.tasks.set_state(
            run.task.task_id, TaskState.STOPPING, reason=_END_REASONS[reason.value].value
        )
        run.task = row_task
        if run.job_running:
            self._background.spawn(f"stop-{run.task.task_id[:12]}", self._stop_engine(run, reason))
        else:
            self._start_finish(run, reason.value)

    async def _stop_engine(self, run: _Running, reason: msink.EndReason) -> None:
        try:
            await self.engine.stop(run.task.task_id, reason)
        except NotFound:
            self._start_finish(run, reason.value)  # the job ended meanwhile without telling

    async def room_dismissed(self, app_key: str, room_id: str) -> None:
        """A dismissed room takes its recorders with it (they were participants too)."""
        for run in list(self._running.values()):
            t = run.task
            if str(t.sdk_app_id) != app_key or t.room_id != room_id or t.state is TaskState.STOPPING:
                continue
            await self._request_stop(run, msink.EndReason.ROOM_CLOSED)

    async def close(self, grace_s: float = 30.0) -> None:
        """Server shutdown, bounded by ``grace_s``: recordings finalize their files (which stay
        queued for upload); unfinished tasks are left for the next node to take over."""
        self._shutting_down = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        stops = [self.engine.stop(task_id) for task_id, run in list(self._running.items()) if run.job_running]
        if stops:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, deadline - loop.time())):
                    await asyncio.gather(*stops, return_exceptions=True)
        await self._background.close()

    # -- media library expiry ------------------------------------------------------------------
    async def expire_library_files(self) -> int:
        """Delete media-library files whose expiry passed; returns how many went."""
        root = (Path(self.uploads.options.local_root) / LIBRARY_BUCKET).resolve()
        gone = 0
        for task_id, f in await self.tasks.expired_files(utcnow(), self.node_id):
            path = (root / f.key).resolve()
            if path.is_relative_to(root):
                await asyncio.to_thread(path.unlink, True)
            await self.tasks.upsert_file(task_id, replace(f, state="expired"))
            event(log, "recording.file_expired", task_id=task_id, key=f.key)
            gone += 1
        return gone

    def start_janitor(self, interval_s: float = 60.0) -> None:
        async def loop() -> None:
            while True:
                try:
                    await self.expire_library_files()
                except Exception:
                    log.exception("recording.janitor_failed")
                await asyncio.sleep(interval_s)

        self._background.spawn("library-janitor", loop())

    async def let_go(self) -> None:
        """This node lost its lease and another took some of its tasks: stop running those here
        (their files so far are finalized and queued; the new owner reports them)."""
        for task_id, run in list(self._running.items()):
            task = await self.tasks.by_id(task_id)
            if task is None or task.node_id == self.node_id:
                continue
            run.abandoned = True
            self._running.pop(task_id, None)
            if run.finishing is not None:
                run.finishing.cancel()
            if run.job_running:
                with contextlib.suppress(Exception):
                    await self.engine.stop(task_id)
            event(log, "recording.let_go", level=logging.WARNING, task_id=task_id, owner=task.node_id)

    # -- taking over -----------------------------------------------------------------------------
    async def take_over(self) -> None:
        """Take the recording tasks of nodes that are gone (a restart is the same case)."""
        if self._shutting_down:
            return
        for task, previous in await self.tasks.claim_orphaned(KIND, self.node_id):
            try:
                await self._recover(task, moved=previous is not None)
            except Exception:
                log.exception("recording.recover_failed", extra={"fields": {"task_id": task.task_id}})
                run = self._running.get(task.task_id) or _Running(task=task, target=self.library_target())
                self._running[task.task_id] = run
                self._start_finish(run, "server_restart")

    async def _recover(self, task: Task, *, moved: bool) -> None:
        target = await self.tasks.target(task.task_id) or self.library_target()
        run = _Running(task=task, target=target)
        event(log, "recording.taken_over", task_id=task.task_id, state=task.state.value, node=self.node_id)
        app = await self._apps(task.sdk_app_id)
        for f in await self.tasks.files(task.task_id):
            if f.state != "recording" or not f.local_path:
                continue  # files queued before are reported by the upload queue when they land
            run.uploads_started = True
            path = Path(f.local_path)
            if not await asyncio.to_thread(path.exists):
                lost = replace(f, state="failed", error="the file was lost with the node that recorded it")
                async with self.tasks.sessions.begin() as s:
                    await self.tasks.upsert_file_in(s, task.task_id, lost)
                    await self._emit_in(
                        s, app, task, TaskEventKind.FILE_FAILED, file=lost, reason=lost.error, ok=False
                    )
                continue
            # Being written when the old process went: finalize what it left, then upload.
            if path.suffix in (".mp4", ".m4a"):
                await asyncio.to_thread(finalize_mp4, path)
            size = (await asyncio.to_thread(path.stat)).st_size
            await self.queue_file(
                task.task_id,
                target,
                path,
                replace(f, state="uploading", size=size),
                keep_local=self.keeps_sources(task),
            )
        spec: RecordingSpec | None = None
        with contextlib.suppress(InvalidArgument):
            spec = spec_from_json(task.spec)
        if spec is not None and task.state in (TaskState.IDLE, TaskState.RUNNING) and self.nodes is not None:
            # Several nodes: place the room here (its clients reconnect to this node), unless
            # another node already serves it again.
            try:
                elsewhere = await self.nodes.room_node(str(task.sdk_app_id), task.room_id)
            except RoomcastError:
                elsewhere = None
            if elsewhere is not None:
                event(
                    log,
                    "recording.room_elsewhere",
                    level=logging.WARNING,
                    task_id=task.task_id,
                    node=elsewhere,
                )
        if spec is not None and task.state in (TaskState.IDLE, TaskState.RUNNING):
            # Resume even when the room is empty: publishers reconnect after a restart, and the
            # recording ends by its own idle rule if nobody comes back.
            try:
                await self._launch(run, spec)
            except Exception:
                log.exception("recording.resume_failed", extra={"fields": {"task_id": task.task_id}})
            else:
                if moved:
                    async with self.tasks.sessions.begin() as s:
                        await self._emit_in(s, app, run.task, TaskEventKind.TASK_MOVED, seq=run.task.run)
                    self.outbox.notify()
                event(log, "recording.resumed", task_id=task.task_id, run=run.task.run)
                return
        # Ending waits for the uploads above; taking over must not.
        self._running[task.task_id] = run
        self._start_finish(run, task.reason or "server_restart")
