"""Voice activity detection: 16 kHz mono PCM cut into utterances with webrtcvad (packaged model).

Not thread-safe: one :class:`Segmenter` per speaker, used from one worker thread.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import webrtcvad

RATE = 16000
FRAME_MS = 30
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
PREROLL_MS = 300


@dataclass(frozen=True)
class Started:
    start_ms: float


@dataclass(frozen=True)
class Voice:
    """Audio of the current utterance (with its pre-roll at the start)."""

    pcm: bytes


@dataclass(frozen=True)
class Ended:
    start_ms: float
    end_ms: float


VadEvent = Started | Voice | Ended


class Segmenter:
    """Speech starts after ``start_ms`` of mostly voiced frames and ends after ``silence_ms`` of
    silence (or at ``max_utterance_ms``). ``voiced_ms`` is how long the current utterance has been
    spoken so far (what an interruption threshold reads)."""

    def __init__(
        self,
        *,
        silence_ms: int = 1000,
        aggressiveness: int = 2,
        start_ms: int = 150,
        max_utterance_ms: int = 20000,
    ) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._silence_frames = max(1, silence_ms // FRAME_MS)
        self._start_frames = max(1, start_ms // FRAME_MS)
        self._max_frames = max_utterance_ms // FRAME_MS
        self._buf = bytearray()
        self._pos_ms = 0.0  # time of the next buffered frame, in the caller's clock
        self._ring: collections.deque[tuple[bytes, bool]] = collections.deque(
            maxlen=max(self._start_frames, PREROLL_MS // FRAME_MS)
        )
        self.in_speech = False
        self._start_ms = 0.0
        self._silent = 0
        self._frames = 0
        self.voiced_ms = 0.0

    def feed(self, pcm: bytes, at_ms: float) -> list[VadEvent]:
        """Add ``pcm`` (s16le mono 16 kHz) that began at ``at_ms``; returns what happened."""
        if not self._buf:
            self._pos_ms = at_ms
        self._buf += pcm
        out: list[VadEvent] = []
        while len(self._buf) >= FRAME_BYTES:
            frame = bytes(self._buf[:FRAME_BYTES])
            del self._buf[:FRAME_BYTES]
            self._frame(frame, self._pos_ms, out)
            self._pos_ms += FRAME_MS
        return out

    def _frame(self, frame: bytes, at_ms: float, out: list[VadEvent]) -> None:
        voiced = self._vad.is_speech(frame, RATE)
        if not self.in_speech:
            self._ring.append((frame, voiced))
            if sum(v for _, v in self._ring) >= self._start_frames:
                self.in_speech = True
                self._start_ms = at_ms - (len(self._ring) - 1) * FRAME_MS
                self._silent = 0
                self._frames = len(self._ring)
                self.voiced_ms = float(sum(v for _, v in self._ring) * FRAME_MS)
                out.append(Started(self._start_ms))
                out.append(Voice(b"".join(f for f, _ in self._ring)))
                self._ring.clear()
            return
        self._frames += 1
        out.append(Voice(frame))
        if voiced:
            self._silent = 0
            self.voiced_ms += FRAME_MS
        else:
            self._silent += 1
        if self._silent >= self._silence_frames or self._frames >= self._max_frames:
            self.in_speech = False
            self.voiced_ms = 0.0
            end = at_ms + FRAME_MS - self._silent * FRAME_MS
            out.append(Ended(self._start_ms, max(end, self._start_ms + FRAME_MS)))

    def flush(self) -> list[VadEvent]:
        """End an utterance in progress (the track ended)."""
        if not self.in_speech:
            return []
        self.in_speech = False
        self.voiced_ms = 0.0
        return [Ended(self._start_ms, self._pos_ms)]
