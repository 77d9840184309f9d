"""Analysis helpers for checking recordings of synthetic participants (pure numpy + PyAV).

The synthetic participants (``roomcast.media.testpattern``) show a solid user colour, flash one
all-white frame and start a sine beep at every whole second of their media clock. From a media
file these helpers recover:

- ``probe``: containers and streams (codec, size, fps, duration, sample rate, channels, counts);
- ``dominant_colour`` / ``nearest_user`` / ``region_users``: which user fills a pane;
- ``flash_times``: the first frame of every white flash (optionally inside one pane);
- ``beeps`` / ``beep_times``: beep onsets and frequencies (optionally of one user's frequency,
  so several users mixed into one track can be told apart);
- ``av_offsets``: flash-to-beep offsets in ms (positive = audio later than video);
- ``timestamp_problems`` / ``is_monotonic`` / ``starts_with_keyframe``.

Times are in seconds on the file's own timeline (``pts * time_base`` as FFmpeg presents it,
edit lists applied). Regions are pixel rectangles ``(x, y, w, h)`` in the decoded frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from roomcast.media.testpattern import (
    CLOCK_TEMPLATE,
    COUNTER_DIGITS,
    SevenSegmentFont,
    text_layout,
    user_beep_hz,
    user_colour,
)

Region = tuple[int, int, int, int]
PathLike = str | Path
FloatArray = npt.NDArray[np.float64]
U8Array = npt.NDArray[np.uint8]

# ---------------------------------------------------------------------------------------------
# probe
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "video" | "audio" | other
    codec: str
    duration: float | None  # seconds, from the packets (first pts to last pts + duration)
    packets: int
    keyframes: int
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    fps: float | None = None  # average frame rate as reported by the demuxer
    measured_fps: float | None = None  # (packets - 1) / (last pts - first pts)
    sample_rate: int | None = None
    channels: int | None = None
    profile: str | None = None
    start_time: float | None = None


@dataclass(frozen=True)
class ProbeInfo:
    format: str
    duration: float | None  # container duration in seconds
    streams: list[StreamInfo] = field(default_factory=list)

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)


def probe(path: PathLike) -> ProbeInfo:
    """Describe a media file's streams; demuxes every packet (no decoding) to count them."""
    with av.open(str(path)) as container:
        first: dict[int, float] = {}
        last_end: dict[int, float] = {}
        last_pts: dict[int, float] = {}
        packets: dict[int, int] = {}
        keys: dict[int, int] = {}
        for pkt in container.demux():
            if pkt.size == 0 or pkt.pts is None or pkt.time_base is None:
                continue
            i = pkt.stream.index
            t = float(pkt.pts * pkt.time_base)
            dur = float(pkt.duration * pkt.time_base) if pkt.duration else 0.0
            first[i] = min(first.get(i, t), t)
            last_end[i] = max(last_end.get(i, t + dur), t + dur)
            last_pts[i] = max(last_pts.get(i, t), t)
            packets[i] = packets.get(i, 0) + 1
            keys[i] = keys.get(i, 0) + (1 if pkt.is_keyframe else 0)
        streams: list[StreamInfo] = []
        for s in container.streams:
            i = s.index
            n = packets.get(i, 0)
            duration = last_end[i] - first[i] if n else None
            info = StreamInfo(
                index=i,
                kind=s.type,
                codec=s.codec_context.name,
                duration=duration,
                packets=n,
                keyframes=keys.get(i, 0),
                profile=s.profile,
                start_time=float(s.start_time * s.time_base)
                if s.start_time is not None and s.time_base is not None
                else None,
            )
            if s.type == "video":
                vcc = s.codec_context
                rate = s.average_rate or s.guessed_rate
                span = last_pts[i] - first[i] if n > 1 else 0.0
                info = replace(
                    info,
                    width=vcc.width,  # type: ignore[attr-defined]
                    height=vcc.height,  # type: ignore[attr-defined]
                    pix_fmt=vcc.pix_fmt,  # type: ignore[attr-defined]
                    fps=float(rate) if rate else None,
                    measured_fps=(n - 1) / span if span > 0 else None,
                )
            elif s.type == "audio":
                acc = s.codec_context
                info = replace(
                    info,
                    sample_rate=acc.sample_rate,  # type: ignore[attr-defined]
                    channels=acc.channels,  # type: ignore[attr-defined]
                )
            streams.append(info)
        duration = container.duration / 1_000_000 if container.duration is not None else None
        return ProbeInfo(format=container.format.name, duration=duration, streams=streams)


# ---------------------------------------------------------------------------------------------
# video frames, colours
# ---------------------------------------------------------------------------------------------


def video_frames(path: PathLike) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decode the first video stream: ``(time_s, frame)`` in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        for n, frame in enumerate(container.decode(stream)):
            t = frame.time if frame.time is not None else n / rate
            yield float(t), frame


def to_rgb(image: av.VideoFrame | U8Array) -> U8Array:
    """An ``(h, w, 3)`` uint8 RGB array from a decoded frame (BT.601 conversion) or an array."""
    if isinstance(image, av.VideoFrame):
        return np.asarray(image.to_ndarray(format="rgb24"), dtype=np.uint8)
    return image


def _crop(arr: U8Array, region: Region | None) -> U8Array:
    if region is None:
        return arr
    x, y, w, h = region
    return arr[y : y + h, x : x + w]


def dominant_colour(image: av.VideoFrame | U8Array, region: Region | None = None) -> tuple[int, int, int]:
    """The most common colour in a frame region (16 levels per channel histogram mode, then the
    mean of the pixels in that bin). Text boxes, stripes and compression noise don't move it."""
    rgb = _crop(to_rgb(image), region)[::2, ::2].reshape(-1, 3).astype(np.int64)
    if rgb.size == 0:
        raise ValueError("empty region")
    q = rgb >> 4
    bins = (q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2]
    mode = int(np.bincount(bins, minlength=4096).argmax())
    sel = rgb[bins == mode]
    r, g, b = (round(float(c)) for c in sel.mean(axis=0))
    return r, g, b


def colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return math.dist(a, b)


def nearest_user(
    colour: tuple[int, int, int], user_ids: Sequence[str], max_distance: float = 60.0
) -> str | None:
    """The user whose colour is closest to ``colour`` (within ``max_distance`` in RGB), or None.

    Raises ValueError when two of ``user_ids`` share a colour (the test can't tell them apart)."""
    colours = {uid: user_colour(uid) for uid in user_ids}
    if len(set(colours.values())) != len(colours):
        raise ValueError(f"user ids share a colour: {colours}")
    best = min(user_ids, key=lambda uid: colour_distance(colour, colours[uid]), default=None)
    if best is None or colour_distance(colour, colours[best]) > max_distance:
        return None
    return best


def frame_at(path: PathLike, at: float, *, skip_flash: bool = True) -> av.VideoFrame:
    """The first decoded frame at or after ``at`` seconds (skipping white flash frames)."""
    last: av.VideoFrame | None = None
    for t, frame in video_frames(path):
        last = frame
        if t + 1e-6 >= at and not (skip_flash and whiteness(frame) >= 0.5):
            return frame
    if last is None:
        raise ValueError(f"{path}: no video frames")
    return last


def region_users(
    source: PathLike | av.VideoFrame | U8Array,
    regions: Sequence[Region],
    user_ids: Sequence[str],
    *,
    at: float = 0.5,
    max_distance: float = 60.0,
) -> list[str | None]:
    """For each region, the user whose colour fills it (None: no user colour dominates).
    ``source`` is a frame, an RGB array or a file (then the frame at ``at`` seconds is used)."""
    image = frame_at(source, at) if isinstance(source, str | Path) else source
    rgb = to_rgb(image)
    return [nearest_user(dominant_colour(rgb, r), user_ids, max_distance) for r in regions]


# ---------------------------------------------------------------------------------------------
# flashes
# ---------------------------------------------------------------------------------------------


def _yuv_planes(frame: av.VideoFrame) -> tuple[U8Array, U8Array, U8Array]:
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    out: list[U8Array] = []
    for i, plane in enumerate(frame.planes):
        h = frame.height if i == 0 else (frame.height + 1) // 2
        w = frame.width if i == 0 else (frame.width + 1) // 2
        arr = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        out.append(arr[:h, :w])
    return out[0], out[1], out[2]


def whiteness(frame: av.VideoFrame, region: Region | None = None) -> float:
    """The fraction of (chroma-site) pixels in the region that are near white: bright luma and
    neutral chroma. No palette colour qualifies (they are saturated); the flash frame is 1.0."""
    y, u, v = _yuv_planes(frame)
    x0, y0, w, h = region if region is not None else (0, 0, frame.width, frame.height)
    cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, (x0 + w) // 2, (y0 + h) // 2
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError("region too small")
    ys = y[2 * cy0 : 2 * cy1 : 2, 2 * cx0 : 2 * cx1 : 2].astype(np.int16)
    us = u[cy0:cy1, cx0:cx1].astype(np.int16) - 128
    vs = v[cy0:cy1, cx0:cx1].astype(np.int16) - 128
    white = (ys > 190) & (np.abs(us) < 24) & (np.abs(vs) < 24)
    return float(white.mean())


def mean_luma(frame: av.VideoFrame, region: Region | None = None) -> float:
    y, _, _ = _yuv_planes(frame)
    return float(_crop(y, region).mean())


def whiteness_trace(path: PathLike, region: Region | None = None) -> list[tuple[float, float]]:
    """``(time_s, whiteness)`` of every decoded video frame."""
    return [(t, whiteness(f, region)) for t, f in video_frames(path)]


def flash_times(path: PathLike, region: Region | None = None, *, threshold: float = 0.6) -> list[float]:
    """Times of the first frame of every white flash (a run of frames with whiteness >=
    ``threshold``; one flash per run, so an encoder smearing it over two frames counts once)."""
    out: list[float] = []
    prev = False
    for t, w in whiteness_trace(path, region):
        cur = w >= threshold
        if cur and not prev:
            out.append(t)
        prev = cur
    return out


# ---------------------------------------------------------------------------------------------
# burnt-in clock and frame counter
# ---------------------------------------------------------------------------------------------

_DIGIT_OF_SEGMENTS: dict[frozenset[str], str] = {
    frozenset(v): k
    for k, v in {
        "0": "abcdef",
        "1": "bc",
        "2": "abdeg",
        "3": "abcdg",
        "4": "bcfg",
        "5": "acdfg",
        "6": "acdefg",
        "7": "abc",
        "8": "abcdefg",
        "9": "abcdfg",
    }.items()
}


@dataclass(frozen=True)
class Overlay:
    clock: str | None  # "HH:MM:SS.mmm" (UTC wall time of the frame at the publisher), None if unreadable
    counter: int | None  # the publisher's frame index (mod 10**6), None if unreadable


def _read_line(
    y: U8Array,
    font: SevenSegmentFont,
    x0: int,
    y0: int,
    template: str,
    sx: float,
    sy: float,
    ox: int,
    oy: int,
) -> str | None:
    boxes = font.segment_boxes()
    h, w = y.shape
    out: list[str] = []
    x = x0
    for ch in template:
        if ch in ":.":
            out.append(ch)
            x += font.cell_width(ch)
            continue
        lit: set[str] = set()
        for seg, (r0, r1, c0, c1) in boxes.items():
            # segment centre, in source pixels, then scaled into the decoded region
            cy = oy + (y0 + (r0 + r1) / 2) * sy
            cx = ox + (x + (c0 + c1) / 2) * sx
            ri, ci = int(cy), int(cx)
            if not (0 <= ri < h and 0 <= ci < w):
                return None
            if y[ri, ci] > 128:
                lit.add(seg)
        digit = _DIGIT_OF_SEGMENTS.get(frozenset(lit))
        if digit is None:
            return None
        out.append(digit)
        x += font.cell_width(ch)
    return "".join(out)


def read_overlay(
    frame: av.VideoFrame,
    region: Region | None = None,
    source_size: tuple[int, int] | None = None,
) -> Overlay:
    """Read the burnt-in clock and frame counter of a synthetic camera/screen picture.

    ``region`` is where the picture sits in the decoded frame (default: the whole frame) and
    ``source_size`` the size the publisher rendered it at (default: the region's size). Works
    while the picture is shown at >= about half its source size with decent quality; returns
    ``None`` fields when a digit can't be read (flash frames, too small, wrong region)."""
    yp, _, _ = _yuv_planes(frame)
    rx, ry, rw, rh = region if region is not None else (0, 0, frame.width, frame.height)
    sw, sh = source_size if source_size is not None else (rw, rh)
    lay = text_layout(sw, sh)
    font = SevenSegmentFont(lay.font_height)
    sx, sy = rw / sw, rh / sh
    # the text box's padding must be dark (rejects flashes and pictures without the overlay)
    bx, by, _, _ = lay.box
    py = int(ry + (by + lay.clock_y) / 2 * sy)
    px = int(rx + (bx + lay.clock_x) / 2 * sx)
    if not (0 <= py < yp.shape[0] and 0 <= px < yp.shape[1]) or yp[py, px] > 80:
        return Overlay(clock=None, counter=None)
    clock = _read_line(yp, font, lay.clock_x, lay.clock_y, CLOCK_TEMPLATE, sx, sy, rx, ry)
    counter = _read_line(yp, font, lay.counter_x, lay.counter_y, "0" * COUNTER_DIGITS, sx, sy, rx, ry)
    return Overlay(clock=clock, counter=int(counter) if counter is not None else None)


def counters(
    path: PathLike, region: Region | None = None, source_size: tuple[int, int] | None = None
) -> list[tuple[float, int | None]]:
    """``(time_s, frame counter)`` of every decoded frame (None on flashes/unreadable frames).
    Gaps show dropped frames; repeats show duplicated (filled) frames."""
    return [(t, read_overlay(f, region, source_size).counter) for t, f in video_frames(path)]


# ---------------------------------------------------------------------------------------------
# audio, beeps
# ---------------------------------------------------------------------------------------------


def decode_audio(path: PathLike) -> tuple[FloatArray, int, float]:
    """Decode the first audio stream to mono float64 (channels averaged), filling timestamp gaps
    with silence. Returns ``(samples, sample_rate, time_of_first_sample_s)``."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or 48000
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        chunks: list[FloatArray] = []
        t0: float | None = None
        have = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                data = out.to_ndarray()[0].astype(np.float64)
                t = float(out.time) if out.time is not None else None
                if t0 is None:
                    t0 = t if t is not None else 0.0
                elif t is not None:
                    gap = round((t - t0) * rate) - have
                    if gap > rate // 500:  # > 2 ms hole in the timestamps: fill with silence
                        chunks.append(np.zeros(gap))
                        have += gap
                chunks.append(data)
                have += data.size
        for out in resampler.resample(None):
            data = out.to_ndarray()[0].astype(np.float64)
            chunks.append(data)
        samples = np.concatenate(chunks) if chunks else np.zeros(0)
        return samples, rate, t0 if t0 is not None else 0.0


@dataclass(frozen=True)
class Beep:
    time: float  # onset, seconds on the file timeline
    freq_hz: float  # estimated frequency of the tone
    duration: float  # seconds above half level
    level: float  # peak amplitude estimate (1.0 = full scale)


def _moving_mean(x: npt.NDArray[np.float64] | npt.NDArray[np.complex128], n: int) -> FloatArray:
    """Centered moving average (same length as x) of |x| after the window sum."""
    c = np.concatenate([np.zeros(1, dtype=x.dtype), np.cumsum(x)])
    half = n // 2
    idx = np.arange(x.size)
    lo = np.clip(idx - half, 0, x.size)
    hi = np.clip(idx - half + n, 0, x.size)
    return np.asarray(np.abs(c[hi] - c[lo]) / n, dtype=np.float64)


def _tone_envelope(x: FloatArray, rate: int, freq_hz: float | None) -> FloatArray:
    """Amplitude envelope: of a tone at freq_hz (sliding 20 ms Goertzel/demodulation), or
    broadband (5 ms RMS), scaled so a sine of amplitude A reads ~A."""
    if freq_hz is None:
        n = max(1, rate // 200)
        return np.sqrt(2.0 * _moving_mean(x * x, n))
    n = max(1, rate // 50)
    ph = np.exp(-2j * np.pi * freq_hz * np.arange(x.size) / rate)
    return 2.0 * _moving_mean(x * ph, n)


def _estimate_freq(seg: FloatArray, rate: int, near: float | None) -> float:
    if seg.size < 16:
        return float("nan")
    win = seg * np.hanning(seg.size)
    nfft = 1 << max(16, math.ceil(math.log2(seg.size * 8)))
    spec = np.abs(np.fft.rfft(win, nfft))
    freqs = np.fft.rfftfreq(nfft, 1.0 / rate)
    lo, hi = (near - 60, near + 60) if near is not None else (100.0, min(8000.0, rate / 2 - 1))
    band = (freqs >= lo) & (freqs <= hi)
    if not band.any():
        return float("nan")
    k = int(np.flatnonzero(band)[spec[band].argmax()])
    if 0 < k < spec.size - 1:
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        shift = 0.0
    return float((k + shift) * rate / nfft)


def beeps(
    path: PathLike,
    freq_hz: float | None = None,
    *,
    min_level: float = 0.01,
    min_duration: float = 0.03,
) -> list[Beep]:
    """Beeps in the first audio stream: runs where the envelope (of the tone at ``freq_hz``, or
    broadband if None) exceeds half its plateau. The onset is accurate to about +-2 ms."""
    x, rate, t0 = decode_audio(path)
    if x.size == 0:
        return []
    env = _tone_envelope(x, rate, freq_hz)
    plateau = float(np.percentile(env, 99.0))
    if plateau < min_level:
        return []
    above = env >= 0.5 * plateau
    # runs of `above`, merging holes shorter than 10 ms
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above.view(np.int8), [0]])))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < rate // 100:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    out: list[Beep] = []
    margin = rate // 250
    for a, b in merged:
        if (b - a) / rate < min_duration:
            continue
        seg = x[a + margin : max(a + margin + 16, b - margin)]
        out.append(
            Beep(
                time=t0 + a / rate,
                freq_hz=_estimate_freq(seg, rate, freq_hz),
                duration=(b - a) / rate,
                level=float(env[a:b].max()),
            )
        )
    return out


def beep_times(path: PathLike, freq_hz: float | None = None) -> list[float]:
    return [b.time for b in beeps(path, freq_hz)]


def user_beeps(path: PathLike, user_id: str) -> list[Beep]:
    """Beeps of one synthetic user (by that user's frequency), e.g. in a mixed recording."""
    return beeps(path, user_beep_hz(user_id))


# ---------------------------------------------------------------------------------------------
# A/V sync
# ---------------------------------------------------------------------------------------------


def pair_offsets(
    flashes: Sequence[float], beep_onsets: Sequence[float], max_pair_ms: float = 500.0
) -> list[float]:
    """For each flash, ``(nearest beep - flash)`` in ms, if one lies within ``max_pair_ms``."""
    out: list[float] = []
    if not beep_onsets:
        return out
    b = np.asarray(beep_onsets, dtype=np.float64)
    for f in flashes:
        k = int(np.abs(b - f).argmin())
        d = (float(b[k]) - f) * 1000.0
        if abs(d) <= max_pair_ms:
            out.append(d)
    return out


def av_offsets(
    path: PathLike,
    *,
    region: Region | None = None,
    freq_hz: float | None = None,
    user_id: str | None = None,
    max_pair_ms: float = 500.0,
) -> list[float]:
    """A/V offsets in ms, one per flash that has a beep within ``max_pair_ms``: positive means
    the audio is late. For a mixed recording, pass the user's pane as ``region`` and the user
    (or ``freq_hz``) so that only that user's beeps are used."""
    if user_id is not None and freq_hz is None:
        freq_hz = user_beep_hz(user_id)
    return pair_offsets(flash_times(path, region), beep_times(path, freq_hz), max_pair_ms)


# ---------------------------------------------------------------------------------------------
# timestamps, keyframes
# ---------------------------------------------------------------------------------------------


def timestamp_problems(path: PathLike) -> list[str]:
    """Non-monotonic timestamps: per stream, packet dts must strictly increase and pts be set;
    decoded video frames must have strictly increasing pts. Empty list = all good."""
    problems: list[str] = []
    with av.open(str(path)) as container:
        last_dts: dict[int, int] = {}
        for pkt in container.demux():
            if pkt.size == 0:
                continue
            i = pkt.stream.index
            if pkt.pts is None:
                problems.append(f"stream {i}: packet without pts (dts={pkt.dts})")
            if pkt.dts is None:
                continue
            if i in last_dts and pkt.dts <= last_dts[i]:
                problems.append(f"stream {i}: dts {pkt.dts} after {last_dts[i]}")
            last_dts[i] = pkt.dts
    last_pts: int | None = None
    with av.open(str(path)) as container:
        if container.streams.video:
            for frame in container.decode(video=0):
                if frame.pts is None:
                    problems.append("video frame without pts")
                    continue
                if last_pts is not None and frame.pts <= last_pts:
                    problems.append(f"video frame pts {frame.pts} after {last_pts}")
                last_pts = frame.pts
    return problems


def is_monotonic(path: PathLike) -> bool:
    return not timestamp_problems(path)


def starts_with_keyframe(path: PathLike) -> bool:
    """Whether every video stream's first packet is a keyframe and the first decoded frame is
    an intra frame (checks both the container flag and the bitstream)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return False
        stream = container.streams.video[0]
        first = True
        for pkt in container.demux(stream):
            if first and pkt.size:
                if not pkt.is_keyframe:
                    return False
                first = False
            for frame in stream.codec_context.decode(pkt):
                return bool(frame.key_frame)
    return False
