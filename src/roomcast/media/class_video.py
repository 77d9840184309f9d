"""Videos made after a recording from what it recorded: a class's mixed video (whiteboard and
cameras in a layout) and a user's videos spliced across pauses.

Inputs are the recording's per-user files (each with the wall-clock time of its start), the
room's whiteboard operations and the recorded spans (wall-clock milliseconds; a paused span is
left out, so the output is the spans back to back). Frame ``n`` of a span shows, for each
source, its latest frame at that wall-clock time; audio is every source's audio at the same
times, summed. Drawing is :class:`roomcast.media.compositor.Compositor` (the live mixer's), the
whiteboard is :class:`roomcast.media.whiteboard.BoardRenderer`.

Sources are matched to layout slots as TIW does: a slot naming a stream id takes the user whose
id starts with it, the whiteboard slot takes the board, and a new camera takes the first free
slot (the teacher's first), keeping it while it is there.

Blocking work: run :func:`compose_class_video` in a worker thread.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from roomcast.domain.layout import (
    Background,
    Canvas,
    Color,
    ImageRef,
    Layout,
    Pane,
    Placeholder,
    PlaceholderKind,
    Rect,
    RenderMode,
)
from roomcast.domain.whiteboard import Board

from .compositor import Compositor, SourceKey
from .whiteboard import BoardRenderer, VideoResult, frame_times

__all__ = ["BOARD", "ClassLayout", "Clip", "Slot", "compose_class_video", "probe_video_size"]

BOARD: Final = "<board>"
"""The slot source that shows the whiteboard (no user id can start with it; dialects map their own
stream id for the board onto it)."""
_BOARD_KEY: Final = SourceKey(BOARD, room_id="\x00whiteboard")
_FILLER_URL: Final = "roomcast:filler"
RATE: Final = 48000
F32Array = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Clip:
    """One recorded file of a user: its time 0 is ``begin_ms`` (wall clock, ms)."""

    user_id: str
    path: Path
    begin_ms: int
    video: bool = True
    audio: bool = True


@dataclass(frozen=True)
class Slot:
    rect: Rect
    source: str | None = None
    """``BOARD``, a user id prefix, or None: a free slot for the next camera."""
    z: int = 0
    render: RenderMode = RenderMode.FIT
    background: Color | None = None


@dataclass(frozen=True)
class ClassLayout:
    width: int
    height: int
    slots: tuple[Slot, ...]
    background: Color = field(default_factory=lambda: Color(0, 0, 0))
    teacher: str | None = None
    """Owns the first free slot (left empty while the teacher is away)."""
    filler: bool = False
    """Slots of absent users show the filler image, black without one (splicing); otherwise
    their background."""


def probe_video_size(path: Path) -> tuple[int, int] | None:
    with av.open(str(path)) as c:
        if not c.streams.video:
            return None
        cc = c.streams.video[0].codec_context
        return cc.width, cc.height


class _VideoReader:
    """A clip's video frames in order; :meth:`at` is the latest frame at a wall-clock time."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self._container = av.open(str(clip.path))
        stream = self._container.streams.video[0] if self._container.streams.video else None
        self._frames: Iterator[av.VideoFrame] = (
            iter(self._container.decode(stream)) if stream is not None else iter(())
        )
        duration = self._container.duration  # microseconds
        self.end_ms = clip.begin_ms + (duration // 1000 if duration else 0)
        self._next: av.VideoFrame | None = None
        self._current: av.VideoFrame | None = None
        self._done = False
        self._advance()

    def _advance(self) -> None:
        try:
            self._next = next(self._frames)
        except (StopIteration, av.error.FFmpegError):
            self._next = None
            self._done = True

    def _wall(self, frame: av.VideoFrame) -> float:
        return self.clip.begin_ms + float(frame.time or 0.0) * 1000.0

    def at(self, t_ms: float) -> av.VideoFrame | None:
        if t_ms < self.clip.begin_ms or t_ms > self.end_ms:
            return None
        while self._next is not None and self._wall(self._next) <= t_ms:
            self._current = self._next
            self._advance()
        return self._current

    def close(self) -> None:
        self._container.close()


class _AudioReader:
    """A clip's audio as 48 kHz stereo float samples, read by absolute sample index."""

    def __init__(self, clip: Clip) -> None:
        self._container = av.open(str(clip.path))
        stream = self._container.streams.audio[0] if self._container.streams.audio else None
        self._frames: Iterator[av.AudioFrame] = (
            iter(self._container.decode(stream)) if stream is not None else iter(())
        )
        self._resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
        self._origin = clip.begin_ms * RATE // 1000
        self._buf = np.zeros((0, 2), np.float32)
        self._buf_start = self._origin
        self._done = stream is None

    def _decode_more(self) -> None:
        try:
            frame = next(self._frames)
        except (StopIteration, av.error.FFmpegError):
            self._done = True
            return
        start = self._origin + round(float(frame.time or 0.0) * RATE)
        for out in self._resampler.resample(frame):
            pcm = out.to_ndarray().reshape(-1, 2).astype(np.float32)
            end = self._buf_start + len(self._buf)
            if start > end:  # a gap: silence
                self._buf = np.concatenate([self._buf, np.zeros((start - end, 2), np.float32)])
            elif start < end:  # an overlap: keep what is there
                pcm = pcm[end - start :]
            self._buf = np.concatenate([self._buf, pcm])
            start = self._buf_start + len(self._buf)

    def take(self, start: int, n: int) -> F32Array:
        while not self._done and self._buf_start + len(self._buf) < start + n:
            self._decode_more()
        out = np.zeros((n, 2), np.float32)
        lo = max(start, self._buf_start)
        hi = min(start + n, self._buf_start + len(self._buf))
        if hi > lo:
            out[lo - start : hi - start] = self._buf[lo - self._buf_start : hi - self._buf_start]
        drop = max(0, min(start + n, self._buf_start + len(self._buf)) - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return out

    def close(self) -> None:
        self._container.close()


@dataclass
class _Assign:
    layout: ClassLayout
    slots_of: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def update(self, present: Sequence[str]) -> bool:
        """Give present users slots; True when the assignment changed."""
        before = dict(self.slots_of)
        for user in list(self.slots_of):
            if user not in present:
                del self.slots_of[user]
        for user in present:
            if user not in self.order:
                self.order.append(user)
        teacher = self.layout.teacher
        # The teacher's slot (the first free one) is kept for the teacher, present or not.
        free = [i for i, s in enumerate(self.layout.slots) if s.source is None]
        reserved = free[0] if teacher and free else None
        ranked = sorted(present, key=lambda u: (u != teacher, self.order.index(u)))
        taken = set(self.slots_of.values())
        for user in ranked:
            if user in self.slots_of:
                continue
            for i, slot in enumerate(self.layout.slots):
                if i in taken or slot.source == BOARD or (i == reserved and user != teacher):
                    continue
                if slot.source is None or user.startswith(slot.source):
                    if slot.source is None and any(
                        s.source not in (None, BOARD) and user.startswith(s.source) for s in self.layout.slots
                    ):
                        continue  # a slot of its own is waiting for this user
                    self.slots_of[user] = i
                    taken.add(i)
                    break
        return before != self.slots_of

    def panes(self, filler_image: bool) -> tuple[Pane, ...]:
        users = {i: u for u, i in self.slots_of.items()}
        placeholder = Placeholder()
        if self.layout.filler:
            placeholder = (
                Placeholder(PlaceholderKind.IMAGE, ImageRef(_FILLER_URL, RenderMode.FIT))
                if filler_image
                else Placeholder(PlaceholderKind.BLACK)
            )
        panes = []
        for i, slot in enumerate(self.layout.slots):
            user: str | None = users.get(i)
            room: str | None = None
            if slot.source == BOARD:
                user, room = _BOARD_KEY.user_id, _BOARD_KEY.room_id
            panes.append(
                Pane(
                    rect=slot.rect,
                    user_id=user,
                    room_id=room,
                    z=slot.z,
                    render=slot.render,
                    fill_color=slot.background,
                    placeholder=placeholder,
                    has_video=user is not None,
                )
            )
        return tuple(sorted(panes, key=lambda p: p.z))


def _play_ms(spans: Sequence[tuple[int, int]]) -> int:
    return sum(max(0, b - a) for a, b in spans)


def compose_class_video(
    path: Path,
    layout: ClassLayout,
    clips: Sequence[Clip],
    spans: Sequence[tuple[int, int]],
    *,
    board_ops: Sequence[Mapping[str, Any]] = (),
    ratio: tuple[int, int] = (16, 9),
    images: Mapping[str, U8Array] | None = None,
    filler: U8Array | None = None,
    fps: int = 15,
    audio: bool = True,
    bitrate_kbps: int = 1500,
) -> VideoResult:
    """Write the class video of ``spans`` to ``path`` (H.264, and AAC when ``audio``)."""
    board_slot = next((s for s in layout.slots if s.source == BOARD), None)
    renderer = (
        BoardRenderer(
            board_slot.rect.width - board_slot.rect.width % 2,
            board_slot.rect.height - board_slot.rect.height % 2,
            ratio,
            images=(images or {}).get,
        )
        if board_slot is not None
        else None
    )
    ops = sorted(board_ops, key=lambda o: int(o["seq"]))
    times = [int(o["t"]) for o in ops]
    board = Board()
    applied = 0
    board_frame: av.VideoFrame | None = None

    def loader(url: str) -> U8Array | None:
        return filler if url == _FILLER_URL else None

    assign = _Assign(layout)
    canvas = Canvas(layout.width, layout.height, Background(layout.background))
    compositor = Compositor(Layout(canvas, assign.panes(filler is not None)), image_loader=loader)
    videos = [_VideoReader(c) for c in clips if c.video]
    audios = [_AudioReader(c) for c in clips if c.audio] if audio else []
    frame_ms = 1000.0 / fps
    per_frame = RATE // fps
    frames = 0
    samples = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height = layout.width, layout.height
            vs.pix_fmt = "yuv420p"
            vs.bit_rate = bitrate_kbps * 1000
            vs.codec_context.time_base = Fraction(1, fps)
            vs.options = {"preset": "veryfast", "g": str(fps * 2)}
            as_ = out.add_stream("aac", rate=RATE, layout="stereo") if audio else None
            for now in frame_times(spans, fps):
                current: dict[SourceKey, av.VideoFrame] = {}
                present: list[str] = []
                for r in videos:
                    f = r.at(now)
                    if f is not None:
                        current[SourceKey(r.clip.user_id)] = f
                        if r.clip.user_id not in present:
                            present.append(r.clip.user_id)
                if assign.update(present):
                    compositor.set_layout(Layout(canvas, assign.panes(filler is not None)))
                if renderer is not None:
                    upto = bisect.bisect_right(times, now)
                    if board_frame is None or upto > applied:
                        while applied < upto:
                            board.apply(ops[applied])
                            applied += 1
                        board_frame = av.VideoFrame.from_ndarray(renderer.render(board), format="rgb24")
                    current[_BOARD_KEY] = board_frame
                frame = compositor.compose(current, wallclock=now / 1000.0)
                frame.pts = frames
                frame.time_base = Fraction(1, fps)
                for packet in vs.encode(frame):
                    out.mux(packet)
                if as_ is not None:
                    first = round(now * RATE / 1000)
                    mix = np.zeros((per_frame, 2), np.float32)
                    for a in audios:
                        mix += a.take(first, per_frame)
                    np.clip(mix, -1.0, 1.0, out=mix)
                    af = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(mix.reshape(1, -1)), format="flt", layout="stereo"
                    )
                    af.sample_rate = RATE
                    af.pts = samples
                    af.time_base = Fraction(1, RATE)
                    samples += per_frame
                    for packet in as_.encode(af):
                        out.mux(packet)
                frames += 1
            for packet in vs.encode():
                out.mux(packet)
            if as_ is not None:
                for packet in as_.encode():
                    out.mux(packet)
    finally:
        for r in videos:
            r.close()
        for a in audios:
            a.close()
    return VideoResult(
        path=path,
        duration_ms=round(frames * frame_ms),
        frames=frames,
        size=path.stat().st_size,
        width=layout.width,
        height=layout.height,
    )
