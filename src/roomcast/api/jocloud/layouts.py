"""JOYY (jocloud) cloud-recording mix layouts -> generic domain layouts.

``startrecord`` / ``updatemixrecord`` carry a ``mixconfig`` with either a layout template
(``templateid`` 1-5, single room, no ``input``) or a custom layout (``input``: one entry per
source stream with absolute pixel coordinates), plus ``output`` (canvas size, frame patching,
watermarks, background).  The API layer parses and validates that JSON and calls
:func:`mix_layout` with a :class:`JoyyMixConfig`.

Choices where the JOYY document is vague
----------------------------------------
1. **Templates 1-5 are only named** ("See Mix layout for details": 1 Horizontal, 2 Vertical,
   3 Tiled, 4 Corner, 5 "5 Users Horizontal"); their geometry is not in the document.  Ours:

   * 1 Horizontal: up to 4 users side by side, equal full-height columns, left to right in
     room-entry order (1 user fills the canvas, 2 split it in halves, ...);
   * 2 Vertical: up to 4 users stacked top to bottom, equal full-width rows;
   * 3 Tiled: the generic grid, up to 16 users (the custom layout's layer limit);
   * 4 Corner: the first user fills the canvas; up to 3 more float in the bottom-right corner,
     stacked upwards, each 23.5 % of the canvas side with 1.2 % gaps (the floating lattice);
   * 5 Five users horizontal: the canvas is always split into 5 equal columns; users fill them
     left to right and empty columns show the background.

   Template windows crop to fill (``crop`` = 1 behaviour).  Audio-only users still take a
   window and show the frame patch (below).
2. **Custom inputs** are absolute pixels (``layoutX``/``layoutY``/``layoutW``/``layoutH``),
   clipped to the canvas.  ``zOrder`` is the z-order (0 bottom, up to 16; ties keep list
   order).  ``crop`` 0: fit, centred, black bars; 1: fill, centred crop.  ``cropX``/``cropY``/
   ``cropW``/``cropH`` select a region of the source frame before that.  ``alpha`` is opacity
   (1.0 opaque).  Inputs with ``streamtype`` 2 (audio) get no window.  An input without
   ``uid`` is filled by the next user in room-entry order (the document requires ``uid``; this
   only makes the mapper total).  A named user who is absent keeps the window (frame patch).
3. **Frame patching** (``patch``) applies to every window whose user has no picture (absent,
   audio-only, camera off): 0 nothing (background shows), 1 black, 2 last frame, 3 ``patchUrl``.
4. **Watermarks** are placed at their ``x``/``y``; text and timestamp boxes are sized from the
   font size (0.6 em per character of the rendered text, 1.4 em high) and clipped to the
   canvas.  z-order: image watermarks (list order), then text (list order), then the
   timestamp on top.  Text/timestamp background defaults to black ("000000") as documented.
   The timestamp is shown in UTC+8 (JOYY is a China-based service; no time zone parameter).
5. **Image scale** ``0`` ("zoom and crop in equal proportions") is fill; ``1`` is stretch.
6. **Cross-room inputs.** Pass ``room_id`` = the task's room so inputs naming it match the
   main room's participants (``Participant.room_id`` None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from roomcast.domain.jsondata import encode
from roomcast.domain.layout import (
    BLACK,
    WHITE,
    Background,
    Canvas,
    Color,
    Corner,
    Crop,
    CustomSlot,
    Flow,
    ImageRef,
    ImageWatermark,
    Layout,
    Participant,
    Placeholder,
    PlaceholderKind,
    Rect,
    RenderMode,
    TextWatermark,
    TileStyle,
    TimestampWatermark,
    Watermark,
    custom,
    floating,
    grid,
    sample_time,
    strip,
    text_box,
)
from roomcast.domain.layout_templates import LayoutFunction, read_params, register_template
from roomcast.domain.recording import LayoutRef
from roomcast.net.urls import UrlPolicy

TEMPLATE_HORIZONTAL = 1
TEMPLATE_VERTICAL = 2
TEMPLATE_TILED = 3
TEMPLATE_CORNER = 4
TEMPLATE_FIVE_HORIZONTAL = 5
TEMPLATE_IDS = frozenset({1, 2, 3, 4, 5})
TEMPLATE_MAX_USERS: Mapping[int, int] = {1: 4, 2: 4, 3: 16, 4: 4, 5: 5}

COORD_MAX = 1920
"""``layoutX``/``layoutY`` in [0, 1920]; ``layoutW``/``layoutH`` and crop sizes in (0, 1920]."""
MAX_Z_ORDER = 16
ALPHA_RANGE = (0.0, 1.0)
"""Opacity: 0 fully transparent, 1 fully opaque (inputs and watermarks)."""
CROP_MODES: Mapping[int, RenderMode] = {0: RenderMode.FIT, 1: RenderMode.FILL}
INPUT_STREAM_TYPE_AV = 0
INPUT_STREAM_TYPE_VIDEO = 1
INPUT_STREAM_TYPE_AUDIO = 2
INPUT_STREAM_TYPES = frozenset({0, 1, 2})
PATCH_MODES: Mapping[int, PlaceholderKind] = {
    0: PlaceholderKind.NONE,
    1: PlaceholderKind.BLACK,
    2: PlaceholderKind.LAST_FRAME,
    3: PlaceholderKind.IMAGE,
}
IMAGE_SCALE_MODES: Mapping[int, RenderMode] = {0: RenderMode.FILL, 1: RenderMode.STRETCH}
FONT_SIZE_MAX = 100
"""Watermark font ``size`` in (0, 100]."""
URL_MAX_BYTES = 256
VIDEO_DIMENSION_RANGE = (16, 1920)
"""``videowidth``/``videoheight``; rounded to the nearest multiple of 4."""
TIMESTAMP_FORMATS = frozenset({"%Y/%m/%d", "%Y-%m-%d", "%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"})
TIMESTAMP_UTC_OFFSET_MINUTES = 480


def round_video_dimension(value: int) -> int:
    """``videowidth``/``videoheight`` as the service uses it: nearest multiple of 4, in range."""
    lo, hi = VIDEO_DIMENSION_RANGE
    return min(max(int(value / 4 + 0.5) * 4, lo), hi)


@dataclass(frozen=True, slots=True)
class JoyyInput:
    """One entry of ``mixconfig.input``."""

    uid: str | None
    roomid: str | None = None
    streamtype: int = INPUT_STREAM_TYPE_AV
    z_order: int = 0
    layout_x: int = 0
    layout_y: int = 0
    layout_w: int = 0
    layout_h: int = 0
    crop: int = 0
    crop_x: int | None = None
    crop_y: int | None = None
    crop_w: int | None = None
    crop_h: int | None = None
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class JoyyTimestampMark:
    x: int
    y: int
    format: str
    size: int
    font: str | None = None
    color: str | None = None
    background_color: str | None = None
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class JoyyTextMark:
    x: int
    y: int
    content: str
    size: int
    font: str | None = None
    color: str | None = None
    background_color: str | None = None
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class JoyyImageMark:
    x: int
    y: int
    width: int
    height: int
    url: str
    scale: int = 0
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class JoyyMixConfig:
    """``mixconfig``: ``templateid`` or ``input``, plus the picture fields of ``output``."""

    width: int
    height: int
    template_id: int | None = None
    inputs: Sequence[JoyyInput] = ()
    patch: int = 0
    patch_url: str | None = None
    background_color: str | None = None
    background_image_url: str | None = None
    background_image_scale: int = 0
    timestamp: JoyyTimestampMark | None = None
    texts: Sequence[JoyyTextMark] = ()
    images: Sequence[JoyyImageMark] = ()


def _color(text: str | None, default: Color) -> Color:
    return Color.from_hex(text) if text else default


def _watermarks(config: JoyyMixConfig) -> tuple[Watermark, ...]:
    out: list[Watermark] = []
    w, h = config.width, config.height
    for m in config.images:
        rect = Rect(m.x, m.y, max(m.width, 0), max(m.height, 0)).clip(w, h)
        if rect is not None:
            out.append(
                ImageWatermark(rect, ImageRef(m.url, IMAGE_SCALE_MODES[m.scale]), z=len(out), alpha=m.alpha)
            )
    for t in config.texts:
        rect = text_box(t.x, t.y, t.content, t.size, w, h)
        if rect is not None:
            out.append(
                TextWatermark(
                    rect,
                    t.content,
                    font_size=t.size,
                    color=_color(t.color, WHITE),
                    background=_color(t.background_color, BLACK),
                    font=t.font,
                    z=len(out),
                    alpha=t.alpha,
                )
            )
    ts = config.timestamp
    if ts is not None:
        rect = text_box(ts.x, ts.y, sample_time(ts.format), ts.size, w, h)
        if rect is not None:
            out.append(
                TimestampWatermark(
                    rect,
                    format=ts.format,
                    utc_offset_minutes=TIMESTAMP_UTC_OFFSET_MINUTES,
                    font_size=ts.size,
                    color=_color(ts.color, WHITE),
                    background=_color(ts.background_color, BLACK),
                    font=ts.font,
                    z=len(out),
                    alpha=ts.alpha,
                )
            )
    return tuple(out)


def _placeholder(config: JoyyMixConfig) -> Placeholder:
    kind = PATCH_MODES[config.patch]
    if kind is PlaceholderKind.IMAGE:
        return Placeholder(kind, ImageRef(config.patch_url, RenderMode.FILL) if config.patch_url else None)
    return Placeholder(kind)


def _slot(inp: JoyyInput, room_id: str | None, placeholder: Placeholder) -> CustomSlot:
    crop = None
    if None not in (inp.crop_x, inp.crop_y, inp.crop_w, inp.crop_h):
        crop = Crop(inp.crop_x or 0, inp.crop_y or 0, inp.crop_w or 0, inp.crop_h or 0)
    render = CROP_MODES[inp.crop]
    rid = None if not inp.roomid or inp.roomid == room_id else inp.roomid
    return CustomSlot(
        rect=Rect(inp.layout_x, inp.layout_y, max(inp.layout_w, 0), max(inp.layout_h, 0)),
        user_id=inp.uid or None,
        room_id=rid if inp.uid else None,
        z=inp.z_order,
        render=render,
        crop=crop,
        alpha=inp.alpha,
        placeholder=placeholder,
        fill_color=BLACK if render is RenderMode.FIT else None,
    )


def mix_layout(
    participants: Sequence[Participant], config: JoyyMixConfig, *, room_id: str | None = None
) -> Layout:
    """The mix picture for the current room members (canvas = ``config.width x height``)."""
    image = None
    if config.background_image_url:
        image = ImageRef(config.background_image_url, IMAGE_SCALE_MODES[config.background_image_scale])
    canvas = Canvas(
        config.width,
        config.height,
        Background(_color(config.background_color, BLACK), image),
        _watermarks(config),
    )
    placeholder = _placeholder(config)
    if config.template_id is None:
        slots = [
            _slot(i, room_id, placeholder) for i in config.inputs if i.streamtype != INPUT_STREAM_TYPE_AUDIO
        ]
        return custom(participants, canvas, slots)
    style = TileStyle(render=RenderMode.FILL, placeholder=placeholder)
    cap = TEMPLATE_MAX_USERS.get(config.template_id, 0)
    if config.template_id == TEMPLATE_HORIZONTAL:
        return strip(participants, canvas, max_tiles=cap, style=style)
    if config.template_id == TEMPLATE_VERTICAL:
        return strip(participants, canvas, vertical=True, max_tiles=cap, style=style)
    if config.template_id == TEMPLATE_TILED:
        return grid(participants, canvas, max_tiles=cap, style=style)
    if config.template_id == TEMPLATE_CORNER:
        return floating(
            participants,
            canvas,
            per_line=4,
            max_small=cap - 1,
            corner=Corner.BOTTOM_RIGHT,
            flow=Flow.COLUMNS,
            main_style=style,
            small_style=style,
        )
    if config.template_id == TEMPLATE_FIVE_HORIZONTAL:
        return strip(participants, canvas, max_tiles=cap, slots=cap, style=style)
    raise ValueError(f"unknown templateid {config.template_id}")


# --------------------------------------------------------------------------- as data

JOYY_MIX_TEMPLATE = "jocloud.mix"
"""Layout template of a mix recording; parameters: ``config`` (:class:`JoyyMixConfig` as JSON)
and ``room_id`` (the task's room)."""


def mix_layout_ref(config: JoyyMixConfig, *, room_id: str | None = None) -> LayoutRef:
    """The mix layout as a storable :class:`LayoutRef`."""
    return LayoutRef(JOYY_MIX_TEMPLATE, {"config": encode(JoyyMixConfig, config), "room_id": room_id})


def mix_layout_template(params: Mapping[str, Any]) -> LayoutFunction:
    """The layout function of a :data:`JOYY_MIX_TEMPLATE` reference; the canvas it is called
    with (the recording's video size) wins over the config's ``width``/``height``."""
    p = read_params(params, {"config": JoyyMixConfig, "room_id": str | None}, required=("config",))
    config: JoyyMixConfig = p["config"]
    room_id: str | None = p.get("room_id")
    if config.template_id is not None and config.template_id not in TEMPLATE_IDS:
        raise ValueError(f"unknown templateid {config.template_id}")

    def apply(participants: Sequence[Participant], canvas: Canvas) -> Layout:
        sized = replace(config, width=canvas.width, height=canvas.height)
        return mix_layout(participants, sized, room_id=room_id)

    return apply


register_template(JOYY_MIX_TEMPLATE, mix_layout_template)


# --------------------------------------------------------------------------- image URLs


def image_url_fields(config: JoyyMixConfig) -> list[tuple[str, str]]:
    """Every image of ``mixconfig`` as ``(field path, url)``, in request order."""
    out: list[tuple[str, str]] = []
    if config.patch_url:
        out.append(("patchUrl", config.patch_url))
    for i, mark in enumerate(config.images):
        out.append((f"watermark.imageList[{i}].url", mark.url))
    if config.background_image_url:
        out.append(("background.image.url", config.background_image_url))
    return out


async def check_image_urls(policy: UrlPolicy, config: JoyyMixConfig) -> None:
    """Refuse images the node will not fetch (not http(s), or a private address): raises
    ``InvalidArgument`` naming the field, which the gateway answers with 2101 (invalid parameter)."""
    await policy.check_all(image_url_fields(config))
