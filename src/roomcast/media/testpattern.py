"""Synthetic participants: test-pattern audio and video tracks for tests, demos and benchmarks.

Every synthetic user gets a solid colour (:func:`user_colour`) and a beep frequency
(:func:`user_beep_hz`), both deterministic from the user id. The video shows the colour with a
burnt-in wall clock (UTC, ``HH:MM:SS.mmm``) and a frame counter drawn in a built-in 7-segment
font. Once a second, at each whole second of the participant's media clock (including second 0),
the video shows one all-white frame and the audio starts a short sine beep. Audio and video of one
participant share a :class:`MediaClock`, so flash and beep are simultaneous by construction: the
flash is the video frame with ``pts == k * 90000`` and the beep starts at audio sample
``k * 48000``. Recording tests measure A/V sync by pairing them (see ``tests/support/avcheck.py``).

Frames are produced directly in ``yuv420p`` (BT.601, limited range, the colourspace FFmpeg and
libx264 assume for untagged video), so no RGB conversion happens per frame: the static picture is
pre-rendered once and only the digit cells are redrawn.

Colour assignment: a user id ending in a number ``n`` (``"u1"``, ``"user_12"``, ``"3"``) gets palette
entry ``(n - 1) mod 12``, so ``u1`` .. ``u12`` always get 12 different colours and beeps; other ids
are hashed (SHA-256), so two arbitrary ids may share a colour.
"""

from __future__ import annotations

import asyncio
import colorsys
import fractions
import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import av
import numpy as np
import numpy.typing as npt
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "AUDIO_TIME_BASE",
    "BEEP_FREQUENCIES",
    "PALETTE",
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "MediaClock",
    "PatternAudioTrack",
    "PatternVideoTrack",
    "SevenSegmentFont",
    "SyntheticParticipant",
    "TextLayout",
    "open_file_source",
    "rgb_to_yuv",
    "text_layout",
    "user_beep_hz",
    "user_colour",
    "user_index",
]

U8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

VIDEO_CLOCK_RATE: Final = 90_000
VIDEO_TIME_BASE: Final = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_SAMPLE_RATE: Final = 48_000
AUDIO_TIME_BASE: Final = fractions.Fraction(1, AUDIO_SAMPLE_RATE)

# --------------------------------------------------------------------------------------------------
# Per-user identity: colour and beep frequency
# --------------------------------------------------------------------------------------------------

# Hues ordered so that the first users get the most different colours (primaries, then
# secondaries, then the in-betweens). S = V = 0.85 keeps every colour saturated and far from
# white/black/grey: the smallest channel is 33 and the largest 217, so no palette colour can be
# mistaken for the white flash (all channels 255) or for the black text box.
_HUES: Final = (0, 240, 120, 60, 300, 180, 30, 210, 270, 90, 330, 150)


def _hsv_rgb(hue_deg: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue_deg / 360.0, 0.85, 0.85)
    return round(r * 255), round(g * 255), round(b * 255)


PALETTE: Final[tuple[tuple[int, int, int], ...]] = tuple(_hsv_rgb(h) for h in _HUES)
"""The 12 user colours (RGB), in assignment order."""

# Log-spaced 400..2000 Hz (ratio ~1.157, so neighbours are >= 60 Hz apart), rounded to 10 Hz so a
# 100 ms beep holds a whole number of cycles, and permuted (step 7 mod 12) so that users 1-4 get
# 400, 1110, 540 and 1490 Hz.
_LOG_FREQS: Final = (400, 460, 540, 620, 720, 830, 960, 1110, 1290, 1490, 1730, 2000)
BEEP_FREQUENCIES: Final[tuple[int, ...]] = tuple(_LOG_FREQS[(i * 7) % 12] for i in range(12))
"""The 12 user beep frequencies (Hz), in assignment order (same index as :data:`PALETTE`)."""

_TRAILING_NUMBER: Final = re.compile(r"(\d+)$")


def user_index(user_id: str) -> int:
    """The palette index (0..11) of a user id: from its trailing number if any, else from a hash."""
    m = _TRAILING_NUMBER.search(user_id)
    if m is not None:
        return (int(m.group(1)) - 1) % len(PALETTE)
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % len(PALETTE)


def user_colour(user_id: str) -> tuple[int, int, int]:
    """The solid RGB colour of a synthetic user's camera track."""
    return PALETTE[user_index(user_id)]


def user_beep_hz(user_id: str) -> int:
    """The beep frequency (Hz, 400..2000) of a synthetic user's microphone track."""
    return BEEP_FREQUENCIES[user_index(user_id)]


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """RGB (0..255) to Y'CbCr, BT.601 limited range, as FFmpeg's default conversion expects."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return (
        int(np.clip(round(y), 16, 235)),
        int(np.clip(round(u), 16, 240)),
        int(np.clip(round(v), 16, 240)),
    )


# --------------------------------------------------------------------------------------------------
# The shared media clock
# --------------------------------------------------------------------------------------------------


class MediaClock:
    """The media clock shared by the tracks of one participant.

    Media time 0 is ``start`` (a ``time.time()`` value). It is fixed by the first track that
    produces a frame, or explicitly by :meth:`anchor`. A track that starts later skips ahead to the
    current media time, so flashes and beeps of one participant always coincide.
    """

    def __init__(self, start: float | None = None) -> None:
        self.start = start

    def anchor(self, start: float | None = None) -> float:
        """Fix media time 0 (now, or ``start``) unless it is already fixed; return it."""
        if self.start is None:
            self.start = time.time() if start is None else start
        return self.start

    def media_time(self) -> float:
        """Seconds of media time elapsed now (0 before the clock is anchored)."""
        return 0.0 if self.start is None else time.time() - self.start


# --------------------------------------------------------------------------------------------------
# 7-segment digit font
# --------------------------------------------------------------------------------------------------

#          a
#        f   b
#          g
#        e   c
#          d
_SEGMENTS: Final[Mapping[str, str]] = {
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
    "-": "g",
    " ": "",
}


class SevenSegmentFont:
    """A tiny 7-segment font rendered with numpy: digits, ``-``, space, ``:`` and ``.``.

    ``height`` is the glyph height in pixels; digits are ``width`` wide and separated by
    ``spacing`` pixels; ``:`` and ``.`` use a narrow cell of ``narrow`` pixels.
    """

    def __init__(self, height: int) -> None:
        if height < 7:
            raise ValueError("font height must be >= 7 pixels")
        self.height = height
        self.thickness = max(1, round(height / 8))
        self.width = max(3 * self.thickness + 1, round(height * 0.55))
        self.spacing = max(1, round(height * 0.2))
        self.narrow = 2 * self.thickness + self.spacing
        self._glyphs: dict[str, BoolArray] = {}
        for ch in (*_SEGMENTS, ":", "."):
            self._glyphs[ch] = self._render_glyph(ch)

    def segment_boxes(self) -> dict[str, tuple[int, int, int, int]]:
        """Segment rectangles ``(row0, row1, col0, col1)`` inside a digit cell."""
        h, w, t = self.height, self.width, self.thickness
        mid = h // 2
        return {
            "a": (0, t, 0, w),
            "b": (0, mid, w - t, w),
            "c": (mid, h, w - t, w),
            "d": (h - t, h, 0, w),
            "e": (mid, h, 0, t),
            "f": (0, mid, 0, t),
            "g": (mid - t // 2, mid - t // 2 + t, 0, w),
        }

    def _render_glyph(self, ch: str) -> BoolArray:
        h, t = self.height, self.thickness
        if ch in (":", "."):
            cell: BoolArray = np.zeros((h, self.narrow), dtype=np.bool_)
            c0 = (self.narrow - 2 * t) // 2
            if ch == ":":
                for r in (h // 3, (2 * h) // 3):
                    cell[r - t : r + t, c0 : c0 + 2 * t] = True
            else:
                cell[h - 2 * t : h, c0 : c0 + 2 * t] = True
            return cell
        cell = np.zeros((h, self.width + self.spacing), dtype=np.bool_)
        boxes = self.segment_boxes()
        for seg in _SEGMENTS[ch]:
            r0, r1, c0, c1 = boxes[seg]
            cell[r0:r1, c0:c1] = True
        return cell

    def glyph(self, ch: str) -> BoolArray:
        """The boolean mask of one character cell (spacing included on the right of digits)."""
        return self._glyphs[ch]

    def cell_width(self, ch: str) -> int:
        return int(self._glyphs[ch].shape[1])

    def text_width(self, text: str) -> int:
        return sum(self.cell_width(ch) for ch in text)

    def render(self, text: str) -> BoolArray:
        """The boolean mask of a whole string."""
        return np.concatenate([self._glyphs[ch] for ch in text], axis=1)


# --------------------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------------------

CLOCK_TEMPLATE: Final = "00:00:00.000"
COUNTER_DIGITS: Final = 6


@dataclass(frozen=True)
class TextLayout:
    """Where the burnt-in text goes in a ``width`` x ``height`` frame (all values in pixels).

    The black box spans ``box`` = (x, y, w, h), even-aligned for 4:2:0. The clock line starts at
    (``clock_x``, ``clock_y``) and the counter line at (``counter_x``, ``counter_y``).
    """

    font_height: int
    box: tuple[int, int, int, int]
    clock_x: int
    clock_y: int
    counter_x: int
    counter_y: int


def text_layout(width: int, height: int) -> TextLayout:
    """The text layout used by :class:`PatternVideoTrack` for a frame size."""
    fh = max(7, min(height // 14, width // 12))
    font = SevenSegmentFont(fh)
    pad = max(2, fh // 3)
    line_w = font.text_width(CLOCK_TEMPLATE)
    bx = by = (max(2, min(width, height) // 30)) & ~1
    bw = min(width - bx, (line_w + 2 * pad + 1) & ~1)
    bh = min(height - by, (2 * fh + 3 * pad + 1) & ~1)
    return TextLayout(
        font_height=fh,
        box=(bx, by, bw, bh),
        clock_x=bx + pad,
        clock_y=by + pad,
        counter_x=bx + pad,
        counter_y=by + 2 * pad + fh,
    )


_TEXT_FG: Final = 235  # limited-range white
_TEXT_BG: Final = 16  # limited-range black


class _PlaneSet:
    """Pre-rendered yuv420p planes of one picture."""

    def __init__(self, y: U8Array, u: U8Array, v: U8Array) -> None:
        self.planes = (y, u, v)


def _solid_planes(width: int, height: int, rgb: tuple[int, int, int]) -> _PlaneSet:
    y, u, v = rgb_to_yuv(rgb)
    return _PlaneSet(
        np.full((height, width), y, np.uint8),
        np.full((height // 2, width // 2), u, np.uint8),
        np.full((height // 2, width // 2), v, np.uint8),
    )


def _screen_planes(width: int, height: int, rgb: tuple[int, int, int]) -> _PlaneSet:
    """Screen-share look: vertical bars of the user colour (3/4) and a dark shade of it (1/4),
    plus a dark "taskbar" along the bottom, so it is visibly not a camera, while the user colour
    stays the dominant colour of the frame."""
    base = _solid_planes(width, height, rgb)
    dark = rgb_to_yuv((rgb[0] * 3 // 10, rgb[1] * 3 // 10, rgb[2] * 3 // 10))
    period = max(8, (width // 16) & ~1)
    bar = max(2, (period // 4) & ~1)
    y, u, v = base.planes
    cols = np.arange(width)
    mask = (cols % period) >= period - bar
    y[:, mask] = dark[0]
    cmask = mask[::2]
    u[:, cmask] = dark[1]
    v[:, cmask] = dark[2]
    title = max(2, (height // 20) & ~1)
    y[height - title :, :] = dark[0]
    u[(height - title) // 2 :, :] = dark[1]
    v[(height - title) // 2 :, :] = dark[2]
    return base


class PatternVideoTrack(MediaStreamTrack):
    """A synthetic camera (or screen-share, ``screen=True``) track of one user.

    Produces ``yuv420p`` :class:`av.VideoFrame` objects of ``width`` x ``height`` at ``fps``, with
    ``pts`` in a 90 kHz time base (``pts = index * 90000 // fps``), paced in real time like
    aiortc's ``VideoStreamTrack`` (unless ``realtime=False``, which produces frames as fast as
    they are pulled, for offline encoding). Frame ``index`` is a flash (all white) when it is the
    first frame at or after a whole second of media time. :meth:`render` builds any frame
    synchronously without touching the pacing state.
    """

    kind = "video"

    def __init__(
        self,
        user_id: str,
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 15,
        clock: MediaClock | None = None,
        screen: bool = False,
        flash: bool = True,
        text: bool = True,
        realtime: bool = True,
    ) -> None:
        super().__init__()
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError("width and height must be even and >= 16")
        if not 1 <= fps <= 240:
            raise ValueError("fps must be in 1..240")
        self.user_id = user_id
        self.width = width
        self.height = height
        self.fps = fps
        self.clock = clock if clock is not None else MediaClock()
        self.screen = screen
        self.flash = flash
        self.text = text
        self.realtime = realtime
        self.colour = user_colour(user_id)
        self._index: int | None = None

        planes = (_screen_planes if screen else _solid_planes)(width, height, self.colour)
        self.layout = text_layout(width, height)
        self.font = SevenSegmentFont(self.layout.font_height)
        if text:
            bx, by, bw, bh = self.layout.box
            planes.planes[0][by : by + bh, bx : bx + bw] = _TEXT_BG
            planes.planes[1][by // 2 : (by + bh) // 2, bx // 2 : (bx + bw) // 2] = 128
            planes.planes[2][by // 2 : (by + bh) // 2, bx // 2 : (bx + bw) // 2] = 128
        self._static = planes
        self._white = _PlaneSet(
            np.full((height, width), _TEXT_FG, np.uint8),
            np.full((height // 2, width // 2), 128, np.uint8),
            np.full((height // 2, width // 2), 128, np.uint8),
        )
        # Glyphs pre-rendered as Y values; one cell per character, clipped to the box.
        self._glyph_y: dict[str, U8Array] = {
            ch: np.where(self.font.glyph(ch), _TEXT_FG, _TEXT_BG).astype(np.uint8) for ch in "0123456789:."
        }

    # -- timing -----------------------------------------------------------------------------------

    def pts_of(self, index: int) -> int:
        """The 90 kHz pts of frame ``index``."""
        return index * VIDEO_CLOCK_RATE // self.fps

    def is_flash(self, index: int) -> bool:
        """Whether frame ``index`` is the first frame at or after a whole second."""
        if not self.flash:
            return False
        # with an integer frame rate, the first frame at or after second k is frame k * fps
        return index % self.fps == 0

    # -- rendering --------------------------------------------------------------------------------

    def clock_text(self, index: int) -> str:
        """The wall clock (UTC ``HH:MM:SS.mmm``) burnt into frame ``index``."""
        start = self.clock.anchor()
        wall_ms = round(start * 1000) + index * 1000 // self.fps
        secs, ms = divmod(wall_ms, 1000)
        tm = time.gmtime(secs)
        return f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{ms:03d}"

    def counter_text(self, index: int) -> str:
        return f"{index % 10**COUNTER_DIGITS:0{COUNTER_DIGITS}d}"

    def _draw_text(self, y_plane: U8Array, x: int, y: int, text: str) -> None:
        bx, by, bw, bh = self.layout.box
        x_end = bx + bw
        y_end = min(by + bh, y + self.font.height)
        if y_end <= y:
            return
        for ch in text:
            g = self._glyph_y[ch]
            w = min(g.shape[1], x_end - x)
            if w <= 0:
                break
            y_plane[y:y_end, x : x + w] = g[: y_end - y, :w]
            x += g.shape[1]

    def render(self, index: int) -> av.VideoFrame:
        """Build frame ``index`` (``pts`` and ``time_base`` set)."""
        src = self._white if self.is_flash(index) else self._static
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        views: list[U8Array] = []
        for plane, data in zip(frame.planes, src.planes, strict=True):
            view = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
            view[: data.shape[0], : data.shape[1]] = data
            views.append(view)
        if self.text and src is self._static:
            lay = self.layout
            self._draw_text(views[0], lay.clock_x, lay.clock_y, self.clock_text(index))
            self._draw_text(views[0], lay.counter_x, lay.counter_y, self.counter_text(index))
        frame.pts = self.pts_of(index)
        frame.time_base = VIDEO_TIME_BASE
        return frame

    # -- MediaStreamTrack -------------------------------------------------------------------------

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._index is None:
            start = self.clock.anchor()
            # join the shared clock at the current media time (skip ahead if started late); the
            # frame whose slot contains `now` is sent at once, so a few ms late still gets frame 0
            self._index = max(0, math.floor((time.time() - start) * self.fps))
        else:
            self._index += 1
        if self.realtime:
            start = self.clock.anchor()
            wait = start + self._index / self.fps - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        return self.render(self._index)


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------


class PatternAudioTrack(MediaStreamTrack):
    """A synthetic microphone track of one user: silence with a beep at each whole second.

    Produces 48 kHz ``s16`` :class:`av.AudioFrame` objects of ``ptime`` seconds (default 20 ms =
    960 samples, what aiortc's Opus encoder wants), ``mono`` or ``stereo``, with ``pts`` in
    samples (time base 1/48000). The beep (``beep_ms`` of a sine at :func:`user_beep_hz`, peak
    ``level`` of full scale, 2 ms raised-cosine ramps) starts exactly at sample ``k * 48000``.
    """

    kind = "audio"

    def __init__(
        self,
        user_id: str,
        *,
        clock: MediaClock | None = None,
        layout: Literal["mono", "stereo"] = "stereo",
        ptime: float = 0.020,
        beep_ms: int = 100,
        level: float = 0.3,
        beep: bool = True,
        realtime: bool = True,
    ) -> None:
        super().__init__()
        self.samples_per_frame = round(AUDIO_SAMPLE_RATE * ptime)
        if self.samples_per_frame <= 0 or AUDIO_SAMPLE_RATE % self.samples_per_frame:
            raise ValueError("ptime must divide one second into whole frames at 48 kHz")
        if not 0 < level <= 1 or not 0 < beep_ms < 1000:
            raise ValueError("level must be in (0, 1] and beep_ms in (0, 1000)")
        self.user_id = user_id
        self.clock = clock if clock is not None else MediaClock()
        self.layout = layout
        self.channels = 1 if layout == "mono" else 2
        self.beep_hz = user_beep_hz(user_id)
        self.beep_ms = beep_ms
        self.level = level
        self.realtime = realtime
        self._index: int | None = None

        # One second of the pattern, pre-rendered, interleaved for s16 packed.
        second = np.zeros(AUDIO_SAMPLE_RATE, np.float64)
        if beep:
            n = AUDIO_SAMPLE_RATE * beep_ms // 1000
            t = np.arange(n) / AUDIO_SAMPLE_RATE
            tone = np.sin(2 * np.pi * self.beep_hz * t)
            ramp = min(n // 2, AUDIO_SAMPLE_RATE * 2 // 1000)
            env = np.ones(n)
            r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
            env[:ramp] = r
            env[n - ramp :] = r[::-1]
            second[:n] = tone * env * level
        pcm = np.round(second * 32767).astype(np.int16)
        self._second: npt.NDArray[np.int16] = np.repeat(pcm, self.channels) if self.channels > 1 else pcm
        self._silent = not beep

    @property
    def frames_per_second(self) -> int:
        return AUDIO_SAMPLE_RATE // self.samples_per_frame

    def pts_of(self, index: int) -> int:
        """The pts (in samples) of frame ``index``."""
        return index * self.samples_per_frame

    def render(self, index: int) -> av.AudioFrame:
        """Build frame ``index`` (``pts``, ``time_base`` and ``sample_rate`` set)."""
        spf = self.samples_per_frame
        offset = (index % self.frames_per_second) * spf * self.channels
        data = self._second[offset : offset + spf * self.channels].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout=self.layout)
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = self.pts_of(index)
        frame.time_base = AUDIO_TIME_BASE
        return frame

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._index is None:
            start = self.clock.anchor()
            self._index = max(0, math.floor((time.time() - start) * self.frames_per_second))
        else:
            self._index += 1
        if self.realtime:
            start = self.clock.anchor()
            wait = start + self._index * self.samples_per_frame / AUDIO_SAMPLE_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        return self.render(self._index)


# --------------------------------------------------------------------------------------------------
# A participant and a file source
# --------------------------------------------------------------------------------------------------


class SyntheticParticipant:
    """The tracks of one synthetic user, sharing one :class:`MediaClock`.

    ``video`` and ``audio`` are created eagerly (camera and microphone); :meth:`screen_track`
    creates a screen-share track on the same clock (its flashes coincide with the beeps too).
    """

    def __init__(
        self,
        user_id: str,
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 15,
        audio_layout: Literal["mono", "stereo"] = "stereo",
        clock: MediaClock | None = None,
        realtime: bool = True,
    ) -> None:
        self.user_id = user_id
        self.clock = clock if clock is not None else MediaClock()
        self.realtime = realtime
        self.video = PatternVideoTrack(
            user_id, width=width, height=height, fps=fps, clock=self.clock, realtime=realtime
        )
        self.audio = PatternAudioTrack(user_id, clock=self.clock, layout=audio_layout, realtime=realtime)
        self._screens: list[PatternVideoTrack] = []

    @property
    def colour(self) -> tuple[int, int, int]:
        return user_colour(self.user_id)

    @property
    def beep_hz(self) -> int:
        return user_beep_hz(self.user_id)

    def screen_track(self, *, width: int = 1280, height: int = 720, fps: int = 5) -> PatternVideoTrack:
        track = PatternVideoTrack(
            self.user_id,
            width=width,
            height=height,
            fps=fps,
            clock=self.clock,
            screen=True,
            realtime=self.realtime,
        )
        self._screens.append(track)
        return track

    def stop(self) -> None:
        for track in (self.video, self.audio, *self._screens):
            track.stop()


def open_file_source(
    path: str,
    *,
    loop: bool = False,
    decode: bool = True,
    format: str | None = None,
    options: Mapping[str, str] | None = None,
) -> MediaPlayer:
    """Play a media file as a participant: ``player.audio`` / ``player.video`` are the tracks
    (``None`` when the file lacks that kind). ``decode=False`` yields encoded packets, which aiortc
    sends without re-encoding when the codec matches. Keep a reference to the player."""
    opts: dict[str, Any] | None = dict(options) if options is not None else None
    return MediaPlayer(path, format=format, options=opts, loop=loop, decode=decode)
