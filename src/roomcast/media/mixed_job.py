"""Mixed recordings as engine jobs: a :class:`MixedRecorder` with the engine's lifecycle.

The engine owns what every recording shares (the sink task, events, admission control); this
adapter adds the start/idle/maximum-duration rules and live updates (users, layout) on top of the
mixer, so a mixed recording behaves exactly like a per-user one for the task layer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from roomcast.domain.recording import LayoutRef, RecordingMode, RecordingSpec, UserSelection
from roomcast.media.images import ImageFetcher
from roomcast.media.mixed import MixedRecorder, local_outputs, resolve_layout, settings_from_spec
from roomcast.media.outputs import FileStarted
from roomcast.media.sink import EndReason, RecordingEnded
from roomcast.rtc.events import EventSubscription, TrackPublished, TrackUnpublished
from roomcast.rtc.track import TrackInfo

if TYPE_CHECKING:
    from roomcast.media.engine import JobContext, RecordingEngine

log = logging.getLogger(__name__)


class MixedRecording:
    """One room's mix, run by :class:`roomcast.media.engine.RecordingEngine`."""

    def __init__(self, ctx: JobContext, images: ImageFetcher | None = None) -> None:
        self.ctx = ctx
        self.task_id = ctx.task_id
        self.spec: RecordingSpec = ctx.spec
        self._any_file = False
        self.recorder = MixedRecorder(
            ctx.source,
            ctx.app_key,
            ctx.room_id,
            resolve_layout(ctx.spec.layout),
            settings_from_spec(ctx.spec),
            local_outputs(ctx.output_context(user_id="mix", stream="mix")),
            clock=ctx.clock,
            images=images.for_objects(ctx.objects) if images is not None else None,
            on_output_events=self._events,
        )
        self._ended: asyncio.Future[RecordingEnded] = asyncio.get_running_loop().create_future()
        self._watch: asyncio.Task[None] | None = None
        self._follow: list[asyncio.Task[None]] = []
        self._stop_task: asyncio.Task[RecordingEnded] | None = None
        self._stopping = False
        self.started_at = time.monotonic()
        self.last_publisher = self.started_at

    def _events(self, events: list[Any]) -> None:
        if any(isinstance(e, FileStarted) for e in events):
            self._any_file = True
        self.ctx.emit(events)

    def _publishing(self) -> bool:
        """Whether an admitted user publishes in any room of the mix."""
        users = self.spec.users
        for _, room_id in self.recorder.rooms:
            for t in self.ctx.source.list_tracks(self.ctx.app_key, room_id):
                rule = users.audio if t.media == "audio" else users.video
                if rule.admits(t.user_id):
                    return True
        return False

    async def start(self) -> None:
        self.ctx.emitter.start()
        await self.recorder.start()
        self._watch = asyncio.create_task(self._watchdog(), name=f"mix-watch {self.task_id}")
        for _, room_id in self.recorder.rooms:
            sub = self.ctx.source.events.subscribe(
                room=(self.ctx.app_key, room_id), types=(TrackPublished, TrackUnpublished)
            )
            self._follow.append(asyncio.create_task(self._follow_room(sub), name=f"mix-follow {room_id}"))

    async def _follow_room(self, sub: EventSubscription) -> None:
        """(Un)publishing in a mixed room re-reads the track lists at once (the mixer also
        polls them)."""
        try:
            async for _ in sub:
                self.recorder.users_changed()
        finally:
            sub.close()

    async def _watchdog(self) -> None:
        lim = self.spec.limits
        while not self._stopping:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            if self._publishing():
                self.last_publisher = now
            reason: EndReason | None = None
            if self.recorder.error is not None:
                reason = EndReason.ERROR
            elif not self._any_file and now - self.started_at >= lim.start_timeout and not self._publishing():
                reason = EndReason.NO_STREAM
            elif now - self.last_publisher >= lim.idle_timeout and now - self.started_at >= lim.idle_timeout:
                reason = EndReason.IDLE
            elif lim.max_duration and now - self.started_at >= lim.max_duration:
                reason = EndReason.MAX_DURATION
            if reason is not None:
                self._stop_task = asyncio.create_task(self.stop(reason), name=f"mix-stop {self.task_id}")
                return

    async def stop(self, reason: EndReason = EndReason.STOPPED) -> RecordingEnded:
        if self._stopping:
            return await asyncio.shield(self._ended)
        self._stopping = True
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        for task in self._follow:
            task.cancel()
        error: str | None = None
        try:
            await self.recorder.stop(drain=True)
        except Exception as exc:
            log.exception("mixed recording %s failed while stopping", self.task_id)
            error = repr(exc)
        await self.ctx.emitter.drain()
        if self.ctx.emitter.failed:
            error = "; ".join(e for e in (error, self.ctx.emitter.failed) if e)
        ended = RecordingEnded(
            task_id=self.task_id,
            reason=EndReason.ERROR if error and reason is EndReason.STOPPED else reason,
            files=tuple(self.ctx.emitter.files),
            error=error,
        )
        await self.ctx.emitter._notify(ended)
        if not self._ended.done():
            self._ended.set_result(ended)
        return ended

    async def wait(self) -> RecordingEnded:
        return await asyncio.shield(self._ended)

    async def update(self, *, users: UserSelection | None = None, layout: LayoutRef | None = None) -> None:
        if self._stopping:
            return
        if users is not None:
            self.spec = replace(self.spec, users=users)
            self.ctx.spec = self.spec
            self.recorder.settings = replace(
                self.recorder.settings, audio_users=users.audio.admits, video_users=users.video.admits
            )
            self.recorder.users_changed()
        if layout is not None:
            self.spec = replace(self.spec, layout=layout)
            self.ctx.spec = self.spec
            self.recorder.update_layout(resolve_layout(layout))

    def estimated_cost(self) -> float:
        return self.ctx.cost.mixed


COMPOSITE_SOURCES = 4
"""Sources whose decoding the composite figure already includes (a 4-up mix)."""
DECODE_VIDEO = 1 / 48
"""Cores to decode one 360p15 stream: a core receives ~24 streams with decoding, ~48 without
(spec/stack-measurements)."""


def mixed_cost(spec: RecordingSpec, tracks: list[TrackInfo]) -> float:
    """CPU cores for one composite: 0.4 for 720p30 at veryfast (camera-like content, spec/
    stack-measurements §3), scaled by the output pixel rate, plus decoding for every admitted
    video track beyond a 4-up mix.  ``tracks`` are those of every room the mix includes (the
    engine lists ``spec.extra_rooms`` too)."""
    pixels = spec.video.width * spec.video.height * spec.video.fps
    composite = max(0.05, 0.4 * pixels / (1280 * 720 * 30))
    if not spec.records_video:
        return composite
    videos = sum(1 for t in tracks if t.media == "video" and spec.users.video.admits(t.user_id))
    return composite + DECODE_VIDEO * max(0, videos - COMPOSITE_SOURCES)


def register_mixed_mode(engine: RecordingEngine, images: ImageFetcher | None = None) -> None:
    """Mixed mode for ``engine``; ``images`` fetches the layouts' images (None: no images)."""
    engine.register_mode(RecordingMode.MIXED, lambda ctx: MixedRecording(ctx, images), mixed_cost)
