"""SparkRTC mixed-stream layout templates -> generic domain layouts.

``MixParam.layout_template`` (A16 start, A18 update) selects one of four templates; the same
layout drives the recording and the RTMP push (``publish_param``) of a mix job.  The API layer
parses and validates ``mix_param`` and calls :func:`mix_layout` with plain values.

Choices where the SparkRTC document is vague or contradicts itself
------------------------------------------------------------------
1. **Geometry is only drawn in figures** (absent from the text).  ``nine_grids_view`` uses the
   generic grid (``ceil(sqrt(n))`` columns, equal tiles, incomplete last row centred, up to 25
   tiles, crop to fit).  ``screen_share_left`` / ``screen_share_right`` use the generic
   screen-share preset: the main screen fills the height and 80 % of the width on the named
   side, the others are stacked top to bottom in up to two columns of eight on the other side
   (the column next to the main screen first), at most 17 screens in all (main + 16).  The
   main screen is fitted, side screens are cropped, as documented.
2. **Which ``layout_panes`` entry is the main screen** in the screen-share templates: the
   entry with a ``filling_policy`` and the lowest ``id`` (the examples send one pane with
   ``id`` 1).  ``SHARED_SCREEN``: the screen stream of ``user_id`` if one is given, else of
   the first user (room-entry order) who shares a screen.  ``FIXED_USER``: the ``video_type``
   stream of ``user_id``.  No such pane, an empty ``FIXED_USER`` user, or an absent user: the
   main screen shows ``screen_background_image`` or the background.  The main stream is not
   repeated among the side screens (a sharer's camera still is one).
3. **``layout_panes`` for nine-grid** is ignored ("You do not need to set this parameter for
   the nine_grids_view template"), although the start API says panes "must not be left empty".
4. **Custom panes.** ``x``/``y``/``width``/``height`` are fractions of the canvas; missing
   ``x``/``y`` mean 0 and a missing ``width``/``height`` extends the pane to the right/bottom
   edge.  Edges are rounded to even pixels (so neighbours meet exactly) and clipped; a pane
   left with no area is dropped.  ``zorder`` 0..24 is the z-order (ties keep list order).
   ``crop_mode`` ``KEEP_RATIO_CROP`` (default: crop, as every other SparkRTC template does) or
   ``KEEP_RATIO_PADDING`` (fit).  An empty or missing ``user_id`` makes an unnamed pane, filled
   by the other users in room-entry order; named panes are reserved.  No pane limit is
   documented; we show at most 25.
5. **``video_type`` default** is ``CAMERASTREAM`` (the table's default wins over "if not
   specified, the video is not recorded").
6. **Images.** ``background_image`` is the canvas background (cropped to fill).  A user without
   video shows ``user_background_images[user]``, else ``default_user_background_image`` (both
   cropped to fill); with neither, the pane shows the background.  ``screen_background_image``
   is the main screen's window background in the screen-share templates.  The canvas colour
   is black (SparkRTC has no colour parameter).
7. **A18 template changes.** The function accepts any template for an update; whether an
   update may switch templates ("only custom templates can be updated" vs the example that
   switches to ``nine_grids_view``) is an API-layer decision.
8. **Audio** (the three loudest speakers) is not part of the picture and is not handled here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roomcast.domain.errors import InvalidArgument
from roomcast.domain.jsondata import encode
from roomcast.domain.layout import (
    Background,
    Canvas,
    CustomSlot,
    ImageRef,
    Layout,
    MainSelector,
    Participant,
    Placeholder,
    PlaceholderKind,
    RelRect,
    RenderMode,
    Side,
    StreamKind,
    TileStyle,
    custom,
    grid,
    screen_share,
    with_placeholders,
)
from roomcast.domain.layout_templates import LayoutFunction, read_params, register_template
from roomcast.domain.recording import LayoutRef
from roomcast.net.urls import UrlPolicy

NINE_GRIDS_VIEW = "nine_grids_view"
SCREEN_SHARE_LEFT = "screen_share_left"
SCREEN_SHARE_RIGHT = "screen_share_right"
CUSTOM = "custom"
LAYOUT_TEMPLATES = frozenset({NINE_GRIDS_VIEW, SCREEN_SHARE_LEFT, SCREEN_SHARE_RIGHT, CUSTOM})

MAX_NINE_GRID_TILES = 25
MAX_SCREEN_SHARE_SCREENS = 17
"""Main screen + 16 side screens."""
MAX_CUSTOM_PANES = 25
"""Not documented; matches the 25 z-order floors."""
MAX_ZORDER = 24
"""``zorder``: "A maximum of 25 floors are supported, with 0 at the bottom"."""

VIDEO_TYPES: Mapping[str, StreamKind] = {"CAMERASTREAM": StreamKind.CAMERA, "SCREENSTREAM": StreamKind.SCREEN}
CROP_MODES: Mapping[str, RenderMode] = {
    "KEEP_RATIO_PADDING": RenderMode.FIT,
    "KEEP_RATIO_CROP": RenderMode.FILL,
}
DEFAULT_CROP_MODE = "KEEP_RATIO_CROP"
FILLING_POLICY_FIXED_USER = "FIXED_USER"
FILLING_POLICY_SHARED_SCREEN = "SHARED_SCREEN"
FILLING_POLICIES = frozenset({FILLING_POLICY_FIXED_USER, FILLING_POLICY_SHARED_SCREEN})

ENCODE_TEMPLATE_AUDIO_ONLY = "audio_only"
ENCODE_TEMPLATES = frozenset(
    {
        "1920*1080_30_4620",
        "1920*1080_30_3150",
        "1920*1080_15_3460",
        "1920*1080_15_2080",
        "1280*720_30_3420",
        "1280*720_30_1710",
        "1280*720_15_2260",
        "1280*720_15_1130",
        "640*480_30_1000",
        "640*480_15_500",
        "480*360_30_490",
        "480*360_15_320",
    }
)
"""The documented templates, in the tables' ``*`` spelling (examples use ``x``)."""

_ENCODE_TEMPLATE = re.compile(r"^(\d+)[*xX](\d+)_(\d+)_(\d+)$")


def encode_template_size(template: str) -> tuple[int, int] | None:
    """Canvas (width, height) of an encode template (``1280x720_15_2260`` or ``1280*720_...``);
    None for ``audio_only`` or an unknown template."""
    m = _ENCODE_TEMPLATE.match(template.strip())
    if m is None or f"{m[1]}*{m[2]}_{m[3]}_{m[4]}" not in ENCODE_TEMPLATES:
        return None
    return int(m[1]), int(m[2])


@dataclass(frozen=True, slots=True)
class SparkLayoutPane:
    """One ``MixLayoutPane`` of ``layout_panes``."""

    id: int | None = None
    user_id: str | None = None
    video_type: str = "CAMERASTREAM"
    x: float | None = None
    y: float | None = None
    width: float | None = None
    height: float | None = None
    zorder: int | None = None
    crop_mode: str | None = None
    filling_policy: str | None = None


@dataclass(frozen=True, slots=True)
class SparkMixLayoutParams:
    """The layout part of ``MixParam`` / ``UpdateMixParam``."""

    layout_template: str
    layout_panes: Sequence[SparkLayoutPane] = ()
    background_image: str | None = None
    default_user_background_image: str | None = None
    screen_background_image: str | None = None
    user_background_images: Mapping[str, str] = field(default_factory=dict)


def _image(url: str | None) -> ImageRef | None:
    return ImageRef(url, RenderMode.FILL) if url else None


def _main_selector(panes: Sequence[SparkLayoutPane]) -> MainSelector | None:
    candidates = [p for p in panes if p.filling_policy in FILLING_POLICIES]
    if not candidates:
        return None
    pane = min(candidates, key=lambda p: p.id if p.id is not None else 0)
    user = pane.user_id or None
    if pane.filling_policy == FILLING_POLICY_SHARED_SCREEN:
        return MainSelector(user, StreamKind.SCREEN)
    if user is None:
        return None
    return MainSelector(user, VIDEO_TYPES[pane.video_type])


def _custom_slot(pane: SparkLayoutPane) -> CustomSlot:
    x = pane.x if pane.x is not None else 0.0
    y = pane.y if pane.y is not None else 0.0
    return CustomSlot(
        rect=RelRect(
            x,
            y,
            pane.width if pane.width is not None else 1.0 - x,
            pane.height if pane.height is not None else 1.0 - y,
        ),
        user_id=pane.user_id or None,
        stream=VIDEO_TYPES[pane.video_type],
        z=pane.zorder or 0,
        render=CROP_MODES[pane.crop_mode or DEFAULT_CROP_MODE],
    )


def mix_layout(
    participants: Sequence[Participant], params: SparkMixLayoutParams, width: int, height: int
) -> Layout:
    """The mix picture for the current room members on a ``width`` x ``height`` canvas."""
    canvas = Canvas(width, height, Background(image=_image(params.background_image)))
    template = params.layout_template
    if template == NINE_GRIDS_VIEW:
        layout = grid(participants, canvas, max_tiles=MAX_NINE_GRID_TILES)
    elif template in (SCREEN_SHARE_LEFT, SCREEN_SHARE_RIGHT):
        layout = screen_share(
            participants,
            canvas,
            main=_main_selector(params.layout_panes),
            main_side=Side.LEFT if template == SCREEN_SHARE_LEFT else Side.RIGHT,
            max_small=MAX_SCREEN_SHARE_SCREENS - 1,
            main_style=TileStyle(
                render=RenderMode.FIT, background_image=_image(params.screen_background_image)
            ),
        )
    elif template == CUSTOM:
        slots = [_custom_slot(p) for p in params.layout_panes]
        layout = custom(participants, canvas, slots, max_slots=MAX_CUSTOM_PANES)
    else:
        raise ValueError(f"unknown layout_template {template!r}")
    per_user = {
        uid: Placeholder(PlaceholderKind.IMAGE, ImageRef(url, RenderMode.FILL))
        for uid, url in params.user_background_images.items()
        if url
    }
    default = None
    if params.default_user_background_image:
        default = Placeholder(
            PlaceholderKind.IMAGE, ImageRef(params.default_user_background_image, RenderMode.FILL)
        )
    return with_placeholders(layout, per_user, default)


# --------------------------------------------------------------------------- as data

SPARK_MIX_TEMPLATE = "sparkrtc.mix"
"""Layout template of a mix job; parameter ``layout``: :class:`SparkMixLayoutParams` as JSON."""


def mix_layout_ref(params: SparkMixLayoutParams) -> LayoutRef:
    """The mix layout as a storable :class:`LayoutRef` (the canvas size comes from the spec)."""
    return LayoutRef(SPARK_MIX_TEMPLATE, {"layout": encode(SparkMixLayoutParams, params)})


def mix_layout_template(params: Mapping[str, Any]) -> LayoutFunction:
    mix: SparkMixLayoutParams = read_params(params, {"layout": SparkMixLayoutParams}, required=("layout",))[
        "layout"
    ]
    if mix.layout_template not in LAYOUT_TEMPLATES:
        raise ValueError(f"unknown layout_template {mix.layout_template!r}")

    def apply(participants: Sequence[Participant], canvas: Canvas) -> Layout:
        return mix_layout(participants, mix, canvas.width, canvas.height)

    return apply


register_template(SPARK_MIX_TEMPLATE, mix_layout_template)


# --------------------------------------------------------------------------- image URLs

OBS_IMAGE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,62})/\S+$")
"""The documented image form: an object in the tenant's OBS bucket, read from the store of the
job's recording rule (with its credentials, so no URL policy applies), only in the rule's bucket."""


def image_url_fields(params: SparkMixLayoutParams, prefix: str = "mix_param") -> list[tuple[str, str]]:
    """Every image of the layout as ``(field path, url)``, in request order."""
    out: list[tuple[str, str]] = []
    for name in ("background_image", "default_user_background_image", "screen_background_image"):
        url = getattr(params, name)
        if url:
            out.append((f"{prefix}.{name}", url))
    for i, url in enumerate(params.user_background_images.values()):
        if url:
            out.append((f"{prefix}.user_background_images[{i}].image_uri", url))
    return out


async def check_image_urls(
    policy: UrlPolicy, params: SparkMixLayoutParams, bucket: str, prefix: str = "mix_param"
) -> None:
    """Refuse images the node will not fetch: ``s3://bucket/object`` (documented) passes when it
    names the rule's ``bucket``; anything else must be an http(s) URL of a public address. Raises
    ``InvalidArgument`` naming the field (the gateway answers ``RTC.00001003``)."""
    for field_path, url in image_url_fields(params, prefix):
        m = OBS_IMAGE.match(url)
        if m is None:
            await policy.check(url, field=field_path)
        elif m[1] != bucket:
            raise InvalidArgument(
                f"{field_path}: images are read from the recording rule's bucket ({bucket})",
                subject=field_path,
            )
