"""Feedback: a relay's mix published back into a room as a robot participant.

The robot is an ordinary WebRTC participant (:class:`roomcast.rtc.client.RoomClient`) of this
node's own signalling, so browsers, recorders and other relays see it like any user.  Its video
is the relay's H.264 as encoded (aiortc packetizes the packets, no second encode); its audio is
the relay's AAC decoded to PCM and encoded to Opus by aiortc.  A keyframe request (PLI) from the
room reaches the mixer through ``wants_keyframe``.  A lost connection is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from roomcast.log import event
from roomcast.media.outputs import VIDEO_TIME_BASE, AudioParams, EncodedPacket
from roomcast.rtc import aiortc_compat as compat
from roomcast.rtc.client import RoomClient
from roomcast.rtc.track import TrackKind

log = logging.getLogger("roomcast.relay")

TokenFor = Callable[[str], Awaitable[str]]
"""A join token for a robot user id (in the relay's app)."""

QUEUE = 120


class _QueueTrack(MediaStreamTrack):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE)

    def offer(self, item: Any) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(item)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.queue.get()


def _aac_decoder(params: AudioParams) -> Any:
    # Raw AAC frames need the AudioSpecificConfig: an encoder with the relay's settings makes
    # the same one (AAC-LC) as the relay's encoder.
    enc: Any = av.CodecContext.create("aac", "w")
    enc.sample_rate = params.sample_rate
    enc.layout = "mono" if params.channels == 1 else "stereo"
    enc.format = "fltp"
    enc.bit_rate = params.bitrate
    enc.open()
    dec: Any = av.CodecContext.create("aac", "r")
    dec.extradata = enc.extradata
    return dec


class FeedbackPublisher:
    """One robot publishing the relay into one room; fed from the mixing thread."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        room_id: str,
        user_id: str,
        token_for: TokenFor,
        loop: asyncio.AbstractEventLoop,
        *,
        video: bool,
        audio: AudioParams | None,
    ) -> None:
        self.base_url = base_url
        self.app_key = app_key
        self.room_id = room_id
        self.user_id = user_id
        self._token_for = token_for
        self._loop = loop
        self.state = "connecting"
        self._video = _QueueTrack("video") if video else None
        self._audio = _QueueTrack("audio") if audio is not None else None
        self._audio_params = audio
        self._decoder = _aac_decoder(audio) if audio is not None else None
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=48_000) if audio else None
        self._samples = 0
        self._key_wanted = True
        self._closing = False
        self._task = loop.create_task(self._run(), name=f"feedback {room_id}/{user_id}")

    # -- fed from the mixing thread -------------------------------------------------------------
    @property
    def wants_keyframe(self) -> bool:
        if self._key_wanted and self.state == "connected":
            self._key_wanted = False
            return True
        return False

    def put(self, pkt: EncodedPacket) -> None:
        if not self._closing:
            self._loop.call_soon_threadsafe(self._on_packet, pkt)

    def _on_packet(self, pkt: EncodedPacket) -> None:
        if pkt.kind == "video" and self._video is not None:
            out = av.Packet(pkt.data)
            out.pts = out.dts = pkt.pts
            out.time_base = VIDEO_TIME_BASE
            self._video.offer(out)
        elif pkt.kind == "audio" and self._audio is not None and self._decoder is not None:
            assert self._resampler is not None
            try:
                frames = self._decoder.decode(av.Packet(pkt.data))
            except av.error.FFmpegError:
                return
            for frame in frames:
                for f in self._resampler.resample(frame):
                    f.pts = self._samples
                    f.time_base = Fraction(1, 48_000)
                    self._samples += f.samples
                    self._audio.offer(f)

    # -- the connection -------------------------------------------------------------------------
    def _want_key(self) -> None:
        self._key_wanted = True

    async def _run(self) -> None:
        delay = 1.0
        while not self._closing:
            client: RoomClient | None = None
            started = time.monotonic()
            try:
                token = await self._token_for(self.user_id)
                client = RoomClient(
                    self.base_url,
                    app_id=self.app_key,
                    room_id=self.room_id,
                    user_id=self.user_id,
                    token=token,
                )
                await client.connect()
                tracks: dict[TrackKind, MediaStreamTrack] = {}
                if self._video is not None:
                    tracks[TrackKind.CAMERA] = self._video
                if self._audio is not None:
                    tracks[TrackKind.AUDIO] = self._audio
                await client.publish(tracks, video_codecs=("video/H264",))
                sender = client._pub_transceivers.get(TrackKind.CAMERA)
                if sender is not None:
                    compat.on_keyframe_request(sender.sender, lambda *_: self._want_key())
                self.state = "connected"
                self._key_wanted = True
                event(
                    log, "relay.feedback_state", room_id=self.room_id, user_id=self.user_id, state="connected"
                )
                await client.closed.wait()
                reason = client.close_reason or "closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.close()
            if self._closing:
                break
            self.state = "reconnecting"
            event(
                log,
                "relay.feedback_state",
                level=logging.WARNING,
                room_id=self.room_id,
                user_id=self.user_id,
                state="reconnecting",
                error=reason,
            )
            if time.monotonic() - started > 4 * delay:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)

    async def close(self) -> None:
        self._closing = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self.state = "closed"
