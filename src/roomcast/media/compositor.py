"""The video compositor of mixed recordings: decoded frames in, one canvas frame out.

:class:`Compositor` draws a :class:`~roomcast.domain.layout.Layout` into ``yuv420p`` frames:

1. the canvas background colour, then the background image (scaled by its own render mode);
2. each pane in drawing order (ascending ``z``): its fill colour, its background image, then its
   source frame scaled per :func:`~roomcast.domain.layout.frame_geometry` (fit / fill / stretch /
   smart fill, optional source crop) and blended with the pane's ``alpha``; when the pane's
   source has no picture, its placeholder (nothing, black, the last frame, or an image: the
   built-in default silhouette when the placeholder names no image);
3. the watermarks in their ``z`` order: images (with their own alpha channel), text and a
   timestamp (both drawn with the built-in bitmap font, :mod:`roomcast.media.bitmapfont`).

Everything is numpy on the three planes; scaling is FFmpeg's swscale through
``VideoFrame.reformat``.  What does not change from frame to frame is cached: the background
with every pane background that no lower pane can cover (the "base", one per layout), scaled
images and text as sprites, and each pane's last scaled frame (reused while the source frame
object is the same, e.g. a 15 fps source in a 30 fps canvas).  Typical cost: well under a
millisecond per pane plus one ``reformat`` per new source frame.

The compositor is synchronous and holds no thread: callers run :meth:`Compositor.compose` in
a worker thread (numpy and swscale release the GIL).  :meth:`Compositor.set_layout` may be
called from any thread; the new layout is used from the next frame on, so layout changes and
participant changes never leave a gap.

Colours follow BT.601 limited range, what FFmpeg and libx264 assume for untagged video.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from roomcast.domain.layout import (
    Color,
    ImageRef,
    ImageWatermark,
    Layout,
    Pane,
    PlaceholderKind,
    Rect,
    RenderMode,
    StreamKind,
    TextWatermark,
    TimestampWatermark,
    Watermark,
    frame_geometry,
)
from roomcast.media.bitmapfont import render_text

__all__ = [
    "Compositor",
    "ImageLoader",
    "Planes",
    "SourceKey",
    "Sprite",
    "default_placeholder",
    "frame_planes",
    "no_images",
    "rgb_to_yuv",
    "sprite_from_rgba",
]

U8Array = npt.NDArray[np.uint8]
U16Array = npt.NDArray[np.uint16]
ImageLoader = Callable[[str], U8Array | None]
"""Loads an image URL to an ``(h, w, 4)`` RGBA uint8 array (None when it cannot be loaded)."""

_Y_BLACK: Final = 16
_C_NEUTRAL: Final = 128


def rgb_to_yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    """RGB (0..255) to Y'CbCr, BT.601 limited range."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return (
        min(max(round(y), 16), 235),
        min(max(round(u), 16), 240),
        min(max(round(v), 16), 240),
    )


@dataclass(frozen=True, slots=True)
class SourceKey:
    """Identifies one video source of a layout: a user's camera or screen (in a room)."""

    user_id: str
    stream: StreamKind = StreamKind.CAMERA
    room_id: str | None = None

    @classmethod
    def of(cls, pane: Pane) -> SourceKey | None:
        if pane.user_id is None:
            return None
        return cls(pane.user_id, pane.stream, pane.room_id)


@dataclass(slots=True)
class Planes:
    """Three ``yuv420p`` planes (numpy arrays or views) of a ``width x height`` picture."""

    y: U8Array
    u: U8Array
    v: U8Array

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def solid(cls, width: int, height: int, color: Color) -> Planes:
        y, u, v = rgb_to_yuv(color.r, color.g, color.b)
        cw, ch = (width + 1) // 2, (height + 1) // 2
        return cls(
            np.full((height, width), y, np.uint8),
            np.full((ch, cw), u, np.uint8),
            np.full((ch, cw), v, np.uint8),
        )

    def copy(self) -> Planes:
        return Planes(self.y.copy(), self.u.copy(), self.v.copy())


def frame_planes(frame: av.VideoFrame) -> Planes:
    """Numpy views (no copy) of a ``yuv420p`` frame's planes, line padding cut off."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        raise ValueError(f"expected yuv420p, got {frame.format.name}")
    w, h = frame.width, frame.height
    sizes = ((w, h), ((w + 1) // 2, (h + 1) // 2), ((w + 1) // 2, (h + 1) // 2))
    views = []
    for plane, (pw, ph) in zip(frame.planes, sizes, strict=True):
        arr = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        views.append(arr[:ph, :pw])
    return Planes(views[0], views[1], views[2])


@dataclass(slots=True)
class Sprite:
    """A picture to blend onto the canvas at ``(x, y)``; alpha 0..256 per pixel (None = opaque)."""

    x: int
    y: int
    planes: Planes
    alpha_y: U16Array | None = None
    alpha_c: U16Array | None = None


def _downsample2(a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Average 2x2 blocks (odd edges replicated) of a 2-D or 3-D (h, w, c) array."""
    h, w = a.shape[0], a.shape[1]
    if h % 2 or w % 2:
        pad = [(0, h % 2), (0, w % 2)] + [(0, 0)] * (a.ndim - 2)
        a = np.pad(a, pad, mode="edge")
    out: npt.NDArray[np.float32] = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4.0
    return out


def sprite_from_rgba(rgba: U8Array, x: int = 0, y: int = 0, opacity: float = 1.0) -> Sprite:
    """Convert an ``(h, w, 4)`` RGBA image into a ``yuv420p`` sprite (BT.601 limited range)."""
    rgb = rgba[..., :3].astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    yy = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    c = _downsample2(rgb)
    cr, cg, cb = c[..., 0], c[..., 1], c[..., 2]
    uu = 128 + (-37.797 * cr - 74.203 * cg + 112.0 * cb) / 255
    vv = 128 + (112.0 * cr - 93.786 * cg - 18.214 * cb) / 255
    planes = Planes(
        np.clip(np.rint(yy), 16, 235).astype(np.uint8),
        np.clip(np.rint(uu), 16, 240).astype(np.uint8),
        np.clip(np.rint(vv), 16, 240).astype(np.uint8),
    )
    alpha = rgba[..., 3].astype(np.float32) * max(0.0, min(opacity, 1.0))
    if float(alpha.min()) >= 255.0:
        return Sprite(x, y, planes)
    ay = np.rint(alpha * 256.0 / 255.0).astype(np.uint16)
    ac = np.rint(_downsample2(alpha) * 256.0 / 255.0).astype(np.uint16)
    return Sprite(x, y, planes, ay, ac)


def _blend_into(dst: U8Array, src: U8Array, alpha: U16Array | int | None) -> None:
    """dst = src * a + dst * (1 - a), with a in 0..256 (None or 256: copy)."""
    if alpha is None or (isinstance(alpha, int) and alpha >= 256):
        np.copyto(dst, src)
        return
    if isinstance(alpha, int) and alpha <= 0:
        return
    s = src.astype(np.uint16)
    d = dst.astype(np.uint16)
    a = alpha
    dst[...] = ((s * a + d * (256 - a) + 128) >> 8).astype(np.uint8)


def _clip_box(x: int, y: int, w: int, h: int, cw: int, ch: int) -> tuple[int, int, int, int] | None:
    """Intersection of a box with ``[0, cw) x [0, ch)`` as (x0, y0, x1, y1); None if empty."""
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, cw), min(y + h, ch)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def blit(canvas: Planes, sprite: Sprite, opacity: float = 1.0) -> None:
    """Blend ``sprite`` onto ``canvas`` (clipped), multiplied by a uniform ``opacity``."""
    k = round(max(0.0, min(opacity, 1.0)) * 256)
    if k <= 0:
        return
    sp = sprite.planes
    box = _clip_box(sprite.x, sprite.y, sp.width, sp.height, canvas.width, canvas.height)
    if box is None:
        return
    x0, y0, x1, y1 = box
    sx, sy = x0 - sprite.x, y0 - sprite.y
    ay: U16Array | int | None = None
    if sprite.alpha_y is not None:
        a = sprite.alpha_y[sy : sy + y1 - y0, sx : sx + x1 - x0]
        ay = a if k >= 256 else ((a.astype(np.uint32) * k) >> 8).astype(np.uint16)
    elif k < 256:
        ay = k
    _blend_into(canvas.y[y0:y1, x0:x1], sp.y[sy : sy + y1 - y0, sx : sx + x1 - x0], ay)
    # chroma: the box rounded outward to chroma sites, clipped to both planes
    cx0, cy0 = x0 // 2, y0 // 2
    scx0, scy0 = cx0 - sprite.x // 2, cy0 - sprite.y // 2
    cw = min((x1 + 1) // 2 - cx0, sp.u.shape[1] - scx0, canvas.u.shape[1] - cx0)
    chh = min((y1 + 1) // 2 - cy0, sp.u.shape[0] - scy0, canvas.u.shape[0] - cy0)
    if cw <= 0 or chh <= 0 or scx0 < 0 or scy0 < 0:
        return
    ac: U16Array | int | None = None
    if sprite.alpha_c is not None:
        a = sprite.alpha_c[scy0 : scy0 + chh, scx0 : scx0 + cw]
        ac = a if k >= 256 else ((a.astype(np.uint32) * k) >> 8).astype(np.uint16)
    elif k < 256:
        ac = k
    for dplane, splane in ((canvas.u, sp.u), (canvas.v, sp.v)):
        _blend_into(dplane[cy0 : cy0 + chh, cx0 : cx0 + cw], splane[scy0 : scy0 + chh, scx0 : scx0 + cw], ac)


def fill_rect(canvas: Planes, rect: Rect, color: Color, opacity: float = 1.0) -> None:
    """Paint ``rect`` (clipped) with a solid colour."""
    box = _clip_box(rect.x, rect.y, rect.width, rect.height, canvas.width, canvas.height)
    if box is None:
        return
    x0, y0, x1, y1 = box
    yv, uv, vv = rgb_to_yuv(color.r, color.g, color.b)
    k = round(max(0.0, min(opacity, 1.0)) * 256)
    if k <= 0:
        return
    cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, (x1 + 1) // 2, (y1 + 1) // 2
    regions = (
        (canvas.y[y0:y1, x0:x1], yv),
        (canvas.u[cy0:cy1, cx0:cx1], uv),
        (canvas.v[cy0:cy1, cx0:cx1], vv),
    )
    for region, value in regions:
        if k >= 256:
            region[...] = value
        else:
            region[...] = ((region.astype(np.uint16) * (256 - k) + value * k + 128) >> 8).astype(np.uint8)


# --------------------------------------------------------------------------- images


def no_images(url: str) -> U8Array | None:
    """The default loader: no image is ever available (the compositor itself opens nothing;
    tenant images come through :class:`roomcast.media.images.ImageFetcher`)."""
    return None


def _scale_rgba(rgba: U8Array, width: int, height: int) -> U8Array:
    if rgba.shape[0] == height and rgba.shape[1] == width:
        return rgba
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgba), format="rgba")
    out = frame.reformat(width, height, format="rgba", interpolation="BICUBIC")
    return np.asarray(out.to_ndarray(), dtype=np.uint8)


def image_sprite(rgba: U8Array, rect: Rect, render: RenderMode, opacity: float = 1.0) -> Sprite | None:
    """An image drawn into ``rect`` with a render mode (fit leaves the rest transparent)."""
    h, w = rgba.shape[0], rgba.shape[1]
    if rect.empty or w == 0 or h == 0:
        return None
    geo = frame_geometry(w, h, rect, render)
    src = rgba[geo.src.y : geo.src.bottom, geo.src.x : geo.src.right]
    scaled = _scale_rgba(src, geo.dst.width, geo.dst.height)
    return sprite_from_rgba(scaled, geo.dst.x, geo.dst.y, opacity)


def default_placeholder(width: int, height: int) -> U8Array:
    """The built-in placeholder: a grey head-and-shoulders silhouette on a dark grey field."""
    img = np.empty((height, width, 4), np.uint8)
    img[...] = (43, 43, 46, 255)
    if width < 4 or height < 4:
        return img
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    side = min(width, height)
    cx, cy = width / 2, height * 0.42
    head = (xx - cx) ** 2 + (yy - cy) ** 2 <= (side * 0.16) ** 2
    body = ((xx - cx) / (side * 0.32)) ** 2 + ((yy - (cy + side * 0.42)) / (side * 0.24)) ** 2 <= 1.0
    body &= yy >= cy + side * 0.22
    img[head | body, :3] = (110, 110, 116)
    return img


# --------------------------------------------------------------------------- text


def text_rgba(
    text: str,
    rect: Rect,
    font_size: int,
    color: Color,
    background: Color | None,
) -> U8Array:
    """``rect``-sized RGBA: optional background, the text left-aligned and vertically centred."""
    w, h = rect.width, rect.height
    img = np.zeros((h, w, 4), np.uint8)
    if background is not None:
        img[...] = (background.r, background.g, background.b, 255)
    size = max(5, min(font_size, h))
    mask = render_text(text, size)
    pad = max(1, size // 6)
    ty = max(0, (h - mask.shape[0]) // 2)
    mh, mw = min(mask.shape[0], h - ty), min(mask.shape[1], max(w - pad, 0))
    if mh > 0 and mw > 0:
        ink = mask[:mh, :mw]
        region = img[ty : ty + mh, pad : pad + mw]
        region[ink] = (color.r, color.g, color.b, 255)
    return img


# --------------------------------------------------------------------------- compositor


@dataclass(slots=True)
class _Scaled:
    frame: av.VideoFrame
    dst: Rect
    planes: Planes


@dataclass(slots=True)
class _Prepared:
    """Per-layout caches."""

    layout: Layout
    base: Planes
    baked: frozenset[int]
    """Indexes of panes whose fill colour / background image are part of ``base``."""
    pane_backgrounds: dict[int, Sprite | None]
    watermarks: list[tuple[Watermark, Sprite | None]]


class Compositor:
    """Draws layouts into ``yuv420p`` canvas frames.

    ``image_loader`` resolves :class:`ImageRef` URLs (default: :func:`no_images`); it must not
    block (it runs on the mixing thread): :meth:`roomcast.media.images.ImageFetcher.get` reads
    a cache filled on the event loop, and :meth:`reload_images` redraws once images arrive.
    ``interpolation`` is the swscale method for scaling video.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        image_loader: ImageLoader = no_images,
        interpolation: str = "BILINEAR",
    ) -> None:
        self._loader = image_loader
        self._interpolation = interpolation
        self._images: dict[str, U8Array | None] = {}
        self._lock = threading.Lock()
        self._pending: Layout | None = layout
        self._reload = False
        self._prepared: _Prepared | None = None
        self._last: dict[SourceKey, av.VideoFrame] = {}
        self._scaled: dict[tuple[SourceKey, Rect, RenderMode, object], _Scaled] = {}
        self._placeholders: dict[tuple[str | None, Rect, RenderMode], Sprite | None] = {}
        self._stamp: dict[int, tuple[str, Sprite]] = {}
        self.frames_composed = 0

    # ------------------------------------------------------------------ layout

    @property
    def layout(self) -> Layout:
        with self._lock:
            if self._pending is not None:
                return self._pending
        assert self._prepared is not None
        return self._prepared.layout

    def set_layout(self, layout: Layout) -> None:
        """Use ``layout`` from the next :meth:`compose` on (thread-safe)."""
        with self._lock:
            self._pending = layout

    def reload_images(self) -> None:
        """Ask the loader again for every image from the next :meth:`compose` on (thread-safe):
        called when images the layout names have been fetched."""
        with self._lock:
            self._reload = True

    def prepare(self, layout: Layout) -> None:
        """Load images and build static layers for ``layout`` now (call off the event loop)."""
        self._prepare(layout)

    def forget(self, key: SourceKey) -> None:
        """Drop the remembered last frame of a source (it then shows black as "last frame")."""
        self._last.pop(key, None)
        for k in [k for k in self._scaled if k[0] == key]:
            del self._scaled[k]

    def _image(self, ref: ImageRef | None) -> U8Array | None:
        if ref is None:
            return None
        if ref.url not in self._images:
            self._images[ref.url] = self._loader(ref.url)
        return self._images[ref.url]

    def _prepare(self, layout: Layout, *, force: bool = False) -> _Prepared:
        prepared = self._prepared
        if prepared is not None and prepared.layout == layout and not force:
            return prepared
        w, h = layout.width, layout.height
        bg = layout.canvas.background
        base = Planes.solid(w, h, bg.color)
        img = self._image(bg.image)
        if img is not None:
            sprite = image_sprite(img, Rect(0, 0, w, h), bg.image.render if bg.image else RenderMode.FILL)
            if sprite is not None:
                blit(base, sprite)
        baked: set[int] = set()
        backgrounds: dict[int, Sprite | None] = {}
        for i, pane in enumerate(layout.panes):
            sprite = None
            pane_img = self._image(pane.background_image)
            if pane_img is not None and pane.background_image is not None:
                sprite = image_sprite(pane_img, pane.rect, pane.background_image.render)
            backgrounds[i] = sprite
            covered = any(other.rect.intersects(pane.rect) for other in layout.panes[:i])
            if not covered:
                baked.add(i)
                if pane.fill_color is not None:
                    fill_rect(base, pane.rect, pane.fill_color, pane.alpha)
                if sprite is not None:
                    blit(base, sprite, pane.alpha)
        marks: list[tuple[Watermark, Sprite | None]] = []
        for mark in layout.watermarks:
            marks.append((mark, self._static_watermark(mark)))
        prepared = _Prepared(layout, base, frozenset(baked), backgrounds, marks)
        self._prepared = prepared
        # scaled-frame caches of rectangles that no longer exist are useless
        rects = {p.rect for p in layout.panes}
        for k in [k for k in self._scaled if k[1] not in rects]:
            del self._scaled[k]
        return prepared

    def _static_watermark(self, mark: Watermark) -> Sprite | None:
        if isinstance(mark, ImageWatermark):
            img = self._image(mark.image)
            return None if img is None else image_sprite(img, mark.rect, mark.image.render, mark.alpha)
        if isinstance(mark, TextWatermark):
            if mark.rect.empty:
                return None
            rgba = text_rgba(mark.text, mark.rect, mark.font_size, mark.color, mark.background)
            return sprite_from_rgba(rgba, mark.rect.x, mark.rect.y, mark.alpha)
        return None  # timestamps are drawn per frame

    def _timestamp_sprite(self, index: int, mark: TimestampWatermark, wallclock: float) -> Sprite | None:
        if mark.rect.empty:
            return None
        tz = timezone(timedelta(minutes=mark.utc_offset_minutes))
        text = datetime.fromtimestamp(wallclock, tz).strftime(mark.format)
        cached = self._stamp.get(index)
        if cached is not None and cached[0] == text:
            return cached[1]
        rgba = text_rgba(text, mark.rect, mark.font_size, mark.color, mark.background)
        sprite = sprite_from_rgba(rgba, mark.rect.x, mark.rect.y, mark.alpha)
        self._stamp[index] = (text, sprite)
        return sprite

    # ------------------------------------------------------------------ drawing

    def _scale(self, key: SourceKey, pane: Pane, frame: av.VideoFrame) -> _Scaled | None:
        ck = (key, pane.rect, pane.render, pane.crop)
        cached = self._scaled.get(ck)
        if cached is not None and cached.frame is frame:
            return cached
        if frame.width <= 0 or frame.height <= 0:
            return None
        geo = frame_geometry(frame.width, frame.height, pane.rect, pane.render, pane.crop)
        if geo.dst.empty:
            return None
        src = frame
        if src.format.name not in ("yuv420p", "yuvj420p"):
            src = src.reformat(format="yuv420p")
        if geo.src != Rect(0, 0, frame.width, frame.height):
            src = _crop_frame(src, geo.src)
        if (src.width, src.height) != (geo.dst.width, geo.dst.height) or src.format.name != "yuv420p":
            src = src.reformat(
                geo.dst.width, geo.dst.height, format="yuv420p", interpolation=self._interpolation
            )
        scaled = _Scaled(frame, geo.dst, frame_planes(src))
        self._scaled[ck] = scaled
        return scaled

    def _placeholder(self, pane: Pane) -> Sprite | None:
        ref = pane.placeholder.image
        url = ref.url if ref is not None else None
        render = ref.render if ref is not None else RenderMode.FILL
        ck = (url, pane.rect, render)
        if ck not in self._placeholders:
            img = self._image(ref)
            if img is None:
                img = default_placeholder(pane.rect.width, pane.rect.height)
            self._placeholders[ck] = image_sprite(img, pane.rect, render)
        return self._placeholders[ck]

    def compose(
        self,
        frames: Mapping[SourceKey, av.VideoFrame],
        *,
        wallclock: float | None = None,
        out: av.VideoFrame | None = None,
    ) -> av.VideoFrame:
        """Draw one canvas frame.

        ``frames`` holds the current picture of every source that has one; a pane whose source
        is missing shows its placeholder.  ``wallclock`` (a ``time.time()`` value) is the time
        shown by timestamp watermarks.  Returns a new ``yuv420p`` frame (or draws into ``out``),
        without ``pts``.
        """
        with self._lock:
            pending, self._pending = self._pending, None
            reload, self._reload = self._reload, False
        if reload:
            self._images.clear()
            self._placeholders.clear()
            if pending is None and self._prepared is not None:
                pending = self._prepared.layout
        prepared = self._prepare(pending, force=reload) if pending is not None else self._prepared
        assert prepared is not None
        layout = prepared.layout
        for key, frame in frames.items():
            self._last[key] = frame
        if out is None:
            out = av.VideoFrame(layout.width, layout.height, "yuv420p")
        canvas = frame_planes(out)
        np.copyto(canvas.y, prepared.base.y)
        np.copyto(canvas.u, prepared.base.u)
        np.copyto(canvas.v, prepared.base.v)
        for i, pane in enumerate(layout.panes):
            self._draw_pane(canvas, i, pane, prepared, frames)
        when = wallclock
        for i, (mark, sprite) in enumerate(prepared.watermarks):
            if isinstance(mark, TimestampWatermark):
                if when is None:
                    when = time.time()
                sprite = self._timestamp_sprite(i, mark, when)
            if sprite is not None:
                blit(canvas, sprite)
        self.frames_composed += 1
        return out

    def _draw_pane(
        self,
        canvas: Planes,
        index: int,
        pane: Pane,
        prepared: _Prepared,
        frames: Mapping[SourceKey, av.VideoFrame],
    ) -> None:
        if pane.rect.empty or pane.alpha <= 0:
            return
        if index not in prepared.baked:
            if pane.fill_color is not None:
                fill_rect(canvas, pane.rect, pane.fill_color, pane.alpha)
            bg = prepared.pane_backgrounds.get(index)
            if bg is not None:
                blit(canvas, bg, pane.alpha)
        key = SourceKey.of(pane)
        frame = frames.get(key) if key is not None else None
        if frame is None:
            kind = pane.placeholder.kind
            if kind is PlaceholderKind.NONE:
                return
            if kind is PlaceholderKind.IMAGE:
                sprite = self._placeholder(pane)
                if sprite is not None:
                    blit(canvas, sprite, pane.alpha)
                return
            if kind is PlaceholderKind.LAST_FRAME and key is not None:
                frame = self._last.get(key)
            if frame is None:
                fill_rect(canvas, pane.rect, Color(0, 0, 0), pane.alpha)
                return
        assert key is not None
        scaled = self._scale(key, pane, frame)
        if scaled is None:
            return
        blit(canvas, Sprite(scaled.dst.x, scaled.dst.y, scaled.planes), pane.alpha)


def _crop_frame(frame: av.VideoFrame, src: Rect) -> av.VideoFrame:
    """A new ``yuv420p`` frame holding ``src`` of ``frame`` (origin rounded down to even)."""
    x, y = src.x & ~1, src.y & ~1
    w = max(2, min(src.right - x, frame.width - x))
    h = max(2, min(src.bottom - y, frame.height - y))
    planes = frame_planes(frame)
    out = av.VideoFrame(w, h, "yuv420p")
    dst = frame_planes(out)
    np.copyto(dst.y, planes.y[y : y + h, x : x + w])
    cw, ch = dst.u.shape[1], dst.u.shape[0]
    np.copyto(dst.u, planes.u[y // 2 : y // 2 + ch, x // 2 : x // 2 + cw])
    np.copyto(dst.v, planes.v[y // 2 : y // 2 + ch, x // 2 : x // 2 + cw])
    return out
