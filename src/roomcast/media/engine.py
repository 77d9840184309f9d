"""The recording engine: runs many recordings, with admission control.

``RecordingEngine.start(task_id, app_key, room_id, spec, sink=..., listener=...)`` estimates the
new recording's CPU cost from its spec and the live tracks, refuses with
:class:`~roomcast.domain.errors.LimitExceeded` (subject ``"recording"``) when the node would not
keep up, and otherwise starts a job:

* individual mode: :class:`IndividualRecording` (this module) - one
  :class:`~roomcast.media.individual.UserStreamRecorder` per user and stream;
* mixed mode: whatever factory the mixer registered with :meth:`RecordingEngine.register_mode`.

Lifecycle of a job: it waits for streams (``limits.start_timeout`` -> ended ``no_stream``),
follows tracks as they are published/unpublished, stops by itself after ``limits.idle_timeout``
without any publisher (``idle``) or at ``limits.max_duration`` (``max_duration``), or when
stopped.  Events (``RecordingStarted``, ``FileOpened``, ``FileCompleted``, ``RecordingEnded``) go to
the listener after the sink has handled each file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from roomcast.domain.errors import FailedPrecondition, LimitExceeded, NotFound
from roomcast.domain.recording import (
    LayoutRef,
    OutputFormat,
    RecordingMode,
    RecordingSpec,
    UserSelection,
    validate_spec,
)
from roomcast.rtc.events import EventBus, TrackPublished
from roomcast.rtc.forwarder import PacketSubscription, TrackEnded
from roomcast.rtc.track import TrackInfo, TrackKind

from .clock import RoomClock, SyncGroup
from .images import ObjectReader
from .individual import UnitKey, UserStreamRecorder, unit_plan
from .outputs import FileInfo, FileStarted, OutputContext, OutputEvent, SegmentReady
from .sink import (
    EndReason,
    FileCompleted,
    FileOpened,
    LocalSink,
    RecordingEnded,
    RecordingEvent,
    RecordingSink,
    RecordingStarted,
)

log = logging.getLogger(__name__)

__all__ = [
    "CostModel",
    "IndividualRecording",
    "JobContext",
    "MediaSource",
    "RecordingEngine",
    "RecordingJob",
]

Listener = Callable[[RecordingEvent], Awaitable[None] | None]


class MediaSource(Protocol):
    """What a recorder needs from the SFU (``RoomManager`` satisfies it)."""

    events: EventBus

    def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]: ...

    def subscribe_track(
        self,
        app_key: str,
        room_id: str,
        user_id: str,
        kind: TrackKind,
        *,
        maxsize: int | None = ...,
        name: str = ...,
    ) -> PacketSubscription: ...


@dataclass(frozen=True)
class CostModel:
    """CPU cost estimates in cores (1.0 = one core fully busy); see bench/recording.py.

    Measured on the 2-vCPU reference box (docs/recording-status.md); per user/stream.
    """

    copy_video: float = 0.012  # subscription + H.264 passthrough + muxing (fMP4 / TS)
    aac_audio: float = 0.018  # subscription + Opus decode + AAC encode
    transcode_video: float = 0.10  # VP8 decode + libx264 veryfast, 360p15 camera-like content
    base: float = 0.005  # per recording: tasks, reorder buffers
    mixed: float = 0.65  # a 720p composite at veryfast (the mixer may register its own)
    assumed_users: int = 1  # users assumed when the room is still empty

    def individual(self, spec: RecordingSpec, tracks: list[TrackInfo]) -> float:
        users = {t.user_id for t in tracks if spec.users.admits(t.user_id)}
        n_users = max(len(users), self.assumed_users)
        cost = self.base
        video_out = any(f in (OutputFormat.MP4, OutputFormat.HLS) for f in spec.outputs)
        for uid in users or {f"_{i}" for i in range(n_users)}:
            user_tracks = [t for t in tracks if t.user_id == uid]
            if spec.records_audio:
                cost += self.aac_audio
            if spec.records_video and spec.users.video.admits(uid):
                videos: list[TrackInfo | None] = [t for t in user_tracks if t.media == "video"]
                for t in videos or [None]:
                    vp8 = t is not None and t.codec.lower() == "video/vp8"
                    scaled = bool(spec.video.max_height)  # assume the picture is above the cap
                    cost += self.transcode_video if (vp8 or scaled) and video_out else self.copy_video
        return cost


class RecordingJob(Protocol):
    """A running recording (individual or mixed)."""

    task_id: str

    async def start(self) -> None: ...

    async def stop(self, reason: EndReason = EndReason.STOPPED) -> RecordingEnded: ...

    async def wait(self) -> RecordingEnded: ...

    async def update(
        self, *, users: UserSelection | None = None, layout: LayoutRef | None = None
    ) -> None: ...

    def estimated_cost(self) -> float: ...


@dataclass
class JobContext:
    """Everything a job gets from the engine (the mixer's factory receives one)."""

    task_id: str
    app_key: str
    room_id: str
    spec: RecordingSpec
    source: MediaSource
    executor: Executor
    output_root: Path
    clock: RoomClock
    emitter: _Emitter
    cost: CostModel
    objects: ObjectReader | None = None
    """The recording's store, for images named ``s3://bucket/object`` (None: none are read)."""

    def output_context(self, **variables: str) -> OutputContext:
        """The OutputContext for :func:`roomcast.media.outputs.open_output`; pass ``user_id``,
        ``stream`` (task_id, app and room_id are filled in)."""
        values = {"task_id": self.task_id, "app": self.app_key, "room_id": self.room_id, **variables}
        lim = self.spec.limits
        return OutputContext(
            root=self.output_root,
            naming=self.spec.naming,
            variables=values,
            wall_origin=self.clock.wall_origin,
            max_file_duration=lim.max_file_duration,
            hls_segment_duration=lim.hls_segment_duration,
            file_durations=lim.file_durations,
        )

    def emit(self, events: list[OutputEvent]) -> None:
        """Hand writer events to the sink task (non-blocking; order kept)."""
        self.emitter.put(events)


class _Emitter:
    """One ordered task per recording: sink calls, then listener events."""

    def __init__(self, task_id: str, sink: RecordingSink, listener: Listener | None) -> None:
        self.task_id = task_id
        self.sink = sink
        self.listener = listener
        self.queue: asyncio.Queue[list[OutputEvent] | RecordingEvent | None] = asyncio.Queue()
        self.files: list[FileInfo] = []
        self.started = False
        self.failed: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"recording-sink {self.task_id}")

    def put(self, item: list[OutputEvent] | RecordingEvent) -> None:
        self.queue.put_nowait(item)

    async def _notify(self, event: RecordingEvent) -> None:
        if self.listener is None:
            return
        try:
            result = self.listener(event)
            if result is not None:
                await result
        except Exception:
            log.exception("recording listener failed for %s", type(event).__name__)

    async def _handle(self, ev: OutputEvent) -> None:
        if isinstance(ev, FileStarted):
            await self.sink.file_started(ev)
            if not self.started:
                self.started = True
                await self._notify(RecordingStarted(task_id=self.task_id))
            await self._notify(FileOpened(task_id=self.task_id, info=ev))
        elif isinstance(ev, SegmentReady):
            await self.sink.segment_ready(ev.path, ev.key, ev.content_type, ev.seq)
            await self.sink.segment_ready(
                ev.playlist_path, ev.playlist_key, "application/vnd.apple.mpegurl", ev.seq
            )
        else:
            await self.sink.file_completed(ev)
            self.files.append(ev)
            await self._notify(FileCompleted(task_id=self.task_id, info=ev))

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, RecordingEvent):
                await self._notify(item)
                continue
            for ev in item:
                try:
                    await self._handle(ev)
                except Exception as exc:
                    log.exception("recording sink failed for %s", getattr(ev, "key", ev))
                    self.failed = f"sink: {exc}"

    async def drain(self) -> None:
        self.queue.put_nowait(None)
        if self._task is not None:
            await self._task


class IndividualRecording:
    """Per-user recording of one room (see ``roomcast.media.individual``)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.task_id = ctx.task_id
        self.spec = ctx.spec
        self.units: dict[UnitKey, UserStreamRecorder] = {}
        self.groups: dict[str, SyncGroup] = {}
        self._next_index: dict[UnitKey, dict[OutputFormat, int]] = {}  # of units closed by update()
        self._ended: asyncio.Future[RecordingEnded] = asyncio.get_running_loop().create_future()
        self._watch: asyncio.Task[None] | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[RecordingEnded] | None = None
        self._stopping = False
        self.started_at = time.monotonic()
        self.last_publisher = time.monotonic()
        self.any_file = False

    # -- lifecycle

    async def start(self) -> None:
        self.ctx.emitter.start()
        room = (self.ctx.app_key, self.ctx.room_id)
        sub = self.ctx.source.events.subscribe(room=room, types=(TrackPublished,))
        self._events_task = asyncio.create_task(self._follow(sub), name=f"recording-events {self.task_id}")
        for info in self.ctx.source.list_tracks(self.ctx.app_key, self.ctx.room_id):
            self._attach(info)
        self._watch = asyncio.create_task(self._watchdog(), name=f"recording-watch {self.task_id}")

    async def _follow(self, sub: object) -> None:
        from roomcast.rtc.events import EventSubscription

        assert isinstance(sub, EventSubscription)
        try:
            async for ev in sub:
                # A closed room is not the end: a user may come back within the idle timeout
                # (the room then reopens under the same id), so only the idle timeout ends it.
                if isinstance(ev, TrackPublished):
                    info = TrackInfo(self.ctx.app_key, self.ctx.room_id, ev.user_id, ev.kind, ev.codec)
                    self._attach(info)
        finally:
            sub.close()

    def _spawn_stop(self, reason: EndReason) -> None:
        if not self._stopping:
            self._stop_task = asyncio.create_task(self.stop(reason), name=f"recording-stop {self.task_id}")

    def _attach(self, info: TrackInfo) -> None:
        if self._stopping:
            return
        for stream, video_kind, with_audio in unit_plan(self.spec, info.user_id):
            if info.kind is TrackKind.AUDIO and not with_audio:
                continue
            if info.kind is not TrackKind.AUDIO and info.kind is not video_kind:
                continue
            key = (info.user_id, stream)
            unit = self.units.get(key)
            if unit is not None:
                current = unit.inputs.get(info.kind)
                if current is not None and not current.sub.closed:
                    continue  # already recording this track
            if unit is None:
                user_id = info.user_id

                def make_ctx(user_id: str = user_id, stream: str = stream) -> OutputContext:
                    return self.ctx.output_context(user_id=user_id, stream=stream)

                unit = UserStreamRecorder(
                    key,
                    self.spec,
                    self.ctx.clock,
                    self.ctx.executor,
                    make_ctx,
                    self._dispatch,
                    want_audio=with_audio,
                    want_video=video_kind is not None,
                )
                unit.lanes.next_index.update(self._next_index.get(key, {}))
                self.units[key] = unit
            try:
                sub = self.ctx.source.subscribe_track(
                    self.ctx.app_key, self.ctx.room_id, info.user_id, info.kind, name=f"rec {self.task_id}"
                )
            except (TrackEnded, Exception) as exc:  # raced with an unpublish
                log.info("recording %s: cannot subscribe %s: %s", self.task_id, info.track_id, exc)
                continue
            group = self.groups.setdefault(info.user_id, SyncGroup(info.user_id))
            unit.attach(info.kind, sub, info.codec, group)
            self.last_publisher = time.monotonic()

    def _dispatch(self, events: list[OutputEvent]) -> None:
        if any(isinstance(e, FileStarted) for e in events):
            self.any_file = True
        self.ctx.emit(events)

    async def _watchdog(self) -> None:
        lim = self.spec.limits
        while not self._stopping:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            if any(u.active for u in self.units.values()):
                self.last_publisher = now
            failed = [u for u in self.units.values() if u.failed is not None]
            if failed:
                self._spawn_stop(EndReason.ERROR)
                return
            if not self.any_file and now - self.started_at >= lim.start_timeout:
                self._spawn_stop(EndReason.NO_STREAM)
                return
            if self.any_file and now - self.last_publisher >= lim.idle_timeout:
                self._spawn_stop(EndReason.IDLE)
                return
            if lim.max_duration and now - self.started_at >= lim.max_duration:
                self._spawn_stop(EndReason.MAX_DURATION)
                return

    async def stop(self, reason: EndReason = EndReason.STOPPED) -> RecordingEnded:
        if self._stopping:
            return await asyncio.shield(self._ended)
        self._stopping = True
        if self._events_task is not None:
            self._events_task.cancel()
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        end = self.ctx.clock.now()
        errors: list[str] = []
        results = await asyncio.gather(*(u.close(end) for u in self.units.values()), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                errors.append(repr(r))
        errors += [repr(u.failed) for u in self.units.values() if u.failed is not None]
        await self.ctx.emitter.drain()
        if self.ctx.emitter.failed:
            errors.append(self.ctx.emitter.failed)
        ended = RecordingEnded(
            task_id=self.task_id,
            reason=EndReason.ERROR if errors and reason is EndReason.STOPPED else reason,
            files=tuple(self.ctx.emitter.files),
            error="; ".join(errors) or None,
        )
        await self.ctx.emitter._notify(ended)
        if not self._ended.done():
            self._ended.set_result(ended)
        return ended

    async def wait(self) -> RecordingEnded:
        return await asyncio.shield(self._ended)

    async def update(self, *, users: UserSelection | None = None, layout: LayoutRef | None = None) -> None:
        """Change who is recorded while running: users no longer admitted get their files
        finalized now; newly admitted users start recording (index numbering continues)."""
        del layout  # individual recordings have no layout
        if users is None or self._stopping:
            return
        self.spec = replace(self.spec, users=users)
        self.ctx.spec = self.spec
        closing: list[UserStreamRecorder] = []
        for key, unit in list(self.units.items()):
            user_id, stream = key
            plan = {s: (v is not None, a) for s, v, a in unit_plan(self.spec, user_id)}
            if plan.get(stream) != (unit.lanes.want_video, unit.lanes.want_audio):
                closing.append(self.units.pop(key))
        end = self.ctx.clock.now()
        await asyncio.gather(*(u.close(end) for u in closing), return_exceptions=True)
        for u in closing:
            idx = dict(u.lanes.next_index)
            for (fmt, _media), out in u.lanes.sets.items():
                idx[fmt] = max(idx.get(fmt, 0), out.next_index)
            self._next_index[u.key] = idx
        for info in self.ctx.source.list_tracks(self.ctx.app_key, self.ctx.room_id):
            self._attach(info)

    def estimated_cost(self) -> float:
        return self.ctx.cost.individual(
            self.spec, self.ctx.source.list_tracks(self.ctx.app_key, self.ctx.room_id)
        )


JobFactory = Callable[[JobContext], RecordingJob]
CostFunction = Callable[[RecordingSpec, list[TrackInfo]], float]


class RecordingEngine:
    """Runs recordings; refuses new ones that the node's CPU budget cannot carry."""

    def __init__(
        self,
        source: MediaSource,
        output_root: Path,
        *,
        capacity: float | None = None,
        cost: CostModel | None = None,
        executor: Executor | None = None,
        workers: int | None = None,
    ) -> None:
        self.source = source
        self.output_root = Path(output_root)
        cpus = os.cpu_count() or 1
        self.capacity = capacity if capacity is not None else 0.8 * cpus
        self.cost = cost or CostModel()
        self._own_executor = executor is None
        self.executor: Executor = executor or ThreadPoolExecutor(
            max_workers=workers or max(2, 2 * cpus), thread_name_prefix="recorder"
        )
        self.jobs: dict[str, RecordingJob] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        self._factories: dict[RecordingMode, tuple[JobFactory, CostFunction]] = {
            RecordingMode.INDIVIDUAL: (IndividualRecording, self.cost.individual),
        }

    def register_mode(
        self, mode: RecordingMode, factory: JobFactory, cost: CostFunction | None = None
    ) -> None:
        """The mixer registers mixed mode here: ``factory(JobContext) -> RecordingJob``."""
        self._factories[mode] = (factory, cost or (lambda spec, tracks: self.cost.mixed))

    def committed(self) -> float:
        return sum(job.estimated_cost() for job in self.jobs.values())

    def estimate(self, app_key: str, room_id: str, spec: RecordingSpec) -> float:
        """Cores the recording would need, from the live tracks of its room and of the other
        rooms a mixed spec includes (``spec.extra_rooms``)."""
        entry = self._factories.get(spec.mode)
        if entry is None:
            raise FailedPrecondition(f"{spec.mode.value} recording is not available", subject="recording")
        rooms = [room_id, *(r for r in spec.extra_rooms if r != room_id)]
        return entry[1](spec, [t for r in rooms for t in self.source.list_tracks(app_key, r)])

    async def start(
        self,
        task_id: str,
        app_key: str,
        room_id: str,
        spec: RecordingSpec,
        *,
        sink: RecordingSink | None = None,
        listener: Listener | None = None,
        objects: ObjectReader | None = None,
    ) -> RecordingJob:
        validate_spec(spec)
        if task_id in self.jobs:
            raise FailedPrecondition(f"recording {task_id} is already running", subject="task")
        need = self.estimate(app_key, room_id, spec)
        used = self.committed()
        if used + need > self.capacity:
            raise LimitExceeded(
                f"recording capacity reached: {used:.2f} of {self.capacity:.2f} cores committed, "
                f"this recording needs about {need:.2f}",
                subject="recording",
            )
        factory = self._factories[spec.mode][0]
        ctx = JobContext(
            task_id=task_id,
            app_key=app_key,
            room_id=room_id,
            spec=spec,
            source=self.source,
            executor=self.executor,
            output_root=self.output_root,
            clock=RoomClock(),
            emitter=_Emitter(task_id, sink or LocalSink(), listener),
            cost=self.cost,
            objects=objects,
        )
        job = factory(ctx)
        self.jobs[task_id] = job
        await job.start()
        task = asyncio.create_task(self._reap(job), name=f"recording-reap {task_id}")
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)
        return job

    async def _reap(self, job: RecordingJob) -> None:
        with contextlib.suppress(Exception):
            await job.wait()
        if self.jobs.get(job.task_id) is job:
            del self.jobs[job.task_id]

    def get(self, task_id: str) -> RecordingJob:
        job = self.jobs.get(task_id)
        if job is None:
            raise NotFound(f"no running recording {task_id}", subject="task")
        return job

    async def stop(self, task_id: str, reason: EndReason = EndReason.STOPPED) -> RecordingEnded:
        return await self.get(task_id).stop(reason)

    async def update(
        self, task_id: str, *, users: UserSelection | None = None, layout: LayoutRef | None = None
    ) -> None:
        """Change the users (and, for mixed recordings, the layout) of a running recording."""
        await self.get(task_id).update(users=users, layout=layout)

    async def close(self) -> None:
        await asyncio.gather(
            *(j.stop(EndReason.STOPPED) for j in list(self.jobs.values())), return_exceptions=True
        )
        if self._own_executor and isinstance(self.executor, ThreadPoolExecutor):
            # Jobs have stopped, so the threads are idle; waiting for them must not block the loop.
            await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
