"""A speaker's audio to sentences: Opus packets from the SFU -> 16 kHz PCM -> VAD -> ASR.

:class:`SpeechInput` is the CPU part, confined to one worker thread; :class:`Listener` reads a
published track in-process (``RoomManager.subscribe_track``, as recorders do) and hands packets to
that thread, so the event loop only moves bytes. Final texts are made apart (the robot's
recognition thread, or a remote endpoint) and delivered in order by a second task, so a slow
recognition never holds up the packets (and so the VAD) of what is said next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import av

from roomcast.ai import vad
from roomcast.ai.asr import StreamingRecognizer
from roomcast.background import Background
from roomcast.media.codecs import OpusDecoder
from roomcast.rtc.forwarder import TrackEnded
from roomcast.rtc.room import RoomManager
from roomcast.rtc.track import TrackKind

log = logging.getLogger("roomcast.ai.listen")

PARTIAL_EVERY_MS = 1000
CATCH_UP_PACKETS = 15
"""When the listener is this far behind (300 ms), interim recognition pauses until it caught up:
under load the interim texts thin out, the audio path and the final texts stay whole."""


@dataclass(frozen=True)
class SpeechStarted:
    n: int  # the speaker's utterance number
    start_ms: float


@dataclass(frozen=True)
class Partial:
    n: int
    text: str
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Final:
    """An utterance ended; ``text`` is filled in by the recognizer of final texts."""

    n: int
    start_ms: float
    end_ms: float
    text: str | None
    pcm: bytes


SpeechEvent = SpeechStarted | Partial | Final


class SpeechInput:
    """Decode, resample, segment and (offline) recognize one speaker. Not thread-safe."""

    def __init__(self, *, silence_ms: int, offline: bool, first: int = 0) -> None:
        self._decoder = OpusDecoder()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=vad.RATE)
        self._segmenter = vad.Segmenter(silence_ms=silence_ms)
        self._asr = StreamingRecognizer() if offline else None
        self._utterance = bytearray()
        self._last_partial_ms = 0.0
        self._start_ms = 0.0
        self._n = first  # utterances numbered on from ``first`` (a track published again)
        self._interim = True

    @property
    def voiced_ms(self) -> float:
        return self._segmenter.voiced_ms

    def feed(self, data: bytes, at_ms: float, interim: bool = True) -> list[SpeechEvent]:
        self._interim = interim
        pcm = bytearray()
        for frame in self._decoder.decode(data):
            for out in self._resampler.resample(frame):
                pcm += bytes(out.planes[0])[: out.samples * 2]
        return self._segment(bytes(pcm), at_ms) if pcm else []

    def flush(self) -> list[SpeechEvent]:
        out: list[SpeechEvent] = []
        for ev in self._segmenter.flush():
            self._handle(ev, out)
        return out

    def _segment(self, pcm: bytes, at_ms: float) -> list[SpeechEvent]:
        out: list[SpeechEvent] = []
        for ev in self._segmenter.feed(pcm, at_ms):
            self._handle(ev, out)
        return out

    def _handle(self, ev: vad.VadEvent, out: list[SpeechEvent]) -> None:
        if isinstance(ev, vad.Started):
            self._utterance.clear()
            self._n += 1
            self._start_ms = self._last_partial_ms = ev.start_ms
            if self._asr is not None:
                self._asr.start()
            out.append(SpeechStarted(self._n, ev.start_ms))
        elif isinstance(ev, vad.Voice):
            self._utterance += ev.pcm
            if self._asr is not None and self._interim:
                self._asr.feed(ev.pcm)
                now = self._start_ms + len(self._utterance) / (vad.RATE * 2) * 1000
                if now - self._last_partial_ms >= PARTIAL_EVERY_MS:
                    self._last_partial_ms = now
                    text = self._asr.partial()
                    if text:
                        out.append(Partial(self._n, text, self._start_ms, now))
        else:
            if self._asr is not None:
                self._asr.end()
            out.append(Final(self._n, ev.start_ms, ev.end_ms, None, bytes(self._utterance)))
            self._utterance.clear()


SpeechHandler = Callable[[str, SpeechEvent], Awaitable[None]]


class Listener:
    """Follows one user's audio track in a room; each event goes to ``handler(user, event)``.

    Times are milliseconds since ``t0`` (a wall-clock time: the task's start)."""

    def __init__(
        self,
        manager: RoomManager,
        app_key: str,
        room_id: str,
        user_id: str,
        *,
        t0: float,
        executor: Executor,
        background: Background,
        silence_ms: int,
        offline: bool,
        handler: SpeechHandler,
        on_packet: Callable[[], None] | None = None,
        first: int = 0,
    ) -> None:
        self.manager = manager
        self.app_key, self.room_id, self.user_id = app_key, room_id, user_id
        self.t0 = t0
        self._executor = executor
        self._background = background
        self._input = SpeechInput(silence_ms=silence_ms, offline=offline, first=first)
        self._handler = handler
        self._on_packet = on_packet
        self.task: asyncio.Task[None] | None = None

    @property
    def voiced_ms(self) -> float:
        return self._input.voiced_ms

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            sub = self.manager.subscribe_track(
                self.app_key, self.room_id, self.user_id, TrackKind.AUDIO, maxsize=250, name="ai-listener"
            )
        except Exception:
            return  # unpublished meanwhile
        finals: asyncio.Queue[Final | None] = asyncio.Queue()
        deliver = self._background.spawn(f"finals-{self.user_id}", self._deliver(finals))
        try:
            while True:
                try:
                    pkt = await sub.recv()
                except TrackEnded:
                    break
                if self._on_packet is not None:
                    self._on_packet()
                at_ms = (pkt.wallclock - self.t0) * 1000
                interim = sub.backlog < CATCH_UP_PACKETS
                events: list[Any] = await loop.run_in_executor(
                    self._executor, self._input.feed, pkt.data, at_ms, interim
                )
                await self._dispatch(events, finals)
            await self._dispatch(await loop.run_in_executor(self._executor, self._input.flush), finals)
            finals.put_nowait(None)
            await deliver
        finally:
            sub.close()
            deliver.cancel()

    async def _dispatch(self, events: list[SpeechEvent], finals: asyncio.Queue[Final | None]) -> None:
        for ev in events:
            if isinstance(ev, Final):
                finals.put_nowait(ev)
            else:
                await self._handler(self.user_id, ev)

    async def _deliver(self, finals: asyncio.Queue[Final | None]) -> None:
        """Final texts, one after the other in the order they were spoken."""
        while (ev := await finals.get()) is not None:
            await self._handler(self.user_id, ev)

    def start(self) -> None:
        self.task = self._background.spawn(f"listen-{self.user_id}", self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
