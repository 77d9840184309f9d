"""Fan-out of one publisher track to many consumers, without decoding.

One task reads the publisher's (passthrough) track; every consumer - an
outbound WebRTC track or an in-process recorder - gets its own bounded
:class:`PacketSubscription`.  A slow consumer only hurts itself: video
subscriptions that overflow are flushed and resume at the next keyframe (and
ask for one); audio subscriptions drop their oldest packets.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .aiortc_compat import PacketInfo, video_resolution
from .errors import RtcError
from .track import MediaPacket, TrackInfo

log = logging.getLogger(__name__)


class TrackEnded(RtcError):
    """The publisher track ended or the subscription was closed."""

    code = "track_ended"


KeyframeRequester = Callable[[], Awaitable[bool]]


class PacketSubscription:
    """A consumer's view of one published track (the "source interface").

    ``await recv()`` (or ``async for``) yields :class:`MediaPacket` in arrival
    order.  For video the first packet is always a keyframe.  ``close()``
    detaches from the track; after the track ends, ``recv()`` raises
    :class:`TrackEnded`.
    """

    def __init__(self, forwarder: TrackForwarder, maxsize: int, name: str) -> None:
        self._forwarder = forwarder
        self._queue: collections.deque[MediaPacket] = collections.deque()
        self._maxsize = maxsize
        self._wakeup = asyncio.Event()
        self.name = name
        self.is_video = forwarder.info.media == "video"
        self.need_keyframe = self.is_video
        self.closed = False
        self.delivered = 0
        self.delivered_bytes = 0
        self.dropped = 0

    @property
    def track(self) -> TrackInfo:
        return self._forwarder.info

    @property
    def backlog(self) -> int:
        """Packets queued and not read yet (how far the consumer is behind)."""
        return len(self._queue)

    def _push(self, pkt: MediaPacket) -> None:
        if self.closed:
            return
        if self.is_video:
            if self.need_keyframe:
                if not pkt.keyframe:
                    self.dropped += 1
                    return
                self.need_keyframe = False
            elif len(self._queue) >= self._maxsize:
                # Overflow: whatever is queued is stale; skip to the next keyframe.
                self.dropped += len(self._queue)
                self._queue.clear()
                if not pkt.keyframe:
                    self.dropped += 1
                    self.need_keyframe = True
                    self._forwarder.request_keyframe()
                    return
        elif len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(pkt)
        self._wakeup.set()

    def _restart(self) -> None:
        """Forget queued media; video waits for a keyframe (used when forwarding resumes)."""
        self.dropped += len(self._queue)
        self._queue.clear()
        self.need_keyframe = self.is_video

    def _end(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def recv(self) -> MediaPacket:
        while not self._queue:
            if self.closed:
                raise TrackEnded(self.name)
            self._wakeup.clear()
            await self._wakeup.wait()
        self.delivered += 1
        pkt = self._queue.popleft()
        self.delivered_bytes += pkt.packet.size
        return pkt

    def __aiter__(self) -> AsyncIterator[MediaPacket]:
        return self

    async def __anext__(self) -> MediaPacket:
        try:
            return await self.recv()
        except TrackEnded:
            raise StopAsyncIteration from None

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (rate-limited per track)."""
        self._forwarder.request_keyframe()

    def close(self) -> None:
        self._forwarder.remove_subscription(self)
        self._end()

    async def __aenter__(self) -> PacketSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class TrackForwarder:
    """Reads one passthrough publisher track and fans it out."""

    def __init__(
        self,
        info: TrackInfo,
        source: MediaStreamTrack,
        request_keyframe: KeyframeRequester | None,
        *,
        min_keyframe_interval: float = 0.5,
    ) -> None:
        self.info = info
        self._source = source
        self._requester = request_keyframe
        self._min_interval = min_keyframe_interval
        self._subs: list[PacketSubscription] = []
        self._task: asyncio.Task[None] | None = None
        self._last_request = -1e9
        self._pending_request: asyncio.TimerHandle | None = None
        self._muted = False
        self._blocked = False
        self.ended = asyncio.Event()
        # counters (read by the stats sampler)
        self.packets = 0
        self.bytes = 0
        self.keyframes = 0
        self.keyframe_requests_sent = 0
        self.keyframe_requests_asked = 0
        self.width: int | None = None
        self.height: int | None = None
        self.last_arrival: float | None = None

    # -- lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"forward {self.info.track_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._finish()

    def _finish(self) -> None:
        if self._pending_request is not None:
            self._pending_request.cancel()
            self._pending_request = None
        for sub in self._subs:
            sub._end()
        self._subs.clear()
        self.ended.set()

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._source.recv()
                if not isinstance(frame, av.Packet):
                    log.warning("%s: got a decoded frame; passthrough not enabled?", self.info.track_id)
                    continue
                self._on_packet(frame)
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("forwarder %s failed", self.info.track_id)
        finally:
            self._finish()

    def _on_packet(self, packet: av.Packet[Any]) -> None:
        meta = packet.opaque
        sender_report = None
        if isinstance(meta, PacketInfo):
            arrival, wallclock = meta.arrival, meta.wallclock
            sender_report = meta.sender_report
        else:
            arrival, wallclock = time.monotonic(), time.time()
        keyframe = bool(packet.is_keyframe)
        pts = packet.pts if packet.pts is not None else 0
        time_base = packet.time_base if packet.time_base is not None else Fraction(1, 90000)
        self.packets += 1
        self.bytes += packet.size
        self.last_arrival = arrival
        if keyframe and self.info.media == "video":
            self.keyframes += 1
            res = video_resolution(self.info.codec, bytes(packet))
            if res is not None:
                self.width, self.height = res
        if self._muted or self._blocked:
            return
        pkt = MediaPacket(
            packet=packet,
            track=self.info,
            pts=pts,
            time_base=time_base,
            arrival=arrival,
            wallclock=wallclock,
            keyframe=keyframe,
            sender_report=sender_report,
        )
        for sub in self._subs:
            sub._push(pkt)

    # -- consumers

    def subscribe(self, *, maxsize: int, name: str = "") -> PacketSubscription:
        if self.ended.is_set():
            raise TrackEnded(self.info.track_id)
        sub = PacketSubscription(self, maxsize, name or self.info.track_id)
        self._subs.append(sub)
        if sub.is_video:
            self.request_keyframe()
        return sub

    def remove_subscription(self, sub: PacketSubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscriptions(self) -> list[PacketSubscription]:
        return list(self._subs)

    # -- gating (mute / moderation block)

    @property
    def forwarding(self) -> bool:
        return not (self._muted or self._blocked)

    def set_muted(self, muted: bool) -> None:
        self._set_gate(muted=muted)

    def set_blocked(self, blocked: bool) -> None:
        self._set_gate(blocked=blocked)

    def _set_gate(self, *, muted: bool | None = None, blocked: bool | None = None) -> None:
        was = self.forwarding
        if muted is not None:
            self._muted = muted
        if blocked is not None:
            self._blocked = blocked
        if self.forwarding and not was:
            for sub in self._subs:
                sub._restart()
            if self.info.media == "video":
                self.request_keyframe(force=True)

    # -- keyframes

    def request_keyframe(self, *, force: bool = False) -> None:
        """Ask the publisher for a keyframe, at most once per ``min_keyframe_interval``.

        A request inside the interval is coalesced into one sent when the
        interval ends, so it is never lost.
        """
        if self._requester is None or self.info.media != "video" or self.ended.is_set():
            return
        self.keyframe_requests_asked += 1
        now = time.monotonic()
        wait = self._last_request + self._min_interval - now
        if force or wait <= 0:
            self._send_request()
        elif self._pending_request is None:
            loop = asyncio.get_running_loop()
            self._pending_request = loop.call_later(wait, self._send_request)

    def _send_request(self) -> None:
        if self._pending_request is not None:
            self._pending_request.cancel()
            self._pending_request = None
        if self._requester is None or self.ended.is_set():
            return
        self._last_request = time.monotonic()
        self.keyframe_requests_sent += 1
        task = asyncio.ensure_future(self._requester())
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("keyframe request failed: %s", task.exception())
