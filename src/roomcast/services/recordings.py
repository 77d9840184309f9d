"""Recording tasks: from a dialect's request to files in storage, with state, callbacks and recovery.

The data path: ``api/<dialect>`` builds a :class:`RecordingRequest` -> :class:`RecordingService`
records a task, starts the media engine with a :class:`TaskSink` -> the engine writes files ->
the sink queues each file in the durable upload queue and waits for the store's confirmation ->
task files and events are written, and each event becomes the dialect's callback (outbox).

States: ``idle`` (created, waiting for streams) -> ``running`` (files being written) ->
``stopping`` (asked to stop: finalizing and uploading) -> ``exited`` (with a reason).

On start-up, :meth:`RecordingService.recover` handles tasks a previous process left unfinished:
files it left half-written are finalized (fragmented MP4 plays, and is made a normal MP4) and
queued for upload; running tasks are resumed with new files when the room still exists (their
dialect adapter rebuilds the spec from the stored request); everything else ends with the reason
``server_restart``.
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

from roomcast.domain.errors import FailedPrecondition, InvalidArgument, LimitExceeded, NotFound
from roomcast.domain.recording import RecordingSpec, UserSelection, validate_spec
from roomcast.domain.task import EndReason, Task, TaskEvent, TaskEventKind, TaskFile, TaskState
from roomcast.domain.tenancy import App
from roomcast.events.outbox import Callback, CallbackOutbox
from roomcast.log import event
from roomcast.media import sink as msink
from roomcast.media.outputs import FileInfo, FileStarted, finalize_mp4
from roomcast.services.tasks import TaskService
from roomcast.storage.queue import UploadQueue
from roomcast.storage.target import StorageTarget
from roomcast.store.tables import utcnow

log = logging.getLogger("roomcast.recordings")

KIND = "recording"
LIBRARY_BUCKET = "library"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


async def snapshot(path: Path, seq: int) -> Path:
    """A private copy of a file its writer will change again (an HLS playlist)."""
    copy = path.with_name(f".{path.name}.{seq if seq >= 0 else 'final'}.{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(shutil.copyfile, path, copy)
    return copy


CallbackBuilder = Callable[[App, TaskEvent], Callback | None]
"""A dialect's renderer: a task event to that vendor's callback (None: nothing to send)."""


@dataclass(frozen=True)
class Rebuilt:
    spec: RecordingSpec
    storage: StorageTarget | None
    library_expire_s: int = 0


Rebuilder = Callable[[dict[str, Any]], Rebuilt]
"""A dialect's function from a stored request back to the spec (used when resuming tasks)."""


@dataclass(frozen=True)
class RecordingRequest:
    app: App
    room_id: str
    spec: RecordingSpec
    storage: StorageTarget | None  # None: roomcast's media library
    dialect: str
    stored_request: dict[str, Any]  # what the dialect needs to rebuild the spec (secrets sealed)
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
    watchers: set[asyncio.Task[None]] = field(default_factory=set)
    uploads_started: bool = False
    playlists: set[str] = field(default_factory=set)
    failed_files: int = 0
    expire_s: int = 0


class TaskSink:
    """The engine's sink for one task: every file goes through the durable upload queue."""

    def __init__(self, service: RecordingService, run: _Running) -> None:
        self._svc = service
        self._run = run

    @property
    def task_id(self) -> str:
        return self._run.task.task_id

    async def file_started(self, info: FileStarted) -> None:
        await self._svc.tasks.upsert_file(
            self.task_id,
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

    async def _upload_started(self) -> None:
        if not self._run.uploads_started:
            self._run.uploads_started = True
            await self._svc.emit(self._run, TaskEventKind.UPLOAD_STARTED)

    async def segment_ready(self, path: Path, key: str, content_type: str, seq: int) -> None:
        await self._upload_started()
        is_playlist = content_type == PLAYLIST_TYPE
        # Segments upload in parallel; a playlist waits for everything queued before it, so it
        # never names a segment the store does not have yet. The writer rewrites its playlist in
        # place, so each version is uploaded from a snapshot of its own.
        source = await snapshot(path, seq) if is_playlist else path
        upload_id = await self._svc.uploads.enqueue(
            self._run.target,
            source,
            key,
            content_type=content_type,
            owner=self.task_id,
            ordered=is_playlist,
            label=key,
        )
        first_playlist = is_playlist and key not in self._run.playlists
        if is_playlist:
            self._run.playlists.add(key)

        if not first_playlist:
            return

        async def confirm() -> None:
            # Reported once per playlist: it exists in the store, and so does its first slice.
            rec = await self._svc.uploads.wait(upload_id)
            if rec.done:
                playlist = await self._svc.file(self.task_id, key)
                await self._svc.emit(self._run, TaskEventKind.PLAYLIST_STARTED, file=playlist)
                await self._svc.emit(self._run, TaskEventKind.SEGMENT_STORED, file=playlist)

        self._svc.watch(self._run, confirm())

    async def file_completed(self, info: FileInfo) -> None:
        """Return only once the file is stored (the engine then reports it complete)."""
        await self._upload_started()
        source = await snapshot(info.path, -1) if info.content_type == PLAYLIST_TYPE else info.path
        upload_id = await self._svc.uploads.enqueue(
            self._run.target,
            source,
            info.key,
            content_type=info.content_type,
            owner=self.task_id,
            ordered=True,
            label=info.key,
        )
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
        await self._svc.tasks.upsert_file(self.task_id, done)
        rec = await self._svc.uploads.wait(upload_id)
        await self._svc.file_uploaded(self._run, done, rec.done, rec.last_error)


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
        max_tasks: int = 100,
        room_exists: Callable[[str, str], bool] | None = None,
        room_users: Callable[[str, str], list[str]] | None = None,
    ) -> None:
        self.tasks = tasks
        self.engine = engine
        self.uploads = uploads
        self.outbox = outbox
        self._apps = apps
        self._public_url = public_url.rstrip("/")
        self.max_tasks = max_tasks
        self._room_exists = room_exists or (lambda app, room: False)
        self._room_users = room_users or (lambda app, room: [])
        self.builders: dict[str, CallbackBuilder] = {}
        self.rebuilders: dict[str, Rebuilder] = {}
        self._running: dict[str, _Running] = {}
        self._background: set[asyncio.Future[None]] = set()
        self._janitor: asyncio.Future[None] | None = None
        self._shutting_down = False
        self._lock = asyncio.Lock()

    # -- wiring ----------------------------------------------------------------------------------
    def register_dialect(self, name: str, builder: CallbackBuilder, rebuilder: Rebuilder) -> None:
        self.builders[name] = builder
        self.rebuilders[name] = rebuilder

    def library_target(self) -> StorageTarget:
        return StorageTarget(kind="local", bucket=LIBRARY_BUCKET)

    def library_url(self, key: str) -> str:
        return f"{self._public_url}/media/{key}"

    def watch(self, run: _Running, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording.watcher_failed")

        t = asyncio.ensure_future(guarded())
        run.watchers.add(t)
        t.add_done_callback(run.watchers.discard)

    def _in_background(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` without waiting for it, keeping a reference until it ends."""
        t = asyncio.ensure_future(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    async def file(self, task_id: str, key: str) -> TaskFile | None:
        return next((f for f in await self.tasks.files(task_id) if f.key == key), None)

    # -- events ----------------------------------------------------------------------------------
    async def emit(
        self,
        run: _Running,
        kind: TaskEventKind,
        *,
        file: TaskFile | None = None,
        reason: str | None = None,
        ok: bool = True,
        url: str | None = None,
    ) -> None:
        t = run.task
        ev = TaskEvent(
            event_id=uuid.uuid4().hex,
            task_id=t.task_id,
            sdk_app_id=t.sdk_app_id,
            room_id=t.room_id,
            kind=kind,
            at=utcnow(),
            user_id=(file.user_id if file else None) or t.robot_user_id,
            file=file,
            reason=reason,
            ok=ok,
            url=url,
        )
        event(log, "recording.event", task_id=t.task_id, kind=kind.value, key=file.key if file else None)
        builder = self.builders.get(t.dialect)
        if builder is None:
            return
        app = await self._apps(t.sdk_app_id)
        cb = builder(app, ev)
        if cb is not None:
            await self.outbox.enqueue(cb)

    async def file_uploaded(self, run: _Running, f: TaskFile, ok: bool, error: str | None) -> None:
        library = run.target.kind == "local" and run.target.bucket == LIBRARY_BUCKET
        url = self.library_url(f.key) if library and ok else None
        expires = utcnow() + timedelta(seconds=run.expire_s) if library and ok and run.expire_s > 0 else None
        stored = replace(f, state="stored" if ok else "failed", url=url, expires_at=expires)
        await self.tasks.upsert_file(run.task.task_id, stored)
        if not ok:
            run.failed_files += 1
            await self.emit(run, TaskEventKind.FAILED, file=stored, reason=error or "upload failed", ok=False)
            return
        await self.emit(run, TaskEventKind.FILE_STORED, file=stored)
        if library:
            await self.emit(run, TaskEventKind.LIBRARY_COMMITTED, file=stored, url=url)

    async def _on_engine_event(self, run: _Running, ev: object) -> None:
        if isinstance(ev, msink.RecordingStarted):
            run.task = await self.tasks.set_state(run.task.task_id, TaskState.RUNNING)
            await self.emit(run, TaskEventKind.RECORDER_STARTED)
        elif isinstance(ev, msink.RecordingEnded):
            if self._shutting_down and run.task.state is not TaskState.STOPPING:
                # The server is going down, not the task: it stays unfinished and resumes at the
                # next start (its finalized files are in the upload queue already).
                event(log, "recording.suspended", task_id=run.task.task_id)
                return
            await self._finish(run, ev.reason.value, ev.error)

    async def _finish(self, run: _Running, reason: str, error: str | None = None) -> None:
        # Watchers (segment confirmations) finish first so callbacks keep their order.
        if run.watchers:
            await asyncio.gather(*list(run.watchers), return_exceptions=True)
        mapped = {
            "stopped": EndReason.STOPPED,
            "idle": EndReason.IDLE,
            "no_stream": EndReason.IDLE,
            "room_closed": EndReason.ROOM_DISMISSED,
            "room_dismissed": EndReason.ROOM_DISMISSED,
            "error": EndReason.FAILED,
            "server_restart": EndReason.SERVER_RESTART,
        }.get(reason, EndReason.STOPPED)
        await self.emit(run, TaskEventKind.RECORDER_STOPPED, reason=mapped.value)
        if run.uploads_started:
            await self.emit(run, TaskEventKind.UPLOAD_STOPPED, ok=run.failed_files == 0)
        if run.target.bucket == LIBRARY_BUCKET and run.target.kind == "local":
            await self.emit(run, TaskEventKind.LIBRARY_STOPPED, ok=run.failed_files == 0)
        run.task = await self.tasks.set_state(run.task.task_id, TaskState.EXITED, mapped.value)
        self._running.pop(run.task.task_id, None)
        event(log, "recording.exited", task_id=run.task.task_id, reason=mapped.value, error=error)

    # -- the API ---------------------------------------------------------------------------------
    async def create(self, req: RecordingRequest) -> Task:
        validate_spec(req.spec)
        app_key = str(req.app.sdk_app_id)
        if not req.app.enabled:
            raise FailedPrecondition("the app is disabled", subject="app_state")
        async with self._lock:
            if len(self._running) >= self.max_tasks:
                raise LimitExceeded(
                    "the maximum number of concurrent recordings is reached", subject="recording"
                )
            if req.robot_user_id is not None:
                if req.robot_user_id in self._room_users(app_key, req.room_id):
                    raise InvalidArgument(
                        "the recorder's user id is already in the room", subject="robot_user_id"
                    )
                for other in await self.tasks.active_in_room(req.app.sdk_app_id, req.room_id):
                    if other.robot_user_id == req.robot_user_id:
                        raise InvalidArgument(
                            "another recorder in the room uses this user id", subject="robot_user_id"
                        )
            control = utcnow() + timedelta(hours=req.control_hours) if req.control_hours is not None else None
            task = await self.tasks.create(
                sdk_app_id=req.app.sdk_app_id,
                kind=KIND,
                dialect=req.dialect,
                room_id=req.room_id,
                spec=req.stored_request,
                robot_user_id=req.robot_user_id,
                control_expires_at=control,
            )
            run = _Running(
                task=task, target=req.storage or self.library_target(), expire_s=req.library_expire_s
            )
            try:
                await self._launch(run, req.spec)
            except Exception:
                await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.FAILED.value)
                raise
            return task

    async def _launch(self, run: _Running, spec: RecordingSpec) -> None:
        """Start the engine for ``run`` (a new task, or one resumed after a restart)."""
        task = run.task
        self._running[task.task_id] = run

        async def listener(ev: object) -> None:
            try:
                await self._on_engine_event(run, ev)
            except Exception:
                log.exception("recording.listener_failed")

        try:
            await self.engine.start(
                task.task_id,
                str(task.sdk_app_id),
                task.room_id,
                spec,
                sink=TaskSink(self, run),
                listener=listener,
            )
        except Exception:
            self._running.pop(task.task_id, None)
            raise

    async def get(self, app: App, task_id: str) -> tuple[Task, list[TaskFile]]:
        task = await self.tasks.get(app.sdk_app_id, task_id)
        return task, await self.tasks.files(task_id)

    def _live(self, task_id: str) -> _Running:
        run = self._running.get(task_id)
        if run is None:
            raise NotFound("the task has ended", subject="task")
        return run

    async def modify(
        self, app: App, task_id: str, *, users: UserSelection | None = None, layout: Any | None = None
    ) -> Task:
        task = await self.tasks.get(app.sdk_app_id, task_id)
        if task.state in (TaskState.STOPPING, TaskState.EXITED):
            raise NotFound("the task has ended", subject="task")
        self._live(task_id)
        await self.engine.update(task_id, users=users, layout=layout)
        return task

    async def update_stored_request(self, task_id: str, stored_request: dict[str, Any]) -> None:
        await self.tasks.update_spec(task_id, stored_request)

    async def stop(self, app: App, task_id: str) -> Task:
        """Ask the task to stop; finalizing and uploading go on in the background."""
        task = await self.tasks.get(app.sdk_app_id, task_id)
        if task.state is TaskState.EXITED:
            raise NotFound("the task has ended", subject="task")
        run = self._live(task_id)
        if task.state is not TaskState.STOPPING:
            run.task = await self.tasks.set_state(task_id, TaskState.STOPPING)
            self._in_background(self._stop_engine(task_id))
        return run.task

    async def _stop_engine(self, task_id: str, reason: msink.EndReason = msink.EndReason.STOPPED) -> None:
        try:
            await self.engine.stop(task_id, reason)
        except Exception:
            log.exception("recording.stop_failed")

    async def room_dismissed(self, app_key: str, room_id: str) -> None:
        """A dismissed room takes its recorders with it (they were participants too)."""
        for task_id, run in list(self._running.items()):
            t = run.task
            if str(t.sdk_app_id) != app_key or t.room_id != room_id or t.state is TaskState.STOPPING:
                continue
            run.task = await self.tasks.set_state(task_id, TaskState.STOPPING)
            self._in_background(self._stop_engine(task_id, msink.EndReason.ROOM_CLOSED))

    async def close(self) -> None:
        """Server shutdown: stop every recording (files are finalized and stay queued for upload).

        Tasks that were running stay unfinished in the database and resume at the next start."""
        self._shutting_down = True
        if self._janitor is not None:
            self._janitor.cancel()
        for task_id in list(self._running):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.engine.stop(task_id), 20)
        for run in list(self._running.values()):
            for w in list(run.watchers):
                w.cancel()

    # -- media library expiry ------------------------------------------------------------------
    async def expire_library_files(self) -> int:
        """Delete media-library files whose expiry passed; returns how many went."""
        root = (Path(self.uploads.options.local_root) / LIBRARY_BUCKET).resolve()
        gone = 0
        for task_id, f in await self.tasks.expired_files(utcnow()):
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

        self._janitor = asyncio.ensure_future(loop())

    # -- restart ---------------------------------------------------------------------------------
    async def recover(self) -> None:
        for task in await self.tasks.unfinished(KIND):
            try:
                await self._recover(task)
            except Exception:
                log.exception("recording.recover_failed")
                await self.tasks.set_state(task.task_id, TaskState.EXITED, EndReason.SERVER_RESTART.value)

    def _report_when_stored(self, run: _Running, upload_id: int, f: TaskFile) -> None:
        async def confirm() -> None:
            rec = await self.uploads.wait(upload_id)
            await self.file_uploaded(run, f, rec.done, rec.last_error)

        self.watch(run, confirm())

    async def _recover(self, task: Task) -> None:
        rebuild = self.rebuilders.get(task.dialect)
        rebuilt = rebuild(task.spec) if rebuild else None
        target = (rebuilt.storage if rebuilt else None) or self.library_target()
        run = _Running(task=task, target=target, expire_s=rebuilt.library_expire_s if rebuilt else 0)
        queued = {
            r.label: r.id
            for r in await self.uploads.records(owner=task.task_id, limit=100_000)
            if not r.finished
        }
        for f in await self.tasks.files(task.task_id):
            if f.state == "uploading" and f.key in queued:
                # Queued before the restart: report it when it lands.
                self._report_when_stored(run, queued[f.key], f)
                continue
            if f.state != "recording" or not f.local_path:
                continue
            # Being written when the old process went: finalize what a crash left, then upload.
            path = Path(f.local_path)
            if not await asyncio.to_thread(path.exists):
                await self.tasks.upsert_file(task.task_id, replace(f, state="failed"))
                continue
            if path.suffix in (".mp4", ".m4a"):
                await asyncio.to_thread(finalize_mp4, path)
            upload_id = await self.uploads.enqueue(
                target, path, f.key, owner=task.task_id, ordered=True, label=f.key
            )
            pending = replace(f, state="uploading", size=(await asyncio.to_thread(path.stat)).st_size)
            await self.tasks.upsert_file(task.task_id, pending)
            self._report_when_stored(run, upload_id, pending)
        # Resume even when the room is empty: publishers reconnect after a restart, and the
        # recording ends by its own idle rule if nobody comes back.
        if rebuilt is not None and task.state in (TaskState.IDLE, TaskState.RUNNING):
            event(log, "recording.resumed", task_id=task.task_id)
            try:
                await self._launch(run, rebuilt.spec)
                return
            except Exception:
                log.exception("recording.resume_failed")
        # Ending waits for the uploads above; start-up must not.
        self._running[task.task_id] = run
        self._in_background(self._finish(run, "server_restart"))
