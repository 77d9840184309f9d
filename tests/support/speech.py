"""Known speech for AI tests: espeak-ng sentences played as a live audio track, and a word-overlap
measure of what a recognizer made of them."""

from __future__ import annotations

import asyncio
import fractions
import re
import time
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from roomcast.ai.tts import espeak

RATE = 48000
FRAME = 960
VOICE = "en-us+f3"  # the voice pocketsphinx's en-US model follows best (measured in stack-measurements)


def speech(text: str) -> np.ndarray[Any, np.dtype[np.int16]]:
    return espeak(text, VOICE, 1.0)


def silence(seconds: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.zeros(int(seconds * RATE), np.int16)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def overlap(expected: str, got: str) -> float:
    """Share of the expected words found in ``got`` (each counted once)."""
    want = words(expected)
    have = list(words(got))
    found = 0
    for w in want:
        if w in have:
            have.remove(w)
            found += 1
    return found / len(want) if want else 0.0


class SpeechTrack(MediaStreamTrack):
    """Plays a script (samples queued with :meth:`play`) in real time, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, np.int16)
        self._pts = 0
        self._start: float | None = None
        self.played_at: list[float] = []  # wall-clock start of each played clip

    def play(self, samples: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        self._pending = np.concatenate([self._pending, samples])
        self._mark = True

    _mark = False

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._pts / RATE
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._mark:
            self._mark = False
            self.played_at.append(time.time())
        chunk = self._pending[:FRAME]
        self._pending = self._pending[FRAME:]
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), np.int16)])
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME
        return frame
