"""Generic layout presets and frame geometry (roomcast.domain.layout)."""

from __future__ import annotations

import itertools

import pytest

from roomcast.domain.layout import (
    AbsentRule,
    Anchor,
    Canvas,
    Color,
    Corner,
    Crop,
    CustomSlot,
    Flow,
    ImageRef,
    Layout,
    MainSelector,
    Pane,
    Participant,
    Placeholder,
    PlaceholderKind,
    Rect,
    RelRect,
    RenderMode,
    Side,
    StreamKind,
    TileStyle,
    anchored_rect,
    custom,
    even_floor,
    even_round,
    floating,
    floating_tile_rects,
    frame_geometry,
    grid,
    grid_dimensions,
    order_participants,
    relative_to_absolute,
    screen_share,
    strip,
    text_box,
    with_placeholders,
)

HD = Canvas(1920, 1080)
PORTRAIT = Canvas(360, 640)
COUNTS = [0, 1, 2, 3, 4, 5, 9, 16, 25, 26]


def people(n: int, *, has_camera: bool = True, has_screen: bool = False) -> list[Participant]:
    return [
        Participant(f"u{i}", join_order=i, has_camera=has_camera, has_screen=has_screen) for i in range(n)
    ]


def assert_sane(layout: Layout) -> None:
    """Every pane inside the canvas, integer and non-empty; panes in ascending z."""
    for pane in layout.panes:
        r = pane.rect
        assert all(isinstance(v, int) for v in (r.x, r.y, r.width, r.height))
        assert r.width > 0 and r.height > 0
        assert Rect(0, 0, layout.width, layout.height).contains(r), r
    zs = [p.z for p in layout.panes]
    assert zs == sorted(zs)


def assert_no_overlap(panes: tuple[Pane, ...] | list[Pane]) -> None:
    for a, b in itertools.combinations(panes, 2):
        assert not a.rect.intersects(b.rect), (a.rect, b.rect)


def assert_even(rect: Rect) -> None:
    assert rect.x % 2 == 0 and rect.y % 2 == 0 and rect.width % 2 == 0 and rect.height % 2 == 0, rect


# --------------------------------------------------------------------------- values


def test_even_helpers() -> None:
    assert even_floor(5.9) == 4
    assert even_floor(1.0) == 0
    assert even_floor(-3) == 0
    assert even_round(852.48) == 852
    assert even_round(3.0) == 4  # halves go up
    assert even_round(1278.72) == 1278


def test_rect_basics() -> None:
    r = Rect(10, 20, 30, 40)
    assert (r.right, r.bottom, r.area) == (40, 60, 1200)
    assert r.intersects(Rect(39, 59, 5, 5))
    assert not r.intersects(Rect(40, 20, 5, 5))  # touching edges do not overlap
    assert r.clip(25, 100) == Rect(10, 20, 15, 40)
    assert r.clip(5, 5) is None
    assert Rect(0, 0, 100, 10).mirrored(1920) == Rect(1820, 0, 100, 10)
    with pytest.raises(ValueError):
        Rect(0, 0, -1, 5)


def test_color_parsing() -> None:
    assert Color.from_hex("#FFA500") == Color(255, 165, 0)
    assert Color.from_hex("0xcc0033") == Color(0xCC, 0x00, 0x33)
    assert Color.from_hex("99ccff").to_hex() == "#99CCFF"
    for bad in ("#FFF", "red", "0x12345G", ""):
        with pytest.raises(ValueError):
            Color.from_hex(bad)


def test_canvas_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Canvas(0, 720)


def test_ordering_by_join_order_then_explicit_order() -> None:
    ps = [Participant("b", 2), Participant("a", 1), Participant("c", 1)]
    assert [p.user_id for p in order_participants(ps)] == ["a", "c", "b"]
    assert [p.user_id for p in order_participants(ps, ["b", "zz", "c"])] == ["b", "c", "a"]


# --------------------------------------------------------------------------- grid


@pytest.mark.parametrize(
    ("n", "dims"),
    [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (5, (3, 2)), (9, (3, 3)), (10, (4, 3)),
     (16, (4, 4)), (17, (5, 4)), (25, (5, 5))],
)  # fmt: skip
def test_grid_dimensions(n: int, dims: tuple[int, int]) -> None:
    assert grid_dimensions(n) == dims
    assert grid_dimensions(n, portrait=True) == dims[::-1]


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("canvas", [HD, PORTRAIT, Canvas(1280, 720), Canvas(640, 480)])
def test_grid_counts_bounds_and_no_overlap(n: int, canvas: Canvas) -> None:
    layout = grid(people(n), canvas)
    assert len(layout.panes) == min(n, 25)
    assert_sane(layout)
    assert_no_overlap(layout.panes)
    sizes = {(p.rect.width, p.rect.height) for p in layout.panes}
    assert len(sizes) <= 1  # equal tiles
    for p in layout.panes:
        assert_even(p.rect)
    # join order, and the 26th participant is the one left out
    assert [p.user_id for p in layout.panes] == [f"u{i}" for i in range(min(n, 25))]


def test_grid_exact_geometry_hd() -> None:
    rects = [p.rect for p in grid(people(3), HD).panes]
    assert rects == [Rect(0, 0, 960, 540), Rect(960, 0, 960, 540), Rect(480, 540, 960, 540)]
    rects = [p.rect for p in grid(people(2), HD).panes]
    assert rects == [Rect(0, 0, 960, 1080), Rect(960, 0, 960, 1080)]
    rects = [p.rect for p in grid(people(1), HD).panes]
    assert rects == [Rect(0, 0, 1920, 1080)]
    full = grid(people(25), HD).panes
    assert full[0].rect == Rect(0, 0, 384, 216) and full[-1].rect == Rect(1536, 864, 384, 216)


def test_grid_portrait_stacks_two_users() -> None:
    rects = [p.rect for p in grid(people(2), PORTRAIT).panes]
    assert rects == [Rect(0, 0, 360, 320), Rect(0, 320, 360, 320)]


def test_grid_left_aligned_last_row_option() -> None:
    rects = [p.rect for p in grid(people(3), HD, center_last_row=False).panes]
    assert rects[2] == Rect(0, 540, 960, 540)


def test_grid_uneven_canvas_stays_inside_and_centered() -> None:
    layout = grid(people(3), Canvas(1000, 750))
    assert_sane(layout)
    assert_no_overlap(layout.panes)
    # 1000/2 = 500, 750/2 = 375 -> 374; one row of slack split top/bottom
    assert layout.panes[0].rect == Rect(0, 0, 500, 374)


def test_grid_audio_only_and_max_tiles() -> None:
    ps = [Participant("a", 0, has_camera=False), Participant("b", 1), Participant("c", 2)]
    with_audio = grid(ps, HD)
    assert [p.user_id for p in with_audio.panes] == ["a", "b", "c"]
    assert [p.has_video for p in with_audio.panes] == [False, True, True]
    without = grid(ps, HD, include_no_video=False)
    assert [p.user_id for p in without.panes] == ["b", "c"]
    assert len(grid(people(20), HD, max_tiles=16).panes) == 16


def test_grid_style_is_applied() -> None:
    style = TileStyle(
        render=RenderMode.FIT,
        placeholder=Placeholder(PlaceholderKind.LAST_FRAME),
        background_image=ImageRef("http://x/bg.png"),
        fill_color=Color(1, 2, 3),
        alpha=0.5,
    )
    pane = grid(people(1), HD, style=style).panes[0]
    assert pane.render is RenderMode.FIT
    assert pane.placeholder.kind is PlaceholderKind.LAST_FRAME
    assert pane.background_image == ImageRef("http://x/bg.png")
    assert pane.fill_color == Color(1, 2, 3)
    assert pane.alpha == 0.5


def test_presets_are_deterministic_and_order_independent() -> None:
    ps = people(7, has_screen=True)
    shuffled = [ps[3], ps[6], ps[0], ps[5], ps[1], ps[4], ps[2]]
    for fn in (grid, floating, screen_share, strip):
        assert fn(ps, HD) == fn(shuffled, HD) == fn(tuple(ps), HD)


def test_leaver_is_replaced_by_next_joiner() -> None:
    ps = people(5)
    before = grid(ps, HD, max_tiles=4)
    after = grid([p for p in ps if p.user_id != "u1"], HD, max_tiles=4)
    assert [p.user_id for p in before.panes] == ["u0", "u1", "u2", "u3"]
    assert [p.user_id for p in after.panes] == ["u0", "u2", "u3", "u4"]
    assert [p.rect for p in before.panes] == [p.rect for p in after.panes]


# --------------------------------------------------------------------------- floating


def test_floating_tile_lattice_4x4_hd() -> None:
    rects = floating_tile_rects(16, 1920, 1080, per_line=4)
    # gap 1.2 %: 24 px horizontally, 12 px vertically; tiles 450 x 254
    assert rects[0] == Rect(24, 814, 450, 254)
    assert rects[3] == Rect(1446, 814, 450, 254)
    assert rects[4] == Rect(24, 548, 450, 254)  # second row above the first
    assert rects[15] == Rect(1446, 16, 450, 254)
    assert_no_overlap([Pane(r) for r in rects])
    for r in rects:
        assert Rect(0, 0, 1920, 1080).contains(r)
        assert_even(r)
    assert len(floating_tile_rects(30, 1920, 1080, per_line=4)) == 16


@pytest.mark.parametrize("corner", list(Corner))
@pytest.mark.parametrize("flow", list(Flow))
def test_floating_tile_lattice_corners(corner: Corner, flow: Flow) -> None:
    rects = floating_tile_rects(16, 1280, 720, per_line=4, corner=corner, flow=flow)
    assert len(rects) == 16
    assert_no_overlap([Pane(r) for r in rects])
    first = rects[0]
    if corner in (Corner.BOTTOM_LEFT, Corner.TOP_LEFT):
        assert first.x == min(r.x for r in rects)
    else:
        assert first.right == max(r.right for r in rects)
    if corner in (Corner.BOTTOM_LEFT, Corner.BOTTOM_RIGHT):
        assert first.bottom == max(r.bottom for r in rects)
    else:
        assert first.y == min(r.y for r in rects)
    second = rects[1]
    if flow is Flow.ROWS:
        assert second.y == first.y
    else:
        assert second.x == first.x


@pytest.mark.parametrize("n", COUNTS)
def test_floating_counts_and_z(n: int) -> None:
    layout = floating(people(n), HD)
    assert len(layout.panes) == min(n, 17)  # main + 16 on the default 4x4 lattice
    assert_sane(layout)
    if n:
        main = layout.panes[0]
        assert main.rect == Rect(0, 0, 1920, 1080) and main.z == 0 and main.user_id == "u0"
        small = layout.panes[1:]
        assert all(p.z == 1 for p in small)
        assert_no_overlap(small)
        assert [p.user_id for p in small] == [f"u{i}" for i in range(1, len(small) + 1)]


def test_floating_per_line_callable_and_cap() -> None:
    layout = floating(people(26), HD, per_line=lambda total: 4 if total <= 17 else 5, max_small=24)
    assert len(layout.panes) == 25
    assert_no_overlap(layout.panes[1:])
    assert layout.panes[1].rect.width < 450  # 5 per row: smaller tiles


def test_floating_named_main_user() -> None:
    layout = floating(people(4), HD, main=MainSelector("u2"))
    assert layout.panes[0].user_id == "u2"
    assert [p.user_id for p in layout.panes[1:]] == ["u0", "u1", "u3"]


def test_floating_absent_main_is_reserved() -> None:
    layout = floating(people(2), HD, main=MainSelector("ghost"))
    main = layout.panes[0]
    assert (main.user_id, main.has_video, main.rect) == ("ghost", False, Rect(0, 0, 1920, 1080))
    assert [p.user_id for p in layout.panes[1:]] == ["u0", "u1"]


def test_floating_screen_main_keeps_sharer_camera_small() -> None:
    ps = [Participant("a", 0), Participant("b", 1, has_screen=True)]
    layout = floating(ps, HD, main=MainSelector(stream=StreamKind.SCREEN))
    assert (layout.panes[0].user_id, layout.panes[0].stream) == ("b", StreamKind.SCREEN)
    assert [(p.user_id, p.stream) for p in layout.panes[1:]] == [
        ("a", StreamKind.CAMERA),
        ("b", StreamKind.CAMERA),
    ]


def test_floating_without_main() -> None:
    layout = floating(people(3), HD, main=None)
    assert all(p.z == 1 for p in layout.panes)
    assert len(layout.panes) == 3


def test_floating_skips_audio_only_when_asked() -> None:
    ps = [Participant("a", 0, has_camera=False), Participant("b", 1), Participant("c", 2)]
    layout = floating(ps, HD, include_no_video=False)
    assert [p.user_id for p in layout.panes] == ["b", "c"]


# --------------------------------------------------------------------------- screen share


@pytest.mark.parametrize("n", COUNTS)
def test_screen_share_counts(n: int) -> None:
    layout = screen_share(people(n), HD, main=MainSelector("u0"), bottom_overflow=8)
    assert_sane(layout)
    assert_no_overlap(layout.panes)
    assert len(layout.panes) == min(max(n, 1), 25)  # the main pane is always there
    assert layout.panes[0].z == 0 and layout.panes[0].user_id == "u0"


def test_screen_share_geometry_hd() -> None:
    layout = screen_share(people(4), HD, main=MainSelector("u0"))
    main, *small = layout.panes
    assert main.rect == Rect(0, 0, 1536, 1080)
    assert main.render is RenderMode.FIT
    assert [p.rect for p in small] == [
        Rect(1536, 0, 192, 134),
        Rect(1536, 134, 192, 134),
        Rect(1536, 268, 192, 134),
    ]
    assert all(p.render is RenderMode.FILL for p in small)


def test_screen_share_second_column_and_bottom_overflow() -> None:
    layout = screen_share(people(20), HD, main=MainSelector("u0"), bottom_overflow=8)
    main, *small = layout.panes
    assert len(small) == 19
    assert small[7].rect == Rect(1536, 938, 192, 134)
    assert small[8].rect == Rect(1728, 0, 192, 134)  # outer column
    assert small[16].rect == Rect(0, 938, 192, 134)  # bottom row, left to right
    assert small[18].rect == Rect(384, 938, 192, 134)
    assert main.rect == Rect(0, 0, 1536, 938)  # shrunk to make room


def test_screen_share_without_overflow_drops_extra_users() -> None:
    layout = screen_share(people(30), HD, main=MainSelector("u0"))
    assert len(layout.panes) == 17


def test_screen_share_mirrored() -> None:
    left = screen_share(people(10), HD, main=MainSelector("u0"))
    right = screen_share(people(10), HD, main=MainSelector("u0"), main_side=Side.RIGHT)
    assert right.panes[0].rect == Rect(384, 0, 1536, 1080)
    for a, b in zip(left.panes, right.panes, strict=True):
        assert b.rect == a.rect.mirrored(1920)
    assert right.panes[1].rect == Rect(192, 0, 192, 134)  # column next to the main pane first


def test_screen_share_no_main_shows_background() -> None:
    layout = screen_share(people(3), HD)
    main = layout.panes[0]
    assert main.user_id is None and not main.has_video
    assert [p.user_id for p in layout.panes[1:]] == ["u0", "u1", "u2"]


def test_screen_share_auto_screen_main() -> None:
    ps = [Participant("a", 0), Participant("b", 1, has_screen=True)]
    layout = screen_share(ps, HD, main=MainSelector(stream=StreamKind.SCREEN))
    assert (layout.panes[0].user_id, layout.panes[0].stream, layout.panes[0].has_video) == (
        "b",
        StreamKind.SCREEN,
        True,
    )
    assert [p.user_id for p in layout.panes[1:]] == ["a", "b"]
    nobody = screen_share([Participant("a", 0)], HD, main=MainSelector(stream=StreamKind.SCREEN))
    assert nobody.panes[0].user_id is None


# --------------------------------------------------------------------------- strips


@pytest.mark.parametrize("n", COUNTS)
def test_strips(n: int) -> None:
    h = strip(people(n), HD, max_tiles=25)
    v = strip(people(n), HD, vertical=True, max_tiles=25)
    for layout in (h, v):
        assert len(layout.panes) == min(n, 25)
        assert_sane(layout)
        assert_no_overlap(layout.panes)
    if n == 2:
        assert [p.rect for p in h.panes] == [Rect(0, 0, 960, 1080), Rect(960, 0, 960, 1080)]
        assert [p.rect for p in v.panes] == [Rect(0, 0, 1920, 540), Rect(0, 540, 1920, 540)]


def test_strip_fixed_slots() -> None:
    layout = strip(people(2), HD, max_tiles=5, slots=5)
    assert [p.rect for p in layout.panes] == [Rect(0, 0, 384, 1080), Rect(384, 0, 384, 1080)]
    assert len(strip(people(7), HD, max_tiles=5, slots=5).panes) == 5


# --------------------------------------------------------------------------- custom


def test_custom_named_and_unnamed_slots() -> None:
    slots = [
        CustomSlot(Rect(0, 0, 960, 1080), user_id="u3", z=0),
        CustomSlot(Rect(960, 0, 960, 540), z=2),
        CustomSlot(Rect(960, 540, 960, 540), z=1),
    ]
    layout = custom(people(4), HD, slots)
    assert [(p.user_id, p.z) for p in layout.panes] == [("u3", 0), ("u1", 1), ("u0", 2)]
    assert_sane(layout)


def test_custom_absent_named_user_keeps_or_hides_slot() -> None:
    slots = [
        CustomSlot(Rect(0, 0, 100, 100), user_id="ghost", placeholder=Placeholder(PlaceholderKind.BLACK))
    ]
    kept = custom(people(1), HD, slots)
    assert kept.panes[0].user_id == "ghost" and not kept.panes[0].has_video
    assert kept.panes[0].placeholder.kind is PlaceholderKind.BLACK
    assert custom(people(1), HD, slots, absent=AbsentRule.HIDE).panes == ()


def test_custom_unfilled_slot_and_overflow_users() -> None:
    slots = [CustomSlot(Rect(0, 0, 100, 100)), CustomSlot(Rect(100, 0, 100, 100))]
    one = custom(people(1), HD, slots)
    assert [p.user_id for p in one.panes] == ["u0", None]
    many = custom(people(5), HD, slots)
    assert many.user_ids == ("u0", "u1")


def test_custom_clips_and_drops() -> None:
    slots = [CustomSlot(Rect(1800, 1000, 400, 400)), CustomSlot(Rect(2000, 0, 10, 10))]
    layout = custom(people(2), HD, slots)
    assert [p.rect for p in layout.panes] == [Rect(1800, 1000, 120, 80)]


def test_custom_relative_coordinates() -> None:
    assert relative_to_absolute(RelRect(0, 0, 0.666, 0.333), 1280, 720) == Rect(0, 0, 852, 240)
    assert relative_to_absolute(RelRect(0.666, 0, 0.333, 0.666), 1280, 720) == Rect(852, 0, 426, 480)
    assert relative_to_absolute(RelRect(0.5, 0.5, 1.0, 1.0), 1280, 720) == Rect(640, 360, 640, 360)
    assert relative_to_absolute(RelRect(1.0, 0, 0.5, 0.5), 1280, 720) is None
    layout = custom(people(1), HD, [CustomSlot(RelRect(0.25, 0.25, 0.5, 0.5))])
    assert layout.panes[0].rect == Rect(480, 270, 960, 540)


def test_custom_screen_slots_take_sharers_only() -> None:
    ps = [Participant("a", 0), Participant("b", 1, has_screen=True)]
    slots = [CustomSlot(Rect(0, 0, 960, 1080), stream=StreamKind.SCREEN), CustomSlot(Rect(960, 0, 960, 1080))]
    layout = custom(ps, HD, slots)
    assert [(p.user_id, p.stream, p.has_video) for p in layout.panes] == [
        ("b", StreamKind.SCREEN, True),
        ("a", StreamKind.CAMERA, True),
    ]


def test_custom_named_user_not_reused_for_unnamed_slot() -> None:
    slots = [CustomSlot(Rect(0, 0, 10, 10)), CustomSlot(Rect(10, 0, 10, 10), user_id="u0")]
    layout = custom(people(2), HD, slots)
    assert [p.user_id for p in layout.panes] == ["u1", "u0"]


def test_custom_cross_room_matching() -> None:
    ps = [Participant("x", 0), Participant("x", 1, room_id="other")]
    slots = [CustomSlot(Rect(0, 0, 10, 10), user_id="x", room_id="other")]
    pane = custom(ps, HD, slots).panes[0]
    assert (pane.user_id, pane.room_id) == ("x", "other")


def test_with_placeholders() -> None:
    layout = grid(people(3), HD)
    img = Placeholder(PlaceholderKind.IMAGE, ImageRef("s3://b/u1.png"))
    out = with_placeholders(layout, {"u1": img}, Placeholder(PlaceholderKind.BLACK))
    assert [p.placeholder.kind for p in out.panes] == [
        PlaceholderKind.BLACK,
        PlaceholderKind.IMAGE,
        PlaceholderKind.BLACK,
    ]
    assert with_placeholders(layout, {}) == layout


# --------------------------------------------------------------------------- boxes


@pytest.mark.parametrize("anchor", list(Anchor))
def test_anchored_rect_inside(anchor: Anchor) -> None:
    r = anchored_rect(1280, 720, 200, 40, anchor, 14)
    assert Rect(0, 0, 1280, 720).contains(r) and (r.width, r.height) == (200, 40)


def test_anchored_rect_positions() -> None:
    assert anchored_rect(1280, 720, 200, 40, Anchor.TOP_LEFT, 14) == Rect(14, 14, 200, 40)
    assert anchored_rect(1280, 720, 200, 40, Anchor.BOTTOM_RIGHT, 14) == Rect(1066, 666, 200, 40)
    assert anchored_rect(1280, 720, 200, 40, Anchor.CENTER, 14) == Rect(540, 340, 200, 40)
    assert anchored_rect(100, 100, 500, 500, Anchor.CENTER, 14) == Rect(0, 0, 100, 100)


def test_text_box() -> None:
    assert text_box(10, 10, "hello", 20, 1280, 720) == Rect(10, 10, 62, 30)
    assert text_box(1270, 710, "hello", 20, 1280, 720) == Rect(1270, 710, 10, 10)
    assert text_box(2000, 10, "x", 20, 1280, 720) is None


# --------------------------------------------------------------------------- frame geometry


def test_fit_letterboxes_and_pillarboxes() -> None:
    g = frame_geometry(640, 480, Rect(0, 0, 1920, 1080), RenderMode.FIT)
    assert g.src == Rect(0, 0, 640, 480)
    assert g.dst == Rect(240, 0, 1440, 1080)
    g = frame_geometry(1920, 1080, Rect(100, 100, 400, 400), RenderMode.FIT)
    assert g.dst == Rect(100, 186, 400, 226)
    assert_even(g.dst)


def test_fill_crops_centre() -> None:
    g = frame_geometry(640, 480, Rect(0, 0, 1920, 1080), RenderMode.FILL)
    assert g.src == Rect(0, 60, 640, 360)
    assert g.dst == Rect(0, 0, 1920, 1080)
    g = frame_geometry(1280, 720, Rect(0, 0, 300, 600), RenderMode.FILL)
    assert g.src == Rect(460, 0, 360, 720)


def test_stretch_uses_everything() -> None:
    g = frame_geometry(640, 480, Rect(5, 6, 70, 80), RenderMode.STRETCH)
    assert (g.src, g.dst) == (Rect(0, 0, 640, 480), Rect(5, 6, 70, 80))


def test_smart_fill_limits_crop_to_twenty_percent() -> None:
    # 4:3 into 16:9 needs a 25 % crop of the height: limited to 20 %
    g = frame_geometry(640, 480, Rect(0, 0, 1920, 1080), RenderMode.SMART_FILL)
    assert g.src == Rect(0, 48, 640, 384)
    # a small mismatch is cropped fully
    g = frame_geometry(1280, 720, Rect(0, 0, 1200, 720), RenderMode.SMART_FILL)
    assert g.src == Rect(40, 0, 1200, 720)


def test_same_aspect_is_untouched() -> None:
    for mode in RenderMode:
        g = frame_geometry(1280, 720, Rect(0, 0, 640, 360), mode)
        assert g.src == Rect(0, 0, 1280, 720) and g.dst == Rect(0, 0, 640, 360)


def test_crop_is_applied_first_and_clipped() -> None:
    g = frame_geometry(1920, 1080, Rect(0, 0, 200, 200), RenderMode.FILL, Crop(100, 100, 800, 400))
    assert g.src == Rect(300, 100, 400, 400)
    g = frame_geometry(640, 480, Rect(0, 0, 100, 100), RenderMode.STRETCH, Crop(600, 400, 500, 500))
    assert g.src == Rect(600, 400, 40, 80)
    g = frame_geometry(640, 480, Rect(0, 0, 100, 100), RenderMode.STRETCH, Crop(700, 0, 10, 10))
    assert g.src == Rect(0, 0, 640, 480)  # empty crop ignored


@pytest.mark.parametrize("mode", list(RenderMode))
@pytest.mark.parametrize(("sw", "sh"), [(640, 480), (1280, 720), (720, 1280), (1, 1), (1921, 7)])
@pytest.mark.parametrize("pane", [Rect(0, 0, 1920, 1080), Rect(10, 20, 333, 101), Rect(3, 3, 1, 1)])
def test_geometry_always_within_source_and_pane(mode: RenderMode, sw: int, sh: int, pane: Rect) -> None:
    g = frame_geometry(sw, sh, pane, mode)
    assert Rect(0, 0, sw, sh).contains(g.src) and not g.src.empty
    assert pane.contains(g.dst) and not g.dst.empty


def test_geometry_rejects_empty_source() -> None:
    with pytest.raises(ValueError):
        frame_geometry(0, 10, Rect(0, 0, 10, 10), RenderMode.FIT)
