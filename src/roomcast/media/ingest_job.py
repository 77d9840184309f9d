"""One ingest job: an in-process participant that publishes what an :class:`IngestPipeline` plays.

The pipeline runs in a thread of its own (one per job, so slow sources or encoders never wait
for a shared pool); its packets cross to the event loop with ``call_soon_threadsafe`` and enter
the room through :class:`roomcast.rtc.local.LocalPublisher`. Each packet carries a sender report
that maps its timestamp to the wall clock of the output timeline, shared by audio and video, so
recorders align the two tracks as they do a browser's.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import av

from roomcast.domain.ingest import IngestSpec
from roomcast.media.ingest import (
    AUDIO_TIME_BASE,
    H264,
    OPUS,
    VIDEO_TIME_BASE,
    VP8,
    Controls,
    IngestPipeline,
    Outcome,
    OutPacket,
    SourceError,
)
from roomcast.rtc.aiortc_compat import PacketInfo
from roomcast.rtc.events import LeaveReason
from roomcast.rtc.local import LocalPublisher, LocalTrack
from roomcast.rtc.room import RoomManager
from roomcast.rtc.track import SenderReport, TrackKind

READY_WAIT_S = 2.0
UrlCheck = Callable[[str], Coroutine[Any, Any, None]]
"""Raises (any exception, its message is reported) if the URL may not be fetched now."""


_LEFT = {
    LeaveReason.DISMISSED: "dismissed",
    LeaveReason.REPLACED: "replaced",
    LeaveReason.SERVER_SHUTDOWN: "moved",  # the room closed here (several nodes: placed elsewhere)
}


@dataclass(frozen=True)
class JobEnd:
    reason: str  # completed | max_duration | stopped | failed | removed | dismissed | replaced | moved
    error: str | None = None


class IngestJob:
    def __init__(
        self,
        sfu: RoomManager,
        app_key: str,
        room_id: str,
        user_id: str,
        spec: IngestSpec,
        *,
        check_url: UrlCheck | None = None,
        retries: int = 3,
        elapsed_s: float = 0.0,
        media: tuple[str, ...] = ("audio", "video"),
        ready_wait_s: float = READY_WAIT_S,
    ) -> None:
        self.sfu = sfu
        self._media = media
        self._ready_wait_s = ready_wait_s
        self.publisher = LocalPublisher(sfu, app_key, room_id, user_id)
        self.controls = Controls(spec)
        self.spec = spec
        self._check_url = check_url
        self._retries = retries
        self._elapsed_s = elapsed_s
        self.video_codec = H264 if H264 in sfu.config.video_codecs else VP8
        self.pipeline: IngestPipeline | None = None
        self.joined = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tracks: dict[str, LocalTrack] = {}
        self._publishing: set[asyncio.Task[None]] = set()
        self._wall0 = 0.0

    # ------------------------------------------------------------- control

    def switch(self, url: str) -> None:
        self.controls.switch(url)

    def set_volume(self, volume: int) -> None:
        self.controls.set_volume(volume)

    def set_paused(self, paused: bool) -> None:
        self.controls.set_paused(paused)

    def stop(self) -> None:
        self.controls.stop()

    # ----------------------------------------------------------------- run

    async def run(self) -> JobEnd:
        """Join, play until the media ends, the job is stopped or the user is removed; leave."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        p = await self.publisher.join()
        self.joined.set()
        for media in self._media:
            self._track(media)
        await self._subscribers_ready()
        pipeline = IngestPipeline(
            self.spec,
            self.controls,
            self._emit,
            video_codec=self.video_codec,
            check_url=self._check_in_thread if self._check_url is not None else None,
            retries=self._retries,
            elapsed_s=self._elapsed_s,
        )
        self.pipeline = pipeline
        self._wall0 = time.time() - pipeline.now()
        done: asyncio.Future[Outcome] = loop.create_future()

        def target() -> None:
            try:
                result = pipeline.run()
            except BaseException as exc:  # reported to the loop, never lost in the thread
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, result, None)

        thread = threading.Thread(target=target, name=f"ingest {p.room.room_id}/{p.user_id}", daemon=True)
        thread.start()
        left: asyncio.Future[Any] = asyncio.ensure_future(p.closed.wait())
        try:
            await asyncio.wait([done, left], return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                # The user was removed, replaced or the room dismissed: the task ends with it.
                self.controls.stop()
                with contextlib.suppress(Exception):
                    await asyncio.shield(done)
                return JobEnd(_LEFT.get(p.leave_reason or LeaveReason.REMOVED, "removed"))
            outcome = done.result()
            return JobEnd(outcome.reason, outcome.error)
        except asyncio.CancelledError:
            self.controls.stop()
            with contextlib.suppress(Exception):
                await asyncio.shield(done)
            raise
        finally:
            left.cancel()
            for t in list(self._publishing):
                t.cancel()
            await self.publisher.leave(LeaveReason.LEFT, "ingest ended")

    def _check_in_thread(self, url: str) -> None:
        assert self._loop is not None and self._check_url is not None
        fut = asyncio.run_coroutine_threadsafe(self._check_url(url), self._loop)
        try:
            fut.result(timeout=30)
        except Exception as exc:
            raise SourceError(str(exc), permanent=True) from None

    # -------------------------------------------------------------- output

    def _emit(self, out: OutPacket) -> None:
        """Pipeline thread: hand a due packet to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, out)

    def _track(self, media: str) -> LocalTrack | None:
        """The track of ``media``, published on first use (a new URL may bring a new kind)."""
        track = self._tracks.get(media)
        if track is None:
            if self.publisher.left:
                return None
            track = self._tracks[media] = LocalTrack(media)
            kind = TrackKind.CAMERA if media == "video" else TrackKind.AUDIO
            codec = self.video_codec if media == "video" else OPUS
            task = asyncio.ensure_future(self._publish(kind, codec, track))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return track

    async def _subscribers_ready(self) -> None:
        """Give the room's subscribers a moment to attach before the first frame: forwarded H.264
        cannot make a keyframe on demand, so a subscriber that attaches late waits for the
        source's next one."""
        p = self.publisher.participant
        if p is None or self._ready_wait_s <= 0:
            return
        deadline = time.monotonic() + self._ready_wait_s
        while time.monotonic() < deadline and p.active:
            await asyncio.sleep(0.02)
            others = [
                q
                for q in p.room.participants.values()
                if q is not p and q.signal is not None and q.auto_subscribe
            ]
            if self._publishing:
                continue
            fwds = [pt.forwarder for pt in p.published.values()]
            if fwds and all(len(f.subscriptions) >= len(others) for f in fwds):
                return

    def _deliver(self, out: OutPacket) -> None:
        track = self._track(out.media)
        if track is None:
            return
        video = out.media == "video"
        tb = VIDEO_TIME_BASE if video else AUDIO_TIME_BASE
        packet = av.Packet(out.data)
        packet.pts = out.pts
        packet.dts = out.pts
        packet.time_base = tb
        packet.is_keyframe = out.keyframe
        packet.opaque = PacketInfo(
            codec=self.video_codec if video else OPUS,
            arrival=time.monotonic(),
            wallclock=time.time(),
            sender_report=SenderReport(ntp_time=self._wall0 + float(out.pts * tb), pts=out.pts),
        )
        track.push(packet)

    async def _publish(self, kind: TrackKind, codec: str, track: LocalTrack) -> None:
        on_keyframe = self.controls.request_keyframe if kind is TrackKind.CAMERA else None
        await self.publisher.publish(kind, codec, track, _requester(on_keyframe))


def _requester(callback: Callable[[], None] | None) -> Callable[[], Awaitable[bool]] | None:
    if callback is None:
        return None

    async def request() -> bool:
        callback()
        return True

    return request


def _settle(fut: asyncio.Future[Outcome], result: Outcome | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    elif result is not None:
        fut.set_result(result)
