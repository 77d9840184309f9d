"""The server-side whiteboard renderer: a board (or its timeline) to video frames, with Skia.

Skia is the 2D library behind Chrome's canvas, so strokes look as they do in the browser client:
anti-aliased paths with round caps and joins, the eraser as a clear blend on the drawing layer,
text in the system's sans-serif face. The page keeps its aspect ratio (TIW's ``InitParam``
``ratio``) and is centred in the frame, letterboxed in grey; a page's background image is scaled
to fit the page and centred (as the browser's ``contain``).

:func:`write_board_video` turns a room's operation log into an H.264 MP4: frame ``n`` shows the
board built by every operation whose time ``t`` is at most the frame's wall-clock time. Spans
left out (a paused recording) are skipped, so the video holds only what was recorded.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt
import skia

from roomcast.domain.whiteboard import Board, parse_ratio

__all__ = ["BoardRenderer", "VideoResult", "board_at", "frame_times", "parse_ratio", "write_board_video"]

U8Array = npt.NDArray[np.uint8]
ImageSource = Callable[[str], U8Array | None]
"""An image URL to RGBA pixels (None: not available, the page stays white)."""

LETTERBOX: Final = 0xFFE0E0E0
PAGE: Final = 0xFFFFFFFF


def _colour(hex_colour: str | None, default: int = 0xFF000000) -> int:
    if not hex_colour:
        return default
    return 0xFF000000 | int(hex_colour[1:], 16)


class BoardRenderer:
    """Draws boards at one frame size; keeps decoded background images."""

    def __init__(
        self,
        width: int,
        height: int,
        ratio: tuple[int, int] = (16, 9),
        images: ImageSource | None = None,
    ) -> None:
        self.width, self.height = width, height
        rw, rh = ratio
        if width * rh >= height * rw:  # the frame is wider than the page
            ph = float(height)
            pw = ph * rw / rh
        else:
            pw = float(width)
            ph = pw * rh / rw
        self.page = skia.Rect.MakeXYWH((width - pw) / 2, (height - ph) / 2, pw, ph)
        self._images = images
        self._decoded: dict[str, skia.Image | None] = {}
        self._surface = skia.Surface(width, height)
        self._font = skia.Typeface("sans-serif")

    # -- geometry ---------------------------------------------------------------------------------
    def _xy(self, p: Sequence[float]) -> tuple[float, float]:
        return self.page.left() + p[0] * self.page.width(), self.page.top() + p[1] * self.page.height()

    def _len(self, thousandths: float) -> float:
        return float(thousandths / 1000.0 * self.page.width())

    # -- drawing ----------------------------------------------------------------------------------
    def _image(self, url: str) -> skia.Image | None:
        if url not in self._decoded:
            pixels = self._images(url) if self._images is not None else None
            self._decoded[url] = (
                skia.Image.fromarray(np.ascontiguousarray(pixels), colorType=skia.kRGBA_8888_ColorType)
                if pixels is not None
                else None
            )
        return self._decoded[url]

    def _background(self, canvas: skia.Canvas, url: str | None) -> None:
        img = self._image(url) if url else None
        if img is None:
            return
        page = self.page
        scale = min(page.width() / img.width(), page.height() / img.height())
        w, h = img.width() * scale, img.height() * scale
        dst = skia.Rect.MakeXYWH(page.centerX() - w / 2, page.centerY() - h / 2, w, h)
        canvas.drawImageRect(img, dst, skia.SamplingOptions(skia.FilterMode.kLinear))

    def _stroke(self, width: float, colour: int, *, erase: bool = False) -> skia.Paint:
        paint = skia.Paint(
            AntiAlias=True,
            Color=colour,
            Style=skia.Paint.kStroke_Style,
            StrokeWidth=max(width, 0.5),
            StrokeCap=skia.Paint.kRound_Cap,
            StrokeJoin=skia.Paint.kRound_Join,
        )
        if erase:
            paint.setBlendMode(skia.BlendMode.kClear)
        return paint

    def _shape(self, canvas: skia.Canvas, op: Mapping[str, Any]) -> None:
        kind = op["kind"]
        points = [self._xy(p) for p in op["points"]]
        if kind in ("pen", "line", "eraser"):
            width = self._len(op["width"])
            paint = self._stroke(width, _colour(op.get("color")), erase=kind == "eraser")
            if len(points) == 1:
                paint.setStyle(skia.Paint.kFill_Style)
                canvas.drawCircle(points[0][0], points[0][1], width / 2, paint)
                return
            path = skia.Path()
            path.moveTo(*points[0])
            for xy in points[1:]:
                path.lineTo(*xy)
            canvas.drawPath(path, paint)
        elif kind in ("rect", "ellipse"):
            (x0, y0), (x1, y1) = points
            box = skia.Rect.MakeLTRB(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            if op.get("fill"):
                fill = skia.Paint(AntiAlias=True, Color=_colour(op["fill"]), Style=skia.Paint.kFill_Style)
                if kind == "rect":
                    canvas.drawRect(box, fill)
                else:
                    canvas.drawOval(box, fill)
            stroke = self._stroke(self._len(op["width"]), _colour(op.get("color")))
            if kind == "rect":
                stroke.setStrokeJoin(skia.Paint.kMiter_Join)  # the canvas's strokeRect corners
                canvas.drawRect(box, stroke)
            else:
                canvas.drawOval(box, stroke)
        elif kind == "text":
            size = self._len(op["size"])
            font = skia.Font(self._font, size)
            font.setEdging(skia.Font.Edging.kAntiAlias)
            paint = skia.Paint(AntiAlias=True, Color=_colour(op.get("color")))
            x, y = points[0]
            ascent = -font.getMetrics().fAscent
            for n, line in enumerate(str(op["text"]).split("\n")):
                canvas.drawString(line, x, y + n * 1.2 * size + ascent, font, paint)

    def render(self, board: Board) -> U8Array:
        """The board's current page as an ``(height, width, 3)`` RGB frame."""
        canvas = self._surface.getCanvas()
        canvas.clear(LETTERBOX)
        canvas.save()
        canvas.clipRect(self.page, doAntiAlias=True)
        canvas.drawRect(self.page, skia.Paint(Color=PAGE))
        page = board.pages.get(board.current)
        self._background(canvas, page.background if page else None)
        canvas.saveLayer(self.page)  # the drawing layer: the eraser clears it, not the background
        for op in board.visible():
            self._shape(canvas, op)
        canvas.restore()
        canvas.restore()
        rgba = self._surface.makeImageSnapshot().toarray(colorType=skia.kRGBA_8888_ColorType)
        return np.ascontiguousarray(rgba[:, :, :3])


def frame_times(spans: Sequence[tuple[int, int]], fps: int) -> Iterator[float]:
    """Wall-clock ms of each frame of the spans played back to back at ``fps``."""
    frame_ms = 1000.0 / fps
    total = sum(max(0, b - a) for a, b in spans)
    k = 0
    span = 0
    before = 0  # play ms of the spans before ``span``
    while k * frame_ms < total:
        play = k * frame_ms
        while play >= before + (spans[span][1] - spans[span][0]):
            before += max(0, spans[span][1] - spans[span][0])
            span += 1
        yield spans[span][0] + (play - before)
        k += 1


def board_at(ops: Iterable[Mapping[str, Any]], t_ms: int) -> Board:
    """The board as it was at ``t_ms`` (every operation with ``t <= t_ms``)."""
    return Board.replay(op for op in ops if int(op["t"]) <= t_ms)


@dataclass(frozen=True)
class VideoResult:
    path: Path
    duration_ms: int
    frames: int
    size: int
    width: int
    height: int


def write_board_video(
    path: Path,
    ops: Sequence[Mapping[str, Any]],
    spans: Sequence[tuple[int, int]],
    renderer: BoardRenderer,
    *,
    fps: int = 10,
    bitrate_kbps: int = 800,
) -> VideoResult:
    """Render the board over ``spans`` (wall-clock ms, in order) into an H.264 MP4 at ``path``.

    Operations before the first span are the board's starting state. Blocking: run it in a
    worker thread."""
    ops = sorted(ops, key=lambda o: int(o["seq"]))
    times = [int(o["t"]) for o in ops]
    board = Board()
    applied = 0
    frame_ms = 1000.0 / fps
    frames = 0
    last: U8Array | None = None
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = renderer.width, renderer.height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate_kbps * 1000
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "veryfast", "g": str(fps * 2)}
        for now in frame_times(spans, fps):
            upto = bisect.bisect_right(times, now)
            # Operations are in seq order; their times are too, except for clock steps.
            changed = last is None or upto > applied
            while applied < upto:
                board.apply(ops[applied])
                applied += 1
            if changed:
                last = renderer.render(board)
            assert last is not None
            frame = av.VideoFrame.from_ndarray(last, format="rgb24")
            frame.pts = frames
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
            frames += 1
        for packet in stream.encode():
            out.mux(packet)
    return VideoResult(
        path=path,
        duration_ms=round(frames * frame_ms),
        frames=frames,
        size=path.stat().st_size,
        width=renderer.width,
        height=renderer.height,
    )
