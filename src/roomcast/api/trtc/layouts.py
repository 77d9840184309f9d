"""TRTC layout templates -> generic domain layouts.

Two TRTC families describe a mixed picture:

* cloud recording (CreateCloudRecording / ModifyCloudRecording ``MixLayoutParams``):
  :class:`TrtcMixLayoutParams` -> :func:`recording_layout`;
* mixing and relay to CDN (Start/UpdatePublishCdnStream ``VideoParams``, i.e. ``McuVideoParams``
  with its ``McuLayoutParams``): :class:`TrtcMcuLayoutParams` -> :func:`relay_layout`.

Both use ``MixLayoutMode`` 1 floating, 2 screen sharing, 3 grid, 4 custom, and the geometry of
a mode is the same in both (the presets in :mod:`roomcast.domain.layout`); they differ in
capacity, defaults and enums, listed below.  The API layer parses and validates the JSON and
hands plain values to these functions; the constants here are the vendor limits it can reuse.

Choices where the TRTC documents are vague or contradict themselves
--------------------------------------------------------------------
1. **Preset geometry is not documented** (no tile sizes, margins or rows x columns).  We use
   the generic presets: grid ``ceil(sqrt(n))`` columns (transposed on portrait canvases),
   incomplete last row centred; floating small tiles on a 4x4 (or 5x5) lattice with 1.2 %
   gaps, filled from the bottom-left corner left to right, then upwards; screen sharing with a
   side area of 20 % of the width (2 columns of ``H/8``-high tiles, the column next to the big
   window first) and, in recording, the overflow row along the bottom under the big window.
2. **Recording capacity.** "Up to 25 videos" counts the big window: floating shows the main
   video plus at most 24 small ones (the 5x5 lattice keeps one slot free), resolving the
   "5x5 + 1 = 26" contradiction.  The 4-per-row / 5-per-row switch counts all videos
   (main + small): <= 17 -> 4 per row.  Screen sharing: 16 in the columns plus up to 8 along
   the bottom = 24 small windows.  We do not enforce "up to 24 videos when mixing" from
   SubscribeStreamUserIds here: that is a subscription limit for the API layer.
3. **Relay capacity** follows the StartPublishCdnStream text: floating 1 + 15 (4x4 lattice),
   grid 16, screen sharing 1 + 15 (2 columns of 8, no bottom row); audio-only users take no
   window unless ``PureAudioHoldPlaceMode`` = 1.  Relay ``MixLayoutMode`` defaults to 1
   (floating) per the API text; recording defaults to 3 (grid).
4. **Big window.** Recording floating without ``MaxResolutionUserId``: the first anchor in
   room-entry order (with ``MediaId`` = 1: the first anchor who shares a screen, else the
   first anchor's camera).  Screen sharing without a user: no one; the big window shows the
   canvas background (also in relay, where the user "must be set explicitly").  A named user
   who is absent keeps the big window reserved (placeholder / background shows).  The big
   window's *stream* is not repeated among the small windows, so with ``MediaId`` = 1 the
   sharer's camera is still a small window.
5. **RenderMode enums differ.** Recording: 0 stretch, 1 crop (default), 2 blank (fit, bars
   show the window / canvas background), 3 smart stretch (crop <= 20 %, then stretch).  Relay
   ``McuLayout(Params).RenderMode``: 0 crop (default), 1 scale (fit, bars show the canvas
   background), 2 scale with black bars (fit, black bars).  The recording ``RenderMode`` is
   applied to every preset window (big and small) and ignored in custom mode; the relay one
   is applied to every preset window except the relay screen-sharing big window, which is
   always fitted ("scaled to keep its content whole").
6. **Background render modes.** Recording ``BackgroundImageRenderMode`` uses the RenderMode
   enum (default 1, crop).  Relay ``McuVideoParams.BackgroundRenderMode``: 0 crop, 1 fit,
   2 stretch ("proportional scaling" is the translation of a stretch), default 2.
   ``McuLayout.BackgroundRenderMode``: 0 crop, 1 fit, 2 fit on black, 3 stretch (default).
7. **Placeholders.** Recording ``PlaceHolderMode`` = 1: a window whose user publishes no video
   (absent, audio-only or camera off) shows ``SubBackgroundImage`` /
   ``DefaultSubBackgroundImage``, or the built-in default placeholder image if neither is set.
   ``PlaceHolderMode`` = 0: nothing (the window background image, if any, or the canvas shows).
   Relay custom slots show their ``BackgroundImageUrl`` while the user is absent or audio-only.
8. **Custom coordinates** (``MixLayout`` Top/Left/Width/Height, ``McuLayout``
   LocationX/LocationY/ImageWidth/ImageHeight) are absolute canvas pixels although the text
   calls Width/Height "relative"; the documented constraint ``Left + Width <= canvas width``
   and the 100-px example only make sense as pixels.  Windows are clipped to the canvas and a
   window with no area left is dropped.  Named windows are reserved for their user (placeholder
   while absent); unnamed windows take the other anchors in room-entry order; anchors beyond
   the windows are not shown.  ``ImageLayer`` / ``ZOrder`` is the z-order (0 bottom, ties keep
   list order).  ``Alpha`` 0..255 is transparency (0 opaque), converted to opacity
   ``1 - Alpha/255``.
9. **Watermarks.** ``WaterMarkType`` 0 image, 1 text, 2 timestamp (the enum omits 2 although
   ``WaterMarkTimestamp`` refers to it).  Text is "not supported yet" upstream; we render it
   (the API layer may still reject it).  Timestamp ``Pos`` 0-6 anchors a box at a corner, an
   edge centre or the centre with a 2 % margin; its size follows a font of ``min(W, H) / 32``
   px (at least 12).  ``TimeZone`` is an hour offset from UTC (default 8).  Watermarks keep
   list order as z-order (later ones on top); relay image watermarks use their ``ZOrder``.
10. **Colours.** Recording ``BackGroundColor`` is ``#RRGGBB``, relay ``0xRRGGBB``; both (and
    bare ``RRGGBB``) are accepted by :meth:`Color.from_hex`.  Default black.
11. **Relay cross-room.** Dynamic modes are single-room; custom slots may name users of other
    rooms (``MixUserInfo.RoomId``).  Pass ``room_id`` = the task's main room so that slots
    naming it match participants of the main room (whose ``Participant.room_id`` is None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from roomcast.domain.jsondata import encode
from roomcast.domain.layout import (
    BLACK,
    WHITE,
    Anchor,
    Background,
    Canvas,
    Color,
    Crop,
    CustomSlot,
    ImageRef,
    ImageWatermark,
    Layout,
    MainSelector,
    Participant,
    Placeholder,
    PlaceholderKind,
    Rect,
    RenderMode,
    Side,
    StreamKind,
    TextWatermark,
    TileStyle,
    TimestampWatermark,
    Watermark,
    anchored_rect,
    custom,
    even_round,
    floating,
    grid,
    sample_time,
    screen_share,
)
from roomcast.domain.layout_templates import LayoutFunction, read_params, register_template
from roomcast.domain.recording import LayoutRef

# --------------------------------------------------------------------------- constants

MIX_LAYOUT_FLOATING = 1
MIX_LAYOUT_SCREEN_SHARING = 2
MIX_LAYOUT_GRID = 3
MIX_LAYOUT_CUSTOM = 4
MIX_LAYOUT_MODES = frozenset({1, 2, 3, 4})
RECORDING_DEFAULT_MIX_LAYOUT_MODE = MIX_LAYOUT_GRID
RELAY_DEFAULT_MIX_LAYOUT_MODE = MIX_LAYOUT_FLOATING

RECORDING_MAX_VIDEOS = 25
"""Windows in any recording layout, the big window included."""
RECORDING_MAX_MIX_LAYOUT_LIST = 25
RECORDING_MAX_WATERMARKS = 25
FLOATING_FOUR_PER_ROW_MAX_VIDEOS = 17
"""Recording floating: up to this many videos (main + small) -> 4 per row, beyond -> 5."""
MIX_LAYOUT_COORD_MAX = 1920
"""MixLayout Top/Left/Width/Height range is [0, 1920]."""
MIX_LAYOUT_ALPHA_MAX = 255
"""MixLayout.Alpha range is [0, 255]; 0 opaque, 255 fully transparent."""
WATERMARK_COORD_MAX = 2560
"""WaterMarkImage Top/Left/Width/Height range is [0, 2560]."""

RECORDING_RENDER_MODES: Mapping[int, RenderMode] = {
    0: RenderMode.STRETCH,
    1: RenderMode.FILL,
    2: RenderMode.FIT,
    3: RenderMode.SMART_FILL,
}
RECORDING_DEFAULT_RENDER_MODE = 1
MEDIA_ID_STREAMS: Mapping[int, StreamKind] = {0: StreamKind.CAMERA, 1: StreamKind.SCREEN}
PLACE_HOLDER_MODES = frozenset({0, 1})
MAX_RESOLUTION_USER_ALIGN_VALUES = frozenset({0, 1})

WATERMARK_TYPE_IMAGE = 0
WATERMARK_TYPE_TEXT = 1
WATERMARK_TYPE_TIMESTAMP = 2
WATERMARK_TYPES = frozenset({WATERMARK_TYPE_IMAGE, WATERMARK_TYPE_TEXT, WATERMARK_TYPE_TIMESTAMP})
WATERMARK_CHAR_DEFAULT_FONT_SIZE = 14
DEFAULT_TIME_ZONE = 8
TIMESTAMP_POSITIONS: Mapping[int, Anchor] = {
    0: Anchor.TOP_LEFT,
    1: Anchor.TOP_RIGHT,
    2: Anchor.BOTTOM_LEFT,
    3: Anchor.BOTTOM_RIGHT,
    4: Anchor.TOP_CENTER,
    5: Anchor.BOTTOM_CENTER,
    6: Anchor.CENTER,
}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

RELAY_MAX_DYNAMIC_VIDEOS = 16
"""Relay floating (1 + 15), grid (16) and screen sharing (1 + 15)."""
MCU_RENDER_MODES: Mapping[int, RenderMode] = {0: RenderMode.FILL, 1: RenderMode.FIT, 2: RenderMode.FIT}
"""McuLayout(Params).RenderMode; 2 additionally paints the window black (black bars)."""
MCU_BLACK_BARS_RENDER_MODE = 2
MCU_BACKGROUND_RENDER_MODES: Mapping[int, RenderMode] = {
    0: RenderMode.FILL,
    1: RenderMode.FIT,
    2: RenderMode.STRETCH,
}
"""McuVideoParams.BackgroundRenderMode (canvas image); default 2."""
MCU_DEFAULT_BACKGROUND_RENDER_MODE = 2
MCU_SLOT_BACKGROUND_RENDER_MODES: Mapping[int, RenderMode] = {
    0: RenderMode.FILL,
    1: RenderMode.FIT,
    2: RenderMode.FIT,
    3: RenderMode.STRETCH,
}
"""McuLayout.BackgroundRenderMode (slot placeholder image); default 3; 2 is on black."""
MCU_DEFAULT_SLOT_BACKGROUND_RENDER_MODE = 3
MCU_STREAM_TYPES: Mapping[int, StreamKind] = {0: StreamKind.CAMERA, 1: StreamKind.SCREEN}
PURE_AUDIO_HOLD_PLACE_MODES = frozenset({0, 1})
MCU_CUSTOM_CROP_MAX = 10000
"""McuCustomCrop: LocationX + Width <= 10000 and LocationY + Height <= 10000."""


# --------------------------------------------------------------------------- parsed inputs


@dataclass(frozen=True, slots=True)
class TrtcMixLayout:
    """One ``MixLayout`` entry of ``MixLayoutList`` (recording, custom mode)."""

    top: int
    left: int
    width: int
    height: int
    user_id: str | None = None
    alpha: int = 0
    render_mode: int = RECORDING_DEFAULT_RENDER_MODE
    media_id: int = 0
    image_layer: int = 0
    sub_background_image: str | None = None


@dataclass(frozen=True, slots=True)
class TrtcWaterMarkImage:
    url: str
    top: int
    left: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class TrtcWaterMarkChar:
    top: int
    left: int
    width: int
    height: int
    chars: str
    font_size: int = WATERMARK_CHAR_DEFAULT_FONT_SIZE
    font_color: str | None = None
    background_color: str | None = None


@dataclass(frozen=True, slots=True)
class TrtcWaterMarkTimestamp:
    pos: int
    time_zone: int = DEFAULT_TIME_ZONE


TrtcWaterMark = TrtcWaterMarkImage | TrtcWaterMarkChar | TrtcWaterMarkTimestamp
"""One ``WaterMark``, already resolved by its ``WaterMarkType`` (0 image, 1 text, 2 timestamp)."""


@dataclass(frozen=True, slots=True)
class TrtcMixLayoutParams:
    """Recording ``MixLayoutParams`` (field names in snake case)."""

    mix_layout_mode: int = RECORDING_DEFAULT_MIX_LAYOUT_MODE
    mix_layout_list: Sequence[TrtcMixLayout] = ()
    background_color: str | None = None
    max_resolution_user_id: str | None = None
    media_id: int = 0
    background_image_url: str | None = None
    place_holder_mode: int = 0
    background_image_render_mode: int = RECORDING_DEFAULT_RENDER_MODE
    default_sub_background_image: str | None = None
    water_mark_list: Sequence[TrtcWaterMark] = ()
    render_mode: int = RECORDING_DEFAULT_RENDER_MODE
    max_resolution_user_align: int = 0


@dataclass(frozen=True, slots=True)
class TrtcMcuLayout:
    """One ``McuLayout`` entry of ``McuLayoutParams.MixLayoutList`` (relay, custom mode).

    ``user_id``/``room_id``/``stream_type`` come from ``UserMediaStream``; no ``user_id``
    means an unnamed slot.
    """

    image_width: int = 0
    image_height: int = 0
    location_x: int = 0
    location_y: int = 0
    z_order: int = 0
    render_mode: int = 0
    user_id: str | None = None
    room_id: str | None = None
    stream_type: int = 0
    background_image_url: str | None = None
    background_render_mode: int = MCU_DEFAULT_SLOT_BACKGROUND_RENDER_MODE
    custom_crop: Crop | None = None


@dataclass(frozen=True, slots=True)
class TrtcMcuWaterMarkImage:
    url: str
    width: int
    height: int
    location_x: int
    location_y: int
    z_order: int = 0


@dataclass(frozen=True, slots=True)
class TrtcMcuWaterMarkText:
    text: str
    width: int
    height: int
    location_x: int
    location_y: int
    font_size: int
    font_color: str | None = None
    background_color: str | None = None


@dataclass(frozen=True, slots=True)
class TrtcMcuLayoutParams:
    """Relay ``McuLayoutParams`` plus the canvas fields of its ``McuVideoParams``.

    ``max_video_user`` is ``MaxVideoUser.UserMediaStream`` as (user id, room id, stream type).
    """

    mix_layout_mode: int = RELAY_DEFAULT_MIX_LAYOUT_MODE
    pure_audio_hold_place_mode: int = 0
    mix_layout_list: Sequence[TrtcMcuLayout] = ()
    max_video_user: tuple[str, str | None, int] | None = None
    render_mode: int = 0
    background_color: str | None = None
    background_image_url: str | None = None
    background_render_mode: int = MCU_DEFAULT_BACKGROUND_RENDER_MODE
    water_mark_list: Sequence[TrtcMcuWaterMarkImage | TrtcMcuWaterMarkText] = ()


# --------------------------------------------------------------------------- recording


def _color(text: str | None, default: Color) -> Color:
    return Color.from_hex(text) if text else default


def _clip(x: int, y: int, w: int, h: int, width: int, height: int) -> Rect | None:
    if w <= 0 or h <= 0:
        return None
    return Rect(x, y, w, h).clip(width, height)


def recording_watermarks(marks: Sequence[TrtcWaterMark], width: int, height: int) -> tuple[Watermark, ...]:
    """Recording ``WaterMarkList`` -> domain watermarks (list order = z-order)."""
    out: list[Watermark] = []
    for z, m in enumerate(marks):
        if isinstance(m, TrtcWaterMarkImage):
            rect = _clip(m.left, m.top, m.width, m.height, width, height)
            if rect is not None:
                out.append(ImageWatermark(rect, ImageRef(m.url, RenderMode.STRETCH), z=z))
        elif isinstance(m, TrtcWaterMarkChar):
            rect = _clip(m.left, m.top, m.width, m.height, width, height)
            if rect is not None:
                out.append(
                    TextWatermark(
                        rect,
                        m.chars,
                        font_size=m.font_size,
                        color=_color(m.font_color, WHITE),
                        background=Color.from_hex(m.background_color) if m.background_color else None,
                        z=z,
                    )
                )
        else:
            font = max(12, even_round(min(width, height) / 32))
            box_w = even_round(len(sample_time(TIMESTAMP_FORMAT)) * font * 0.6 + 1)
            box_h = even_round(font * 1.4 + 1)
            margin = even_round(min(width, height) * 0.02)
            rect = anchored_rect(width, height, box_w, box_h, TIMESTAMP_POSITIONS[m.pos], margin)
            out.append(
                TimestampWatermark(
                    rect, format=TIMESTAMP_FORMAT, utc_offset_minutes=m.time_zone * 60, font_size=font, z=z
                )
            )
    return tuple(out)


def _recording_canvas(params: TrtcMixLayoutParams, width: int, height: int) -> Canvas:
    image = None
    if params.background_image_url:
        image = ImageRef(
            params.background_image_url, RECORDING_RENDER_MODES[params.background_image_render_mode]
        )
    return Canvas(
        width,
        height,
        Background(_color(params.background_color, BLACK), image),
        recording_watermarks(params.water_mark_list, width, height),
    )


def _recording_placeholder(place_holder_mode: int, image: str | None, render: RenderMode) -> Placeholder:
    if place_holder_mode != 1:
        return Placeholder()
    return Placeholder(PlaceholderKind.IMAGE, ImageRef(image, render) if image else None)


def recording_layout(
    participants: Sequence[Participant], params: TrtcMixLayoutParams, width: int, height: int
) -> Layout:
    """The recording mix picture for the current anchors (``width`` x ``height`` canvas)."""
    canvas = _recording_canvas(params, width, height)
    mode = params.mix_layout_mode
    if mode == MIX_LAYOUT_CUSTOM:
        return custom(participants, canvas, _recording_slots(params), max_slots=RECORDING_MAX_MIX_LAYOUT_LIST)
    render = RECORDING_RENDER_MODES[params.render_mode]
    sub_bg = params.default_sub_background_image
    style = TileStyle(
        render=render,
        placeholder=_recording_placeholder(params.place_holder_mode, sub_bg, render),
        background_image=ImageRef(sub_bg, render) if sub_bg else None,
    )
    stream = MEDIA_ID_STREAMS[params.media_id]
    user = params.max_resolution_user_id or None
    if mode == MIX_LAYOUT_FLOATING:
        main = MainSelector(user, stream)
        if user is None and stream is StreamKind.SCREEN and not any(p.has_screen for p in participants):
            main = MainSelector()
        return floating(
            participants,
            canvas,
            main=main,
            per_line=lambda total: 4 if total <= FLOATING_FOUR_PER_ROW_MAX_VIDEOS else 5,
            max_small=RECORDING_MAX_VIDEOS - 1,
            main_style=style,
            small_style=style,
        )
    if mode == MIX_LAYOUT_SCREEN_SHARING:
        return screen_share(
            participants,
            canvas,
            main=MainSelector(user, stream) if user is not None else None,
            main_side=Side.RIGHT if params.max_resolution_user_align == 1 else Side.LEFT,
            bottom_overflow=8,
            max_small=RECORDING_MAX_VIDEOS - 1,
            main_style=style,
            small_style=style,
        )
    if mode == MIX_LAYOUT_GRID:
        return grid(participants, canvas, max_tiles=RECORDING_MAX_VIDEOS, style=style)
    raise ValueError(f"unknown MixLayoutMode {mode}")


def _recording_slots(params: TrtcMixLayoutParams) -> list[CustomSlot]:
    slots = []
    for w in params.mix_layout_list:
        render = RECORDING_RENDER_MODES[w.render_mode]
        image = w.sub_background_image or params.default_sub_background_image
        slots.append(
            CustomSlot(
                rect=Rect(w.left, w.top, max(w.width, 0), max(w.height, 0)),
                user_id=w.user_id or None,
                stream=MEDIA_ID_STREAMS[w.media_id],
                z=w.image_layer,
                render=render,
                alpha=1.0 - w.alpha / MIX_LAYOUT_ALPHA_MAX,
                placeholder=_recording_placeholder(params.place_holder_mode, image, render),
                background_image=ImageRef(image, render) if image else None,
            )
        )
    return slots


# --------------------------------------------------------------------------- relay


def relay_watermarks(
    marks: Sequence[TrtcMcuWaterMarkImage | TrtcMcuWaterMarkText], width: int, height: int
) -> tuple[Watermark, ...]:
    out: list[Watermark] = []
    for m in marks:
        rect = _clip(m.location_x, m.location_y, m.width, m.height, width, height)
        if rect is None:
            continue
        if isinstance(m, TrtcMcuWaterMarkImage):
            out.append(ImageWatermark(rect, ImageRef(m.url, RenderMode.STRETCH), z=m.z_order))
        else:
            out.append(
                TextWatermark(
                    rect,
                    m.text,
                    font_size=m.font_size,
                    color=_color(m.font_color, WHITE),
                    background=Color.from_hex(m.background_color) if m.background_color else None,
                )
            )
    return tuple(out)


def _relay_style(render_mode: int) -> TileStyle:
    return TileStyle(
        render=MCU_RENDER_MODES[render_mode],
        fill_color=BLACK if render_mode == MCU_BLACK_BARS_RENDER_MODE else None,
    )


def relay_layout(
    participants: Sequence[Participant],
    params: TrtcMcuLayoutParams,
    width: int,
    height: int,
    *,
    room_id: str | None = None,
) -> Layout:
    """The relay (MCU) mix picture; ``room_id`` is the task's main room (see the module doc)."""
    image = None
    if params.background_image_url:
        image = ImageRef(
            params.background_image_url, MCU_BACKGROUND_RENDER_MODES[params.background_render_mode]
        )
    canvas = Canvas(
        width,
        height,
        Background(_color(params.background_color, BLACK), image),
        relay_watermarks(params.water_mark_list, width, height),
    )

    def local(rid: str | None) -> str | None:
        return None if not rid or rid == room_id else rid

    mode = params.mix_layout_mode
    if mode == MIX_LAYOUT_CUSTOM:
        return custom(
            participants, canvas, [_relay_slot(s, local(s.room_id)) for s in params.mix_layout_list]
        )
    style = _relay_style(params.render_mode)
    include = params.pure_audio_hold_place_mode == 1
    main: MainSelector | None = None
    if params.max_video_user is not None and params.max_video_user[0]:
        uid, rid, stream_type = params.max_video_user
        main = MainSelector(uid, MCU_STREAM_TYPES[stream_type], local(rid))
    if mode == MIX_LAYOUT_FLOATING:
        return floating(
            participants,
            canvas,
            main=main or MainSelector(),
            per_line=4,
            max_small=RELAY_MAX_DYNAMIC_VIDEOS - 1,
            include_no_video=include,
            main_style=style,
            small_style=style,
        )
    if mode == MIX_LAYOUT_SCREEN_SHARING:
        return screen_share(
            participants,
            canvas,
            main=main,
            max_small=RELAY_MAX_DYNAMIC_VIDEOS - 1,
            include_no_video=include,
            main_style=TileStyle(render=RenderMode.FIT),
            small_style=style,
        )
    if mode == MIX_LAYOUT_GRID:
        return grid(
            participants, canvas, max_tiles=RELAY_MAX_DYNAMIC_VIDEOS, include_no_video=include, style=style
        )
    raise ValueError(f"unknown MixLayoutMode {mode}")


def _relay_slot(s: TrtcMcuLayout, room_id: str | None) -> CustomSlot:
    placeholder = Placeholder()
    fill = BLACK if s.render_mode == MCU_BLACK_BARS_RENDER_MODE else None
    if s.background_image_url:
        placeholder = Placeholder(
            PlaceholderKind.IMAGE,
            ImageRef(s.background_image_url, MCU_SLOT_BACKGROUND_RENDER_MODES[s.background_render_mode]),
        )
        if s.background_render_mode == 2:
            fill = BLACK
    return CustomSlot(
        rect=Rect(s.location_x, s.location_y, max(s.image_width, 0), max(s.image_height, 0)),
        user_id=s.user_id or None,
        room_id=room_id if s.user_id else None,
        stream=MCU_STREAM_TYPES[s.stream_type],
        z=s.z_order,
        render=MCU_RENDER_MODES[s.render_mode],
        crop=s.custom_crop,
        placeholder=placeholder,
        fill_color=fill,
    )


# --------------------------------------------------------------------------- as data

TRTC_RELAY_TEMPLATE = "trtc.relay"
"""Layout template of a relay mix; parameters: ``layout`` (:class:`TrtcMcuLayoutParams` as JSON)
and ``room_id`` (the task's main room)."""


def relay_layout_ref(params: TrtcMcuLayoutParams, *, room_id: str | None = None) -> LayoutRef:
    """The relay layout as a storable :class:`LayoutRef` (the canvas size comes from the spec)."""
    return LayoutRef(TRTC_RELAY_TEMPLATE, {"layout": encode(TrtcMcuLayoutParams, params), "room_id": room_id})


def relay_layout_template(params: Mapping[str, Any]) -> LayoutFunction:
    p = read_params(params, {"layout": TrtcMcuLayoutParams, "room_id": str | None}, required=("layout",))
    mcu: TrtcMcuLayoutParams = p["layout"]
    room_id: str | None = p.get("room_id")

    def apply(participants: Sequence[Participant], canvas: Canvas) -> Layout:
        return relay_layout(participants, mcu, canvas.width, canvas.height, room_id=room_id)

    return apply


register_template(TRTC_RELAY_TEMPLATE, relay_layout_template)
