"""A robot's voice: PCM turned into Opus packets off the event loop, published in-process.

:class:`VoiceTrack` is the source of a track published with ``Room.add_local_track``; it sends a
20 ms packet every 20 ms (silence when it has nothing to say), so subscribers get a steady stream.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import Executor
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48000
FRAME = 960  # 20 ms


def encode_opus(samples: np.ndarray[Any, np.dtype[np.int16]]) -> list[bytes]:
    """Mono s16 48 kHz -> 20 ms Opus packets (the tail padded with silence)."""
    enc: Any = av.CodecContext.create("libopus", "w")
    enc.sample_rate = RATE
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = 32000
    enc.time_base = Fraction(1, RATE)
    enc.open()
    n = -(-len(samples) // FRAME) * FRAME
    padded = np.zeros(n + FRAME * 3, np.int16)  # 3 frames more flush the encoder's look-ahead
    padded[: len(samples)] = samples
    out: list[bytes] = []
    for i in range(0, len(padded), FRAME):
        frame = av.AudioFrame.from_ndarray(padded[i : i + FRAME].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i
        out.extend(bytes(p) for p in enc.encode(frame))
    out.extend(bytes(p) for p in enc.encode(None))
    return out


_SILENCE: bytes | None = None


def silence_packet() -> bytes:
    global _SILENCE
    if _SILENCE is None:
        _SILENCE = encode_opus(np.zeros(FRAME * 4, np.int16))[-1]
    return _SILENCE


class VoiceTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, executor: Executor) -> None:
        super().__init__()
        self._executor = executor
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()  # (utterance, packet)
        self._pts = 0
        self._start: float | None = None
        self._silence = silence_packet()
        self.playing: int | None = None  # the utterance being played
        self._done = asyncio.Event()
        self._next_id = 0
        self.sent_voice = 0

    async def say(self, samples: np.ndarray[Any, np.dtype[np.int16]]) -> int:
        """Queue speech (mono s16 48 kHz); returns its id. Encoding runs in the executor."""
        packets = await asyncio.get_running_loop().run_in_executor(self._executor, encode_opus, samples)
        self._next_id += 1
        uid = self._next_id
        self._queue.extend((uid, p) for p in packets)
        self._done.clear()
        return uid

    def interrupt(self) -> bool:
        """Stop talking now; True if something was cut."""
        cut = bool(self._queue)
        self._queue.clear()
        self.playing = None
        self._done.set()
        return cut

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    async def drained(self) -> None:
        """Wait until everything queued was played (or cut)."""
        while self._queue:
            self._done.clear()
            await self._done.wait()

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._pts / RATE
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 0.2:  # the loop stalled: skip ahead rather than burst
            self._start = now - self._pts / RATE
        if self._queue:
            self.playing, data = self._queue.popleft()
            self.sent_voice += 1
            if not self._queue:
                self.playing = None
                self._done.set()
        else:
            data = self._silence
        packet = av.Packet(data)
        packet.pts = packet.dts = self._pts
        packet.time_base = Fraction(1, RATE)
        self._pts += FRAME
        return packet
