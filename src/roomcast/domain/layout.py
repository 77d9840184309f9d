"""Video layouts for mixed recording and relay: plain values and pure preset functions.

A :class:`Layout` is what the compositor draws for one moment of a room: a canvas (size,
background colour or image, watermarks) and a list of :class:`Pane` objects, each showing one
user's camera or screen stream in an integer pixel rectangle, with a z-order, a render mode
(fit / fill / stretch / smart fill), an optional source crop, an opacity and a placeholder for
when the stream has no picture.  Nothing here knows any vendor's field names: each vendor
template (``api/<dialect>/layouts.py``) is a small function that maps its own enums onto the
generic presets below.

Every preset is a pure function ``(participants, canvas, options) -> Layout``.  It is called
again whenever the live participant set changes; a user who leaves is therefore replaced by the
next one in order, as all three vendors describe.

Rules shared by all presets
---------------------------
* **Ordering.** Participants are ordered by ``join_order`` (ties broken by user id, then room
  id), unless an explicit ``order`` (a sequence of user ids) is given: listed users come first,
  in the listed order, then everyone else by join order.  When there are more participants than
  a preset can show, the last ones in this order are left out.
* **Who gets a tile.** By default every participant gets a tile, including audio-only ones
  (``include_no_video=True``); the tile then shows its placeholder.  Tiles show the camera
  stream; screen streams appear only where a template asks for one (the main pane of the
  floating / screen-share presets, or a custom slot of kind ``SCREEN``).
* **Pixels.** Rectangles are integers, never leave the canvas, and preset tile sizes and
  offsets are even (4:2:0 video needs even dimensions).  Equal tiles keep equal sizes; the few
  pixels left over by even rounding are spread as a margin (grid) or left at the edge.
* **Z-order.** Panes are returned sorted by ``z`` (stable), i.e. in drawing order.  Watermarks
  are always drawn above all panes, in their own ``z`` order.

Preset geometry (the vendor documents give no numbers, so these are our choices)
--------------------------------------------------------------------------------
* :func:`grid` -- ``cols = ceil(sqrt(n))``, ``rows = ceil(n / cols)`` on a landscape or square
  canvas (transposed on a portrait canvas): 1, 2x1, 2x2, 3x2, 3x3, 4x3, 4x4, 5x4, 5x5.  Tiles
  divide the canvas evenly with no gaps; an incomplete last row is centred horizontally.
* :func:`floating` -- the main stream fills the canvas (z 0).  Small tiles (z 1) sit on a
  ``p x p`` lattice with a gap of 1.2 % of the canvas side (so for ``p = 4`` a tile is 23.5 % of
  each side -- 4 x 23.5 % + 5 x 1.2 % = 100 %), filled from a corner (default the
  bottom-left) along rows (default) or columns.  Small tiles have the canvas aspect ratio.
* :func:`screen_share` -- the main pane is on the left (or right) at full height; the side area
  is ``side_fraction`` (default 20 %) of the canvas width, split into ``columns`` columns of
  ``per_column`` tiles (``H / per_column`` high).  The column next to the main pane fills
  first, top to bottom.  Optional overflow tiles go in one row along the bottom, under the main
  pane, left to right; the main pane then loses one tile height.  With the defaults (2 columns of
  8, 20 % side) the bottom row holds exactly 8 tiles, so 1 + 16 + 8 = 25 videos fit.
* :func:`strip` -- equal tiles side by side (horizontal) or stacked (vertical).
* :func:`custom` -- explicit slots with absolute or relative (0..1) rectangles; named slots are
  reserved for their user (a placeholder pane is drawn while the user is absent, unless
  ``absent=AbsentRule.HIDE``); unnamed slots take the remaining users in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

__all__ = [
    "BLACK",
    "FLOATING_GAP_RATIO",
    "MAX_TILES",
    "SMART_FILL_MAX_CROP",
    "WHITE",
    "AbsentRule",
    "Anchor",
    "Background",
    "Canvas",
    "Color",
    "Corner",
    "Crop",
    "CustomSlot",
    "Flow",
    "FrameGeometry",
    "ImageRef",
    "ImageWatermark",
    "Layout",
    "MainSelector",
    "Pane",
    "Participant",
    "Placeholder",
    "PlaceholderKind",
    "Rect",
    "RelRect",
    "RenderMode",
    "Side",
    "StreamKind",
    "TextWatermark",
    "TileStyle",
    "TimestampWatermark",
    "Watermark",
    "anchored_rect",
    "custom",
    "even_floor",
    "even_round",
    "floating",
    "floating_tile_rects",
    "frame_geometry",
    "grid",
    "grid_dimensions",
    "grid_rects",
    "order_participants",
    "relative_to_absolute",
    "sample_time",
    "screen_share",
    "screen_share_rects",
    "strip",
    "text_box",
    "with_placeholders",
]

MAX_TILES = 25
"""The largest number of video panes any preset lays out (all three vendors cap at 25 or less)."""

FLOATING_GAP_RATIO = 0.012
"""Gap between floating small tiles, as a fraction of the canvas side."""

SMART_FILL_MAX_CROP = 0.2
"""Largest share of the source width or height that ``RenderMode.SMART_FILL`` crops away."""


# --------------------------------------------------------------------------- basic values


def even_floor(value: float) -> int:
    """The largest even integer <= ``value`` (0 for values below 2)."""
    if value <= 0:
        return 0
    return math.floor(value / 2) * 2


def even_round(value: float) -> int:
    """The nearest even integer to ``value`` (halves round up, no banker's rounding)."""
    return math.floor(value / 2 + 0.5) * 2


@dataclass(frozen=True, slots=True)
class Rect:
    """An integer pixel rectangle; ``x``/``y`` are the top-left corner."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"negative rectangle size: {self.width}x{self.height}")

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def empty(self) -> bool:
        return self.width == 0 or self.height == 0

    def intersects(self, other: Rect) -> bool:
        """True if the two rectangles share at least one pixel."""
        return (
            self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom
        )

    def contains(self, other: Rect) -> bool:
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def clip(self, width: int, height: int) -> Rect | None:
        """This rectangle cut to ``[0, width) x [0, height)``; None if nothing is left."""
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.right, width), min(self.bottom, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def mirrored(self, canvas_width: int) -> Rect:
        """Reflect horizontally within a canvas of ``canvas_width``."""
        return Rect(canvas_width - self.right, self.y, self.width, self.height)


@dataclass(frozen=True, slots=True)
class RelRect:
    """A rectangle in canvas-relative coordinates (0.0 = left/top edge, 1.0 = right/bottom)."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Crop:
    """A region of the *source* frame, in source pixels, to show instead of the whole frame."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Color:
    r: int
    g: int
    b: int

    def __post_init__(self) -> None:
        for c in (self.r, self.g, self.b):
            if not 0 <= c <= 255:
                raise ValueError(f"colour component out of range: {c}")

    @classmethod
    def from_hex(cls, text: str) -> Color:
        """Parse ``#RRGGBB``, ``0xRRGGBB`` or ``RRGGBB`` (any letter case)."""
        s = text.strip()
        if s.startswith("#"):
            s = s[1:]
        elif s[:2].lower() == "0x":
            s = s[2:]
        if len(s) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in s):
            raise ValueError(f"not a hex RGB colour: {text!r}")
        return cls(int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16))

    def to_hex(self) -> str:
        return f"#{self.r:02X}{self.g:02X}{self.b:02X}"


BLACK = Color(0, 0, 0)
WHITE = Color(255, 255, 255)


class StreamKind(Enum):
    CAMERA = "camera"
    SCREEN = "screen"


class RenderMode(Enum):
    """How a source frame is drawn into a rectangle of another aspect ratio."""

    FIT = "fit"
    """Scale to fit inside, keep the aspect ratio, leave bars (letterbox / pillarbox)."""
    FILL = "fill"
    """Scale to cover, keep the aspect ratio, crop the centre."""
    STRETCH = "stretch"
    """Scale both axes independently to the rectangle; may distort."""
    SMART_FILL = "smart_fill"
    """Like FILL, but crop at most 20 % of the width or height, then stretch the rest."""


class PlaceholderKind(Enum):
    NONE = "none"
    """Draw nothing: the pane background (colour/image) or the canvas shows through."""
    BLACK = "black"
    LAST_FRAME = "last_frame"
    """Keep showing the last decoded frame (black if there never was one)."""
    IMAGE = "image"
    """Show ``Placeholder.image``; a None image means the built-in default placeholder."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image by URL: fetched by the media layer through the node's URL policy (http(s) to
    public addresses; never a local file)."""

    url: str
    render: RenderMode = RenderMode.FILL


@dataclass(frozen=True, slots=True)
class Placeholder:
    """What a pane shows while its stream has no picture (absent, audio-only, muted)."""

    kind: PlaceholderKind = PlaceholderKind.NONE
    image: ImageRef | None = None


@dataclass(frozen=True, slots=True)
class Participant:
    """The layout's view of one live publisher."""

    user_id: str
    join_order: int
    has_camera: bool = True
    has_screen: bool = False
    has_audio: bool = True
    audio_level: float | None = None
    """0.0 (silent) .. 1.0 (loudest), if known; presets do not use it yet."""
    room_id: str | None = None
    """None for the task's own room; set for users mixed in from other rooms."""

    def has_stream(self, kind: StreamKind) -> bool:
        return self.has_camera if kind is StreamKind.CAMERA else self.has_screen


@dataclass(frozen=True, slots=True)
class Pane:
    """One video window on the canvas."""

    rect: Rect
    user_id: str | None = None
    """None: an empty window (shows its background / placeholder only)."""
    stream: StreamKind = StreamKind.CAMERA
    room_id: str | None = None
    z: int = 0
    render: RenderMode = RenderMode.FILL
    crop: Crop | None = None
    alpha: float = 1.0
    """Opacity, 0.0 (invisible) .. 1.0 (opaque)."""
    placeholder: Placeholder = Placeholder()
    background_image: ImageRef | None = None
    """Drawn under the video inside the rectangle (visible through bars and while no video)."""
    fill_color: Color | None = None
    """Painted over the rectangle before anything else; None = transparent."""
    has_video: bool = False
    """Whether the participant was present with this stream when the layout was computed."""


@dataclass(frozen=True, slots=True)
class ImageWatermark:
    rect: Rect
    image: ImageRef
    z: int = 0
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class TextWatermark:
    rect: Rect
    text: str
    font_size: int = 14
    color: Color = WHITE
    background: Color | None = None
    """None: transparent."""
    font: str | None = None
    z: int = 0
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class TimestampWatermark:
    rect: Rect
    format: str = "%Y-%m-%d %H:%M:%S"
    """strftime format of the wall-clock time shown."""
    utc_offset_minutes: int = 480
    font_size: int = 14
    color: Color = WHITE
    background: Color | None = None
    font: str | None = None
    z: int = 0
    alpha: float = 1.0


Watermark = ImageWatermark | TextWatermark | TimestampWatermark


@dataclass(frozen=True, slots=True)
class Background:
    color: Color = BLACK
    image: ImageRef | None = None
    """Drawn over ``color`` when set."""


@dataclass(frozen=True, slots=True)
class Canvas:
    """Output picture size plus everything drawn regardless of participants."""

    width: int
    height: int
    background: Background = Background()
    watermarks: tuple[Watermark, ...] = ()

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"canvas must be positive: {self.width}x{self.height}")


@dataclass(frozen=True, slots=True)
class Layout:
    canvas: Canvas
    panes: tuple[Pane, ...] = ()
    """In drawing order (ascending z, stable)."""

    @property
    def width(self) -> int:
        return self.canvas.width

    @property
    def height(self) -> int:
        return self.canvas.height

    @property
    def watermarks(self) -> tuple[Watermark, ...]:
        """In drawing order (ascending z, stable); always above the panes."""
        return tuple(sorted(self.canvas.watermarks, key=lambda w: w.z))

    @property
    def user_ids(self) -> tuple[str, ...]:
        """Users that have a pane, in pane order, without repeats."""
        seen: dict[str, None] = {}
        for p in self.panes:
            if p.user_id is not None:
                seen.setdefault(p.user_id, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class TileStyle:
    """Per-pane drawing options shared by the tiles of a preset."""

    render: RenderMode = RenderMode.FILL
    placeholder: Placeholder = Placeholder()
    background_image: ImageRef | None = None
    fill_color: Color | None = None
    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class MainSelector:
    """Which stream takes the big pane of the floating / screen-share presets.

    ``user_id`` set: that user's ``stream`` (the pane is reserved even while the user is
    absent).  ``user_id`` None: the first participant in order that has ``stream`` (for
    CAMERA, with ``include_no_video``, simply the first participant).
    """

    user_id: str | None = None
    stream: StreamKind = StreamKind.CAMERA
    room_id: str | None = None


class Corner(Enum):
    BOTTOM_LEFT = "bottom_left"
    BOTTOM_RIGHT = "bottom_right"
    TOP_LEFT = "top_left"
    TOP_RIGHT = "top_right"


class Flow(Enum):
    ROWS = "rows"
    """Fill along a row first (away from the corner horizontally), then the next row."""
    COLUMNS = "columns"
    """Fill along a column first (away from the corner vertically), then the next column."""


class Side(Enum):
    LEFT = "left"
    RIGHT = "right"


class AbsentRule(Enum):
    PLACEHOLDER = "placeholder"
    """Keep the pane of a named-but-absent user (it shows its placeholder)."""
    HIDE = "hide"
    """Drop the pane of a named-but-absent user."""


class Anchor(Enum):
    TOP_LEFT = "top_left"
    TOP_RIGHT = "top_right"
    BOTTOM_LEFT = "bottom_left"
    BOTTOM_RIGHT = "bottom_right"
    TOP_CENTER = "top_center"
    BOTTOM_CENTER = "bottom_center"
    CENTER = "center"


# --------------------------------------------------------------------------- helpers


def _key(p: Participant) -> tuple[str, str | None]:
    return (p.user_id, p.room_id)


def _matches(p: Participant, user_id: str, room_id: str | None) -> bool:
    return p.user_id == user_id and (room_id is None or p.room_id == room_id)


def order_participants(participants: Iterable[Participant], order: Sequence[str] = ()) -> list[Participant]:
    """Participants in layout order: users named in ``order`` first, then by join order."""
    rank = {uid: i for i, uid in reversed(list(enumerate(order)))}
    return sorted(
        participants,
        key=lambda p: (rank.get(p.user_id, len(rank)), p.join_order, p.user_id, p.room_id or ""),
    )


def _eligible(
    participants: Iterable[Participant], include_no_video: bool, kind: StreamKind = StreamKind.CAMERA
) -> list[Participant]:
    return [p for p in participants if include_no_video or p.has_stream(kind)]


def _find(participants: Iterable[Participant], user_id: str, room_id: str | None) -> Participant | None:
    for p in participants:
        if _matches(p, user_id, room_id):
            return p
    return None


def _pane(
    rect: Rect,
    participant: Participant | None,
    style: TileStyle,
    *,
    z: int,
    stream: StreamKind = StreamKind.CAMERA,
    user_id: str | None = None,
    room_id: str | None = None,
) -> Pane:
    if participant is not None:
        user_id, room_id = participant.user_id, participant.room_id
    return Pane(
        rect=rect,
        user_id=user_id,
        stream=stream,
        room_id=room_id,
        z=z,
        render=style.render,
        alpha=style.alpha,
        placeholder=style.placeholder,
        background_image=style.background_image,
        fill_color=style.fill_color,
        has_video=participant is not None and participant.has_stream(stream),
    )


def _sorted(panes: Iterable[Pane]) -> tuple[Pane, ...]:
    return tuple(sorted(panes, key=lambda p: p.z))


def _resolve_main(
    ordered: Sequence[Participant], main: MainSelector, include_no_video: bool
) -> tuple[Participant | None, bool]:
    """(participant, reserved): reserved=True when a named main user is absent."""
    if main.user_id is not None:
        found = _find(ordered, main.user_id, main.room_id)
        return found, found is None
    for p in ordered:
        if main.stream is StreamKind.SCREEN:
            if p.has_screen:
                return p, False
        elif include_no_video or p.has_camera:
            return p, False
    return None, False


# --------------------------------------------------------------------------- grid


def grid_dimensions(n: int, *, portrait: bool = False) -> tuple[int, int]:
    """(columns, rows) for ``n`` equal tiles; transposed when ``portrait``."""
    if n <= 0:
        return (0, 0)
    long_side = math.ceil(math.sqrt(n))
    short_side = math.ceil(n / long_side)
    return (short_side, long_side) if portrait else (long_side, short_side)


def grid_rects(n: int, width: int, height: int, *, center_last_row: bool = True) -> list[Rect]:
    """Rectangles of ``n`` equal, non-overlapping tiles covering a ``width x height`` canvas."""
    if n <= 0:
        return []
    cols, rows = grid_dimensions(n, portrait=height > width)
    cell_w, cell_h = even_floor(width / cols), even_floor(height / rows)
    if cell_w == 0 or cell_h == 0:
        cell_w, cell_h = width // cols, height // rows
    off_x = even_floor((width - cols * cell_w) / 2)
    off_y = even_floor((height - rows * cell_h) / 2)
    rects: list[Rect] = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        shift = even_floor((cols - in_row) * cell_w / 2) if center_last_row else 0
        rects.append(Rect(off_x + shift + col * cell_w, off_y + row * cell_h, cell_w, cell_h))
    return rects


def grid(
    participants: Sequence[Participant],
    canvas: Canvas,
    *,
    max_tiles: int = MAX_TILES,
    order: Sequence[str] = (),
    include_no_video: bool = True,
    style: TileStyle = TileStyle(),
    center_last_row: bool = True,
) -> Layout:
    """Equal tiles, one per participant (camera stream), up to ``max_tiles`` (<= 25)."""
    shown = _eligible(order_participants(participants, order), include_no_video)[: min(max_tiles, MAX_TILES)]
    rects = grid_rects(len(shown), canvas.width, canvas.height, center_last_row=center_last_row)
    return Layout(canvas, _sorted(_pane(r, p, style, z=0) for r, p in zip(rects, shown, strict=True)))


# --------------------------------------------------------------------------- strips


def strip(
    participants: Sequence[Participant],
    canvas: Canvas,
    *,
    vertical: bool = False,
    max_tiles: int = 4,
    slots: int | None = None,
    order: Sequence[str] = (),
    include_no_video: bool = True,
    style: TileStyle = TileStyle(),
) -> Layout:
    """Equal full-height tiles side by side (or full-width tiles stacked when ``vertical``).

    The canvas is divided among the shown participants, or into ``slots`` fixed slots (empty
    slots then show the canvas background).
    """
    cap = min(max_tiles, slots if slots is not None else max_tiles, MAX_TILES)
    shown = _eligible(order_participants(participants, order), include_no_video)[:cap]
    divisions = slots if slots is not None else len(shown)
    if not shown or divisions <= 0:
        return Layout(canvas)
    length = canvas.height if vertical else canvas.width
    size = even_floor(length / divisions) or length // divisions
    offset = even_floor((length - divisions * size) / 2)
    panes = []
    for i, p in enumerate(shown):
        if vertical:
            rect = Rect(0, offset + i * size, canvas.width, size)
        else:
            rect = Rect(offset + i * size, 0, size, canvas.height)
        panes.append(_pane(rect, p, style, z=0))
    return Layout(canvas, _sorted(panes))


# --------------------------------------------------------------------------- floating


def floating_tile_rects(
    count: int,
    width: int,
    height: int,
    *,
    per_line: int = 4,
    corner: Corner = Corner.BOTTOM_LEFT,
    flow: Flow = Flow.ROWS,
    gap_ratio: float = FLOATING_GAP_RATIO,
) -> list[Rect]:
    """Small-tile rectangles on a ``per_line x per_line`` lattice, filled from ``corner``.

    At most ``per_line ** 2`` rectangles are returned.
    """
    if count <= 0 or per_line <= 0:
        return []
    gap_x, gap_y = even_round(width * gap_ratio), even_round(height * gap_ratio)
    tile_w = even_floor((width - (per_line + 1) * gap_x) / per_line)
    tile_h = even_floor((height - (per_line + 1) * gap_y) / per_line)
    from_right = corner in (Corner.BOTTOM_RIGHT, Corner.TOP_RIGHT)
    from_bottom = corner in (Corner.BOTTOM_LEFT, Corner.BOTTOM_RIGHT)
    rects = []
    for i in range(min(count, per_line * per_line)):
        line, pos = divmod(i, per_line)
        col, row = (pos, line) if flow is Flow.ROWS else (line, pos)
        x = width - (col + 1) * (tile_w + gap_x) if from_right else gap_x + col * (tile_w + gap_x)
        y = height - (row + 1) * (tile_h + gap_y) if from_bottom else gap_y + row * (tile_h + gap_y)
        rects.append(Rect(x, y, tile_w, tile_h))
    return rects


def floating(
    participants: Sequence[Participant],
    canvas: Canvas,
    *,
    main: MainSelector | None = MainSelector(),
    per_line: int | Callable[[int], int] = 4,
    max_small: int = MAX_TILES - 1,
    corner: Corner = Corner.BOTTOM_LEFT,
    flow: Flow = Flow.ROWS,
    order: Sequence[str] = (),
    include_no_video: bool = True,
    main_style: TileStyle = TileStyle(),
    small_style: TileStyle = TileStyle(),
) -> Layout:
    """Picture-in-picture: the main stream fills the canvas, small tiles float over it.

    ``per_line`` may be a function of the total number of videos (main + small) -- TRTC uses
    4 per row up to 17 videos and 5 beyond.  The main user's *main stream* is not repeated in
    a small tile (their camera does appear when the main stream is their screen).
    ``main=None`` leaves the canvas background in place of the main stream.
    """
    ordered = order_participants(participants, order)
    main_p, reserved = (None, False) if main is None else _resolve_main(ordered, main, include_no_video)
    main_kind = main.stream if main is not None else StreamKind.CAMERA
    panes: list[Pane] = []
    if main is not None and (main_p is not None or reserved):
        panes.append(
            _pane(
                Rect(0, 0, canvas.width, canvas.height),
                main_p,
                main_style,
                z=0,
                stream=main_kind,
                user_id=main.user_id,
                room_id=main.room_id,
            )
        )
    main_key = None if main_p is None else _key(main_p)
    if main_p is None and reserved and main is not None:
        main_key = (main.user_id or "", main.room_id)
    small = [
        p
        for p in _eligible(ordered, include_no_video)
        if not (main_kind is StreamKind.CAMERA and _key(p) == main_key)
    ]
    total = len(panes) + len(small)
    n_line = per_line(total) if callable(per_line) else per_line
    small = small[: min(max_small, n_line * n_line)]
    rects = floating_tile_rects(
        len(small), canvas.width, canvas.height, per_line=n_line, corner=corner, flow=flow
    )
    panes.extend(_pane(r, p, small_style, z=1) for r, p in zip(rects, small, strict=True))
    return Layout(canvas, _sorted(panes))


# --------------------------------------------------------------------------- screen share


def screen_share_rects(
    small_count: int,
    width: int,
    height: int,
    *,
    main_side: Side = Side.LEFT,
    columns: int = 2,
    per_column: int = 8,
    side_fraction: float = 0.2,
    bottom_overflow: int = 0,
) -> tuple[Rect, list[Rect]]:
    """(main rectangle, small rectangles) for the screen-share geometry (see module doc)."""
    tile_w = even_floor(width * side_fraction / columns)
    tile_h = even_floor(height / per_column)
    main_w = width - columns * tile_w
    main_x = 0 if main_side is Side.LEFT else columns * tile_w
    in_columns = min(small_count, columns * per_column)
    bottom_cap = min(bottom_overflow, main_w // tile_w if tile_w else 0)
    in_bottom = min(max(small_count - in_columns, 0), bottom_cap)
    main_h = (per_column - 1) * tile_h if in_bottom else height
    rects: list[Rect] = []
    for i in range(in_columns):
        col, row = divmod(i, per_column)
        x = main_w + col * tile_w if main_side is Side.LEFT else (columns - 1 - col) * tile_w
        rects.append(Rect(x, row * tile_h, tile_w, tile_h))
    for k in range(in_bottom):
        rects.append(Rect(main_x + k * tile_w, main_h, tile_w, tile_h))
    return Rect(main_x, 0, main_w, main_h), rects


def screen_share(
    participants: Sequence[Participant],
    canvas: Canvas,
    *,
    main: MainSelector | None = None,
    main_side: Side = Side.LEFT,
    columns: int = 2,
    per_column: int = 8,
    side_fraction: float = 0.2,
    bottom_overflow: int = 0,
    max_small: int = MAX_TILES - 1,
    order: Sequence[str] = (),
    include_no_video: bool = True,
    main_style: TileStyle = TileStyle(render=RenderMode.FIT),
    small_style: TileStyle = TileStyle(),
) -> Layout:
    """A large main pane on one side plus a column area of small tiles on the other.

    The main pane is always present (``user_id`` None when nobody is chosen: it then shows
    its background image or the canvas).  Small tiles show every other participant's camera
    in order; the main *stream* is not repeated.
    """
    ordered = order_participants(participants, order)
    main_p, reserved = (None, False) if main is None else _resolve_main(ordered, main, include_no_video)
    main_kind = main.stream if main is not None else StreamKind.CAMERA
    main_key = None if main_p is None else _key(main_p)
    if main_p is None and reserved and main is not None:
        main_key = (main.user_id or "", main.room_id)
    small = [
        p
        for p in _eligible(ordered, include_no_video)
        if not (main_kind is StreamKind.CAMERA and _key(p) == main_key)
    ][: min(max_small, MAX_TILES - 1)]
    main_rect, rects = screen_share_rects(
        len(small),
        canvas.width,
        canvas.height,
        main_side=main_side,
        columns=columns,
        per_column=per_column,
        side_fraction=side_fraction,
        bottom_overflow=bottom_overflow,
    )
    main_pane = _pane(
        main_rect,
        main_p,
        main_style,
        z=0,
        stream=main_kind,
        user_id=main.user_id if main is not None and reserved else None,
        room_id=main.room_id if main is not None and reserved else None,
    )
    panes = [main_pane]
    panes.extend(_pane(r, p, small_style, z=1) for r, p in zip(rects, small, strict=False))
    return Layout(canvas, _sorted(panes))


# --------------------------------------------------------------------------- custom


@dataclass(frozen=True, slots=True)
class CustomSlot:
    """One window of a custom layout."""

    rect: Rect | RelRect
    user_id: str | None = None
    """None: filled by the next unnamed participant in order."""
    room_id: str | None = None
    stream: StreamKind = StreamKind.CAMERA
    z: int = 0
    render: RenderMode = RenderMode.FILL
    crop: Crop | None = None
    alpha: float = 1.0
    placeholder: Placeholder = Placeholder()
    background_image: ImageRef | None = None
    fill_color: Color | None = None


def relative_to_absolute(rel: RelRect, width: int, height: int) -> Rect | None:
    """Canvas pixels for a relative rectangle: edges rounded to even pixels, clipped.

    Rounding the edges (not the sizes) makes adjacent relative panes meet exactly.
    """
    x0 = min(max(even_round(rel.x * width), 0), width)
    y0 = min(max(even_round(rel.y * height), 0), height)
    x1 = min(max(even_round((rel.x + rel.width) * width), 0), width)
    y1 = min(max(even_round((rel.y + rel.height) * height), 0), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return Rect(x0, y0, x1 - x0, y1 - y0)


def custom(
    participants: Sequence[Participant],
    canvas: Canvas,
    slots: Sequence[CustomSlot],
    *,
    order: Sequence[str] = (),
    include_no_video: bool = True,
    absent: AbsentRule = AbsentRule.PLACEHOLDER,
    max_slots: int = MAX_TILES,
) -> Layout:
    """Explicit windows.  Absolute rectangles are clipped to the canvas; relative ones are
    scaled (see :func:`relative_to_absolute`); slots left with no area are dropped.

    Named slots are reserved for their user.  Unnamed slots take, in slot order, the next
    participant in order who is named in no slot and not yet placed for that stream kind
    (screen slots only take participants who share a screen).  Unfilled unnamed slots stay as
    empty panes (they show their placeholder / background image).
    """
    ordered = order_participants(participants, order)
    named = [(s.user_id, s.room_id) for s in slots if s.user_id is not None]

    def is_named(p: Participant) -> bool:
        return any(uid is not None and _matches(p, uid, rid) for uid, rid in named)

    used: dict[StreamKind, set[tuple[str, str | None]]] = {k: set() for k in StreamKind}
    panes: list[Pane] = []
    for slot in slots[:max_slots]:
        rect = (
            relative_to_absolute(slot.rect, canvas.width, canvas.height)
            if isinstance(slot.rect, RelRect)
            else slot.rect.clip(canvas.width, canvas.height)
        )
        if rect is None:
            continue
        participant: Participant | None
        if slot.user_id is not None:
            participant = _find(ordered, slot.user_id, slot.room_id)
            if participant is None and absent is AbsentRule.HIDE:
                continue
        else:
            participant = next(
                (
                    p
                    for p in ordered
                    if not is_named(p)
                    and _key(p) not in used[slot.stream]
                    and (
                        p.has_screen if slot.stream is StreamKind.SCREEN else include_no_video or p.has_camera
                    )
                ),
                None,
            )
            if participant is not None:
                used[slot.stream].add(_key(participant))
        panes.append(
            Pane(
                rect=rect,
                user_id=participant.user_id if participant is not None else slot.user_id,
                stream=slot.stream,
                room_id=participant.room_id if participant is not None else slot.room_id,
                z=slot.z,
                render=slot.render,
                crop=slot.crop,
                alpha=slot.alpha,
                placeholder=slot.placeholder,
                background_image=slot.background_image,
                fill_color=slot.fill_color,
                has_video=participant is not None and participant.has_stream(slot.stream),
            )
        )
    return Layout(canvas, _sorted(panes))


# --------------------------------------------------------------------------- post-processing


def with_placeholders(
    layout: Layout,
    per_user: Mapping[str, Placeholder],
    default: Placeholder | None = None,
) -> Layout:
    """Replace pane placeholders: ``per_user`` for panes of those users, ``default`` for the
    other panes that have a user (None: leave them as they are)."""
    panes = []
    for p in layout.panes:
        if p.user_id is not None and p.user_id in per_user:
            p = replace(p, placeholder=per_user[p.user_id])
        elif p.user_id is not None and default is not None:
            p = replace(p, placeholder=default)
        panes.append(p)
    return replace(layout, panes=tuple(panes))


# --------------------------------------------------------------------------- watermark boxes


def anchored_rect(
    canvas_width: int, canvas_height: int, width: int, height: int, anchor: Anchor, margin: int
) -> Rect:
    """A ``width x height`` box placed at ``anchor`` with ``margin`` from the edges, clipped."""
    width, height = min(width, canvas_width), min(height, canvas_height)
    left, right = margin, canvas_width - margin - width
    top, bottom = margin, canvas_height - margin - height
    cx, cy = even_floor((canvas_width - width) / 2), even_floor((canvas_height - height) / 2)
    x, y = {
        Anchor.TOP_LEFT: (left, top),
        Anchor.TOP_RIGHT: (right, top),
        Anchor.BOTTOM_LEFT: (left, bottom),
        Anchor.BOTTOM_RIGHT: (right, bottom),
        Anchor.TOP_CENTER: (cx, top),
        Anchor.BOTTOM_CENTER: (cx, bottom),
        Anchor.CENTER: (cx, cy),
    }[anchor]
    x = min(max(x, 0), canvas_width - width)
    y = min(max(y, 0), canvas_height - height)
    return Rect(x, y, width, height)


def text_box(x: int, y: int, text: str, font_size: int, canvas_width: int, canvas_height: int) -> Rect | None:
    """An estimated box for one line of ``text`` at ``font_size`` px from ``(x, y)``, clipped.

    The estimate is 0.6 em per character and 1.4 em of line height (even pixels).  A text
    that is a strftime format should be passed already formatted (see :func:`sample_time`).
    """
    w = even_round(max(len(text), 1) * font_size * 0.6 + 1)
    h = even_round(font_size * 1.4 + 1)
    return Rect(x, y, w, h).clip(canvas_width, canvas_height)


def sample_time(fmt: str) -> str:
    """``fmt`` applied to a fixed, widest-case instant (for sizing timestamp boxes)."""
    return datetime(2020, 12, 28, 23, 58, 58).strftime(fmt)


# --------------------------------------------------------------------------- frame geometry


@dataclass(frozen=True, slots=True)
class FrameGeometry:
    """Where to take pixels from a source frame and where to put them on the canvas."""

    src: Rect
    """Region of the source frame (source pixels)."""
    dst: Rect
    """Region of the canvas (canvas pixels); ``src`` is scaled to exactly this size."""


def _fit_size(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / src_w, box_h / src_h)
    w = min(box_w, max(even_round(src_w * scale), 1))
    h = min(box_h, max(even_round(src_h * scale), 1))
    return w, h


def frame_geometry(
    src_width: int,
    src_height: int,
    pane: Rect,
    mode: RenderMode,
    crop: Crop | None = None,
    *,
    smart_max_crop: float = SMART_FILL_MAX_CROP,
) -> FrameGeometry:
    """Crop / letterbox geometry for drawing a ``src_width x src_height`` frame into ``pane``.

    ``crop`` (source pixels) is applied first, clipped to the frame; an empty crop is ignored.
    FIT centres a scaled copy inside the pane (even size where the pane allows); FILL crops
    the source centre to the pane's aspect ratio; SMART_FILL crops at most
    ``smart_max_crop`` of the source width or height and stretches the rest; STRETCH maps
    the whole source onto the pane.
    """
    if src_width <= 0 or src_height <= 0:
        raise ValueError(f"source frame must be positive: {src_width}x{src_height}")
    base = Rect(0, 0, src_width, src_height)
    if crop is not None:
        clipped = Rect(crop.x, crop.y, max(crop.width, 0), max(crop.height, 0)).clip(src_width, src_height)
        if clipped is not None:
            base = clipped
    if pane.empty or mode is RenderMode.STRETCH:
        return FrameGeometry(base, pane)
    if mode is RenderMode.FIT:
        w, h = _fit_size(base.width, base.height, pane.width, pane.height)
        return FrameGeometry(
            base,
            Rect(pane.x + even_floor((pane.width - w) / 2), pane.y + even_floor((pane.height - h) / 2), w, h),
        )
    target = pane.width / pane.height
    src_aspect = base.width / base.height
    max_crop = 1.0 if mode is RenderMode.FILL else smart_max_crop
    if src_aspect > target:  # source too wide: crop width
        w = max(round(base.height * target), 1)
        w = max(w, math.ceil(base.width * (1.0 - max_crop)))
        w = min(w, base.width)
        return FrameGeometry(Rect(base.x + (base.width - w) // 2, base.y, w, base.height), pane)
    if src_aspect < target:  # source too tall: crop height
        h = max(round(base.width / target), 1)
        h = max(h, math.ceil(base.height * (1.0 - max_crop)))
        h = min(h, base.height)
        return FrameGeometry(Rect(base.x, base.y + (base.height - h) // 2, base.width, h), pane)
    return FrameGeometry(base, pane)
