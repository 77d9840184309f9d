"""The audio mixer of mixed recordings: decoded audio of many users in, one stream out.

:class:`AudioMixer` keeps one buffer per source on a common output timeline (sample index 0 is
the start of the recording) and produces the mix block by block (:meth:`AudioMixer.read`):

* **Resampling**: every source has its own ``av.AudioResampler`` to the output rate and channel
  layout (mono sources are spread to both channels), format ``fltp``.
* **Timing**: a pushed frame carries its start time on the output timeline (seconds).  Frames
  that follow on are appended back to back, so network jitter never shifts samples; only when
  the given time and the buffer end disagree by more than ``resync_ms`` (a real gap, a restart,
  or accumulated clock drift) is the source moved: the gap is filled with silence, or the
  overlapping samples are dropped.  Samples that arrive after their time has been mixed are
  dropped.  A user who joins late therefore simply starts at their time, and the output stays
  continuous whoever comes and goes.
* **No clicks**: every change of a source's contribution is a gain ramp of ``fade_ms``: a
  source fades in when it starts (or resumes after a gap), fades out at the end of its data when
  it stops inside a block, and fades in/out when the "N loudest" selection changes.
* **N loudest**: with ``max_sources`` set, only the N sources with the highest short-term level
  (RMS smoothed over ``level_ms``) are heard; a selected source keeps its place until another
  one is 3 dB louder (hysteresis), so the selection does not flicker.
* **Clipping protection**: the sum passes a soft limiter, linear up to ``LIMIT_KNEE`` (-1.9 dBFS)
  of full scale and smoothly saturating towards full scale above it, so the output never clips.
* **Channels**: a mono source is copied to both channels of a stereo mix at full level (not
  the -3 dB of FFmpeg's upmix); a stereo source in a mono mix is downmixed by FFmpeg.

All methods are thread-safe (decoder threads push, the mixing thread reads).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import av
import numpy as np
import numpy.typing as npt

__all__ = ["LIMIT_KNEE", "AudioMixer", "soft_limit"]

F32Array = npt.NDArray[np.float32]

LIMIT_KNEE: Final = 0.8
"""Below this absolute sample value the limiter is exactly linear."""


def soft_limit(x: F32Array, knee: float = LIMIT_KNEE) -> F32Array:
    """Identity below ``knee``; above it, ``knee + (1 - knee) * tanh(excess / (1 - knee))``.

    Continuous with a continuous slope at the knee, and never beyond full scale (1.0)."""
    a = np.abs(x)
    over = a > knee
    if not over.any():
        return x
    head = 1.0 - knee
    out = x.copy()
    ex = a[over] - knee
    out[over] = np.sign(x[over]) * (knee + head * np.tanh(ex / head))
    return out


@dataclass(slots=True)
class _Source:
    buf: F32Array
    resampler: av.AudioResampler | None = None
    spread: bool = False
    """Mono input in a stereo mix: resample as mono, then copy to both channels."""
    start: int | None = None
    """Output sample index of ``buf[:, 0]`` (None until the first frame)."""
    gain: float = 0.0
    selected: bool = True
    level: float = 0.0
    removing: bool = False
    pushed: int = 0
    dropped: int = 0
    resyncs: int = 0


class AudioMixer:
    """Mixes many sources into one ``fltp`` stream of ``sample_rate`` / ``channels``.

    ``max_sources``: mix only the N loudest (None: everyone).  ``fade_ms``: length of every gain
    ramp.  ``resync_ms``: how far a frame's time may be from the buffer end before the source is
    re-positioned.  ``max_buffer_ms``: a source never buffers more than this ahead of the output
    (older samples beyond it are dropped).
    """

    def __init__(
        self,
        sample_rate: int = 48_000,
        channels: int = 2,
        *,
        max_sources: int | None = None,
        fade_ms: float = 10.0,
        level_ms: float = 300.0,
        resync_ms: float = 60.0,
        max_buffer_ms: float = 3000.0,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        if max_sources is not None and max_sources < 1:
            raise ValueError("max_sources must be >= 1")
        self.sample_rate = sample_rate
        self.channels = channels
        self.layout = "mono" if channels == 1 else "stereo"
        self.max_sources = max_sources
        self.fade_samples = max(1, round(sample_rate * fade_ms / 1000))
        self.level_ms = level_ms
        self.resync_samples = round(sample_rate * resync_ms / 1000)
        self.max_buffer = round(sample_rate * max_buffer_ms / 1000)
        self.time_base = Fraction(1, sample_rate)
        self.position = 0
        """Output sample index of the next :meth:`read`."""
        self._sources: dict[Hashable, _Source] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ sources

    @property
    def sources(self) -> list[Hashable]:
        with self._lock:
            return [k for k, s in self._sources.items() if not s.removing]

    def add_source(self, key: Hashable) -> None:
        """Register a source (also done implicitly by the first :meth:`push`)."""
        with self._lock:
            self._source(key)

    def _source(self, key: Hashable) -> _Source:
        src = self._sources.get(key)
        if src is None or src.removing:
            src = _Source(np.zeros((self.channels, 0), np.float32))
            self._sources[key] = src
        return src

    def remove_source(self, key: Hashable) -> None:
        """The source is gone: what it has buffered is still played, fading out at its end."""
        with self._lock:
            src = self._sources.get(key)
            if src is not None:
                src.removing = True

    def stats(self, key: Hashable) -> dict[str, float]:
        with self._lock:
            s = self._sources[key]
            return {
                "pushed": s.pushed,
                "dropped": s.dropped,
                "resyncs": s.resyncs,
                "level": s.level,
                "buffered": s.buf.shape[1],
            }

    def push(self, key: Hashable, frame: av.AudioFrame, at: float | None = None) -> None:
        """Add a decoded frame of ``key`` starting at ``at`` seconds on the output timeline
        (None: right after the previous frame, or now for the first one)."""
        pcm = self._resample(key, frame)
        with self._lock:
            src = self._source(key)
            self._append(src, pcm, None if at is None else round(at * self.sample_rate))

    def push_array(self, key: Hashable, pcm: F32Array, at: float | None = None) -> None:
        """Like :meth:`push` for samples already at the output rate: ``(channels, n)`` float32."""
        if pcm.ndim != 2 or pcm.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, n) samples")
        with self._lock:
            src = self._source(key)
            start = None if at is None else round(at * self.sample_rate)
            self._append(src, pcm.astype(np.float32, copy=False), start)

    def _resample(self, key: Hashable, frame: av.AudioFrame) -> F32Array:
        with self._lock:
            src = self._source(key)
            if src.resampler is None:
                src.spread = self.channels == 2 and frame.layout.nb_channels == 1
                layout = "mono" if src.spread else self.layout
                src.resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.sample_rate)
            resampler, spread = src.resampler, src.spread
        frame.pts = None  # timing is ours; the resampler must not try to fill gaps
        chunks = [np.asarray(f.to_ndarray(), dtype=np.float32) for f in resampler.resample(frame)]
        if not chunks:
            return np.zeros((self.channels, 0), np.float32)
        pcm = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
        return np.repeat(pcm, 2, axis=0) if spread else pcm

    def _append(self, src: _Source, pcm: F32Array, at: int | None) -> None:
        n = pcm.shape[1]
        src.pushed += n
        if n == 0:
            return
        if src.start is None:
            src.start = max(at if at is not None else self.position, self.position)
            if at is not None and at < self.position:
                skip = self.position - at
                src.dropped += min(skip, n)
                pcm = pcm[:, skip:]
            src.buf = pcm.copy()
            src.gain = 0.0
        else:
            end = src.start + src.buf.shape[1]
            target = end if at is None else at
            if abs(target - end) > self.resync_samples:
                src.resyncs += 1
                if target > end:  # a gap: silence, then a fade-in
                    self._fade_tail(src)
                    gap = np.zeros((self.channels, target - end), np.float32)
                    pcm = np.concatenate([gap, _fade_in(pcm, self.fade_samples)], axis=1)
                else:  # overlap: drop what would be played twice
                    cut = min(end - target, n)
                    src.dropped += cut
                    pcm = pcm[:, cut:]
            src.buf = np.concatenate([src.buf, pcm], axis=1)
        # late data: everything before the output position is gone
        if src.start < self.position:
            cut = min(self.position - src.start, src.buf.shape[1])
            src.dropped += cut
            src.buf = src.buf[:, cut:]
            src.start += cut
        if src.buf.shape[1] > self.max_buffer:
            cut = src.buf.shape[1] - self.max_buffer
            src.dropped += cut
            src.buf = src.buf[:, cut:]
            src.start += cut

    def _fade_tail(self, src: _Source) -> None:
        n = min(self.fade_samples, src.buf.shape[1])
        if n:
            src.buf[:, -n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)

    # ------------------------------------------------------------------ mixing

    def read(self, count: int) -> av.AudioFrame:
        """Mix the next ``count`` samples into an ``fltp`` frame (``pts`` = sample index)."""
        data = self.read_array(count)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=self.layout)
        frame.sample_rate = self.sample_rate
        frame.pts = self.position - count
        frame.time_base = self.time_base
        return frame

    def read_array(self, count: int) -> F32Array:
        """Mix the next ``count`` samples: a ``(channels, count)`` float32 array."""
        out = np.zeros((self.channels, count), np.float32)
        with self._lock:
            pos = self.position
            blocks: list[tuple[_Source, int, F32Array, bool]] = []
            for key, src in list(self._sources.items()):
                if src.start is None:
                    continue
                if src.start < pos:  # never mixed in time: drop
                    cut = min(pos - src.start, src.buf.shape[1])
                    src.buf = src.buf[:, cut:]
                    src.start += cut
                    src.dropped += cut
                offset = src.start - pos
                have = src.buf.shape[1]
                if have == 0 or offset >= count:
                    self._update_level(src, None, count)
                    if have == 0:
                        src.gain = 0.0  # ran dry: the next data fades in
                        if src.removing:
                            del self._sources[key]
                    continue
                n = min(have, count - offset)
                chunk = src.buf[:, :n].copy()
                src.buf = src.buf[:, n:]
                src.start += n
                # the data stops inside this block (a gap, or the source is gone): fade out
                stops = offset + n < count or (src.removing and src.buf.shape[1] == 0)
                blocks.append((src, offset, chunk, stops))
                self._update_level(src, chunk)
                if src.removing and src.buf.shape[1] == 0:
                    del self._sources[key]
            self._select()
            for src, offset, chunk, stops in blocks:
                n = chunk.shape[1]
                gains = self._ramp(src.gain, 1.0 if src.selected else 0.0, n)
                if stops:
                    k = min(self.fade_samples, n)
                    gains[n - k :] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
                    src.gain = 0.0
                else:
                    src.gain = float(gains[-1])
                out[:, offset : offset + n] += chunk * gains
            self.position = pos + count
        return soft_limit(out)

    def _ramp(self, start: float, target: float, n: int) -> F32Array:
        if n == 0:
            return np.zeros(0, np.float32)
        if start == target:
            return np.full(n, target, np.float32)
        step = 1.0 / self.fade_samples
        steps = np.arange(1, n + 1, dtype=np.float32) * step
        ramp: F32Array
        if target > start:
            ramp = np.minimum(start + steps, target).astype(np.float32)
        else:
            ramp = np.maximum(start - steps, target).astype(np.float32)
        return ramp

    def _update_level(self, src: _Source, chunk: F32Array | None, count: int = 0) -> None:
        n = chunk.shape[1] if chunk is not None else count
        if n == 0:
            return
        rms = float(np.sqrt(np.mean(np.square(chunk)))) if chunk is not None else 0.0
        alpha = 1.0 - math.exp(-n / (self.sample_rate * self.level_ms / 1000))
        src.level += alpha * (rms - src.level)

    def _select(self) -> None:
        if self.max_sources is None:
            for src in self._sources.values():
                src.selected = True
            return
        hysteresis = math.sqrt(2.0)  # 3 dB in amplitude
        ranked = sorted(
            self._sources.values(),
            key=lambda s: s.level * (hysteresis if s.selected else 1.0),
            reverse=True,
        )
        for i, src in enumerate(ranked):
            src.selected = i < self.max_sources


def _fade_in(pcm: F32Array, n: int) -> F32Array:
    k = min(n, pcm.shape[1])
    if k == 0:
        return pcm
    out = pcm.copy()
    out[:, :k] *= np.linspace(0.0, 1.0, k, dtype=np.float32)
    return out
