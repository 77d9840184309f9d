"""Vendor layout templates (TRTC, SparkRTC, JOYY) mapped onto the generic presets."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from roomcast.api.jocloud import layouts as joyy
from roomcast.api.sparkrtc import layouts as spark
from roomcast.api.trtc import layouts as trtc
from roomcast.domain.layout import (
    BLACK,
    Anchor,
    Canvas,
    Color,
    Crop,
    ImageRef,
    ImageWatermark,
    Layout,
    Participant,
    PlaceholderKind,
    Rect,
    RenderMode,
    StreamKind,
    TextWatermark,
    TimestampWatermark,
)
from roomcast.domain.layout_templates import LayoutFunction, build_layout
from roomcast.domain.recording import LayoutRef


def people(n: int, *, has_camera: bool = True, has_screen: bool = False) -> list[Participant]:
    return [
        Participant(f"u{i}", join_order=i, has_camera=has_camera, has_screen=has_screen) for i in range(n)
    ]


def as_data(ref: LayoutRef) -> LayoutFunction:
    """The layout function of ``ref`` after a trip through JSON (as a stored spec takes)."""
    stored = json.loads(json.dumps({"preset": ref.preset, "params": dict(ref.params)}))
    return build_layout(LayoutRef(**stored))


def rects(layout: Layout) -> list[Rect]:
    return [p.rect for p in layout.panes]


def assert_sane(layout: Layout) -> None:
    canvas = Rect(0, 0, layout.width, layout.height)
    for p in layout.panes:
        assert canvas.contains(p.rect) and not p.rect.empty
    assert [p.z for p in layout.panes] == sorted(p.z for p in layout.panes)


def assert_no_overlap(layout: Layout, z: int) -> None:
    panes = [p for p in layout.panes if p.z == z]
    for a, b in itertools.combinations(panes, 2):
        assert not a.rect.intersects(b.rect)


# =========================================================================== TRTC recording


def rec(ps: list[Participant], w: int = 1920, h: int = 1080, **kw: Any) -> Layout:
    layout = trtc.recording_layout(ps, trtc.TrtcMixLayoutParams(**kw), w, h)
    assert_sane(layout)
    return layout


def test_trtc_constants() -> None:
    assert {1, 2, 3, 4} == trtc.MIX_LAYOUT_MODES
    assert trtc.RECORDING_DEFAULT_MIX_LAYOUT_MODE == 3
    assert trtc.RELAY_DEFAULT_MIX_LAYOUT_MODE == 1
    assert trtc.RECORDING_RENDER_MODES[1] is RenderMode.FILL
    assert trtc.RECORDING_RENDER_MODES[0] is RenderMode.STRETCH
    assert trtc.RECORDING_RENDER_MODES[2] is RenderMode.FIT
    assert trtc.RECORDING_RENDER_MODES[3] is RenderMode.SMART_FILL
    assert trtc.MCU_RENDER_MODES[0] is RenderMode.FILL
    assert (trtc.MIX_LAYOUT_COORD_MAX, trtc.WATERMARK_COORD_MAX, trtc.MIX_LAYOUT_ALPHA_MAX) == (
        1920,
        2560,
        255,
    )
    assert trtc.TIMESTAMP_POSITIONS[6] is Anchor.CENTER


def test_trtc_create_example_grid_on_default_portrait_canvas() -> None:
    # CreateCloudRecording example: 360x640, MixLayoutMode 3
    layout = rec(people(2), 360, 640, mix_layout_mode=3)
    assert rects(layout) == [Rect(0, 0, 360, 320), Rect(0, 320, 360, 320)]
    assert layout.canvas.background.color == BLACK
    assert all(p.render is RenderMode.FILL for p in layout.panes)  # RenderMode default 1 = crop


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 9, 16, 25, 26])
def test_trtc_grid_up_to_25(n: int) -> None:
    layout = rec(people(n))
    assert len(layout.panes) == min(n, 25)
    assert_no_overlap(layout, 0)
    assert all(p.stream is StreamKind.CAMERA for p in layout.panes)


def test_trtc_grid_audio_only_still_takes_a_window() -> None:
    layout = rec([Participant("a", 0, has_camera=False), Participant("b", 1)])
    assert [p.user_id for p in layout.panes] == ["a", "b"]


def test_trtc_floating_first_anchor_full_screen_small_from_bottom_left() -> None:
    layout = rec(people(5), mix_layout_mode=1)
    assert layout.panes[0].rect == Rect(0, 0, 1920, 1080) and layout.panes[0].user_id == "u0"
    assert rects(layout)[1:] == [
        Rect(24, 814, 450, 254),
        Rect(498, 814, 450, 254),
        Rect(972, 814, 450, 254),
        Rect(1446, 814, 450, 254),
    ]
    six = rec(people(6), mix_layout_mode=1)
    assert six.panes[5].rect == Rect(24, 548, 450, 254)  # fifth small window starts row 2


def test_trtc_floating_four_per_row_up_to_17_videos_then_five() -> None:
    at17 = rec(people(17), mix_layout_mode=1)
    assert len(at17.panes) == 17 and at17.panes[1].rect.width == 450
    at18 = rec(people(18), mix_layout_mode=1)
    assert len(at18.panes) == 18
    small = at18.panes[1:]
    assert len({p.rect.y for p in small[:5]}) == 1 and small[5].rect.y < small[4].rect.y  # 5 per row
    assert_no_overlap(at18, 1)
    over = rec(people(30), mix_layout_mode=1)
    assert len(over.panes) == 25  # main + 24 small


def test_trtc_floating_named_user_and_media_id() -> None:
    layout = rec(people(3), mix_layout_mode=1, max_resolution_user_id="u2")
    assert layout.panes[0].user_id == "u2"
    assert [p.user_id for p in layout.panes[1:]] == ["u0", "u1"]
    ps = [Participant("a", 0), Participant("b", 1, has_screen=True)]
    shared = rec(ps, mix_layout_mode=1, media_id=1)
    assert (shared.panes[0].user_id, shared.panes[0].stream) == ("b", StreamKind.SCREEN)
    nobody = rec(people(2), mix_layout_mode=1, media_id=1)
    assert (nobody.panes[0].user_id, nobody.panes[0].stream) == ("u0", StreamKind.CAMERA)


def test_trtc_screen_sharing_without_user_shows_background_on_the_left() -> None:
    layout = rec(people(3), mix_layout_mode=2)
    main, *small = layout.panes
    assert main.user_id is None and main.rect == Rect(0, 0, 1536, 1080)
    assert [p.user_id for p in small] == ["u0", "u1", "u2"]
    assert rects(layout)[1:] == [
        Rect(1536, 0, 192, 134),
        Rect(1536, 134, 192, 134),
        Rect(1536, 268, 192, 134),
    ]


def test_trtc_screen_sharing_columns_then_bottom_row() -> None:
    layout = rec(people(25), mix_layout_mode=2, max_resolution_user_id="u0", media_id=1)
    main, *small = layout.panes
    assert (main.user_id, main.stream) == ("u0", StreamKind.SCREEN)
    assert len(small) == 24  # u0's camera is a small window too
    assert [p.rect for p in small[:8]] == [Rect(1536, 134 * i, 192, 134) for i in range(8)]
    assert [p.rect for p in small[8:16]] == [Rect(1728, 134 * i, 192, 134) for i in range(8)]
    assert [p.rect for p in small[16:]] == [Rect(192 * i, 938, 192, 134) for i in range(8)]
    assert main.rect == Rect(0, 0, 1536, 938)
    for a, b in itertools.combinations(layout.panes, 2):
        assert not a.rect.intersects(b.rect)


def test_trtc_screen_sharing_17_videos_use_no_bottom_row() -> None:
    layout = rec(people(17), mix_layout_mode=2, max_resolution_user_id="u0")
    assert layout.panes[0].rect == Rect(0, 0, 1536, 1080)
    assert len(layout.panes) == 17


def test_trtc_screen_sharing_align_right() -> None:
    layout = rec(people(3), mix_layout_mode=2, max_resolution_user_id="u0", max_resolution_user_align=1)
    assert rects(layout) == [Rect(384, 0, 1536, 1080), Rect(192, 0, 192, 134), Rect(192, 134, 192, 134)]


def test_trtc_custom_modify_example() -> None:
    # ModifyCloudRecording example: users 123 and 456 at absolute pixel positions
    ps = [Participant("456", 0), Participant("123", 1)]
    layout = rec(
        ps,
        mix_layout_mode=4,
        mix_layout_list=[
            trtc.TrtcMixLayout(top=100, left=100, width=100, height=100, user_id="123"),
            trtc.TrtcMixLayout(top=200, left=200, width=100, height=100, user_id="456"),
        ],
    )
    assert [(p.user_id, p.rect) for p in layout.panes] == [
        ("123", Rect(100, 100, 100, 100)),
        ("456", Rect(200, 200, 100, 100)),
    ]


def test_trtc_custom_fields() -> None:
    ps = [Participant("a", 0), Participant("b", 1, has_screen=True), Participant("c", 2)]
    layout = rec(
        ps,
        1280,
        720,
        mix_layout_mode=4,
        render_mode=2,  # ignored in custom mode
        mix_layout_list=[
            trtc.TrtcMixLayout(0, 0, 1280, 720, user_id="b", media_id=1, image_layer=0, render_mode=2),
            trtc.TrtcMixLayout(500, 900, 320, 180, alpha=255, image_layer=2, render_mode=0),
            trtc.TrtcMixLayout(300, 900, 320, 180, image_layer=1, sub_background_image="http://x/w.png"),
            trtc.TrtcMixLayout(600, 1200, 200, 200),  # clipped to 80 x 120
        ],
    )
    by_z = [(p.user_id, p.stream, p.z) for p in layout.panes]
    assert by_z == [
        ("b", StreamKind.SCREEN, 0),
        (None, StreamKind.CAMERA, 0),
        ("c", StreamKind.CAMERA, 1),
        ("a", StreamKind.CAMERA, 2),
    ]
    assert layout.panes[0].render is RenderMode.FIT
    assert layout.panes[1].rect == Rect(1200, 600, 80, 120)
    assert layout.panes[1].render is RenderMode.FILL  # per-window default, not params.render_mode
    assert layout.panes[2].background_image == ImageRef("http://x/w.png", RenderMode.FILL)
    assert layout.panes[3].alpha == 0.0 and layout.panes[3].render is RenderMode.STRETCH


def test_trtc_custom_unnamed_windows_fill_in_entry_order_and_extra_users_are_dropped() -> None:
    layout = rec(
        people(4),
        mix_layout_mode=4,
        mix_layout_list=[trtc.TrtcMixLayout(0, 0, 960, 1080), trtc.TrtcMixLayout(0, 960, 960, 1080)],
    )
    assert layout.user_ids == ("u0", "u1")


def test_trtc_placeholders_and_backgrounds() -> None:
    ps = [Participant("a", 0, has_camera=False)]
    off = rec(ps, default_sub_background_image="http://x/sub.png")
    assert off.panes[0].placeholder.kind is PlaceholderKind.NONE
    assert off.panes[0].background_image == ImageRef("http://x/sub.png", RenderMode.FILL)
    on = rec(ps, place_holder_mode=1, default_sub_background_image="http://x/sub.png")
    assert on.panes[0].placeholder.kind is PlaceholderKind.IMAGE
    assert on.panes[0].placeholder.image == ImageRef("http://x/sub.png", RenderMode.FILL)
    builtin = rec(ps, place_holder_mode=1)
    assert (
        builtin.panes[0].placeholder.kind is PlaceholderKind.IMAGE
        and builtin.panes[0].placeholder.image is None
    )
    bg = rec(
        ps, background_color="#FFA500", background_image_url="http://x/bg.jpg", background_image_render_mode=0
    )
    assert bg.canvas.background.color == Color(255, 165, 0)
    assert bg.canvas.background.image == ImageRef("http://x/bg.jpg", RenderMode.STRETCH)


def test_trtc_render_mode_applies_to_preset_windows() -> None:
    layout = rec(people(3), mix_layout_mode=1, render_mode=3)
    assert all(p.render is RenderMode.SMART_FILL for p in layout.panes)


def test_trtc_recording_watermarks() -> None:
    layout = rec(
        [],
        1280,
        720,
        water_mark_list=[
            trtc.TrtcWaterMarkImage("http://x/logo.png", top=10, left=20, width=100, height=50),
            trtc.TrtcWaterMarkChar(
                top=600, left=1200, width=200, height=40, chars="hi", font_color="#FF0000"
            ),
            trtc.TrtcWaterMarkTimestamp(pos=3),
            trtc.TrtcWaterMarkTimestamp(pos=0, time_zone=0),
        ],
    )
    img, text, ts, ts0 = layout.watermarks
    assert isinstance(img, ImageWatermark) and img.rect == Rect(20, 10, 100, 50)
    assert isinstance(text, TextWatermark) and text.rect == Rect(1200, 600, 80, 40)
    assert text.color == Color(255, 0, 0) and text.font_size == 14 and text.background is None
    assert isinstance(ts, TimestampWatermark) and ts.utc_offset_minutes == 480
    assert ts.rect.right == 1280 - 14 and ts.rect.bottom == 720 - 14
    assert isinstance(ts0, TimestampWatermark) and ts0.utc_offset_minutes == 0
    assert (ts0.rect.x, ts0.rect.y) == (14, 14)
    assert [w.z for w in layout.watermarks] == [0, 1, 2, 3]


# =========================================================================== TRTC relay


def relay(ps: list[Participant], w: int = 1280, h: int = 720, room: str | None = None, **kw: Any) -> Layout:
    params = trtc.TrtcMcuLayoutParams(**kw)
    layout = trtc.relay_layout(ps, params, w, h, room_id=room)
    assert_sane(layout)
    assert as_data(trtc.relay_layout_ref(params, room_id=room))(ps, Canvas(w, h)) == layout
    return layout


def test_trtc_relay_start_example_custom_two_slots() -> None:
    ps = [Participant("Trtc_User_1", 0), Participant("Trtc_User_0", 1)]
    layout = relay(
        ps,
        room="295066",
        mix_layout_mode=4,
        mix_layout_list=[
            trtc.TrtcMcuLayout(640, 720, 0, 0, 0, 0, user_id="Trtc_User_0", room_id="295066"),
            trtc.TrtcMcuLayout(640, 720, 640, 0, 0, 0, user_id="Trtc_User_1", room_id="295066"),
        ],
        background_color="0xFF0000",
        water_mark_list=[trtc.TrtcMcuWaterMarkImage("https://x/w.png", 64, 64, 64, 64, z_order=3)],
    )
    assert [(p.user_id, p.rect, p.render, p.has_video) for p in layout.panes] == [
        ("Trtc_User_0", Rect(0, 0, 640, 720), RenderMode.FILL, True),
        ("Trtc_User_1", Rect(640, 0, 640, 720), RenderMode.FILL, True),
    ]
    assert layout.canvas.background.color == Color(255, 0, 0)
    (mark,) = layout.watermarks
    assert isinstance(mark, ImageWatermark) and mark.rect == Rect(64, 64, 64, 64) and mark.z == 3


def test_trtc_relay_update_example_slot_is_clipped() -> None:
    layout = relay(
        people(2),
        mix_layout_mode=4,
        mix_layout_list=[trtc.TrtcMcuLayout(640, 720, 0, 0), trtc.TrtcMcuLayout(640, 720, 640, 360)],
    )
    assert rects(layout) == [Rect(0, 0, 640, 720), Rect(640, 360, 640, 360)]


def test_trtc_relay_custom_cross_room_placeholder_and_crop() -> None:
    ps = [Participant("x", 0), Participant("y", 1, room_id="other")]
    layout = relay(
        ps,
        room="main",
        mix_layout_mode=4,
        mix_layout_list=[
            trtc.TrtcMcuLayout(
                320,
                180,
                0,
                0,
                user_id="y",
                room_id="other",
                custom_crop=Crop(10, 10, 100, 100),
                render_mode=2,
            ),
            trtc.TrtcMcuLayout(320, 180, 320, 0, user_id="ghost", background_image_url="http://x/p.png"),
        ],
    )
    first, ghost = layout.panes
    assert (first.user_id, first.room_id, first.crop, first.fill_color) == (
        "y",
        "other",
        Crop(10, 10, 100, 100),
        BLACK,
    )
    assert first.render is RenderMode.FIT
    assert ghost.user_id == "ghost" and not ghost.has_video
    assert ghost.placeholder.image == ImageRef("http://x/p.png", RenderMode.STRETCH)


def test_trtc_relay_floating_is_1_plus_15_and_skips_audio_only() -> None:
    layout = relay(people(20))  # default mode 1
    assert len(layout.panes) == 16
    assert layout.panes[0].rect == Rect(0, 0, 1280, 720)
    ps = [Participant("a", 0, has_camera=False), *people(2)]
    assert relay(ps).user_ids == ("u0", "u1")
    assert relay(ps, pure_audio_hold_place_mode=1).user_ids == ("a", "u0", "u1")


def test_trtc_relay_grid_16_and_render_modes() -> None:
    layout = relay(people(20), mix_layout_mode=3, render_mode=2)
    assert len(layout.panes) == 16
    assert all(p.render is RenderMode.FIT and p.fill_color == BLACK for p in layout.panes)
    assert_no_overlap(layout, 0)


def test_trtc_relay_screen_share() -> None:
    ps = [*people(3), Participant("t", 9, has_screen=True)]
    layout = relay(ps, mix_layout_mode=2, max_video_user=("t", None, 1))
    main, *small = layout.panes
    assert (main.user_id, main.stream, main.render) == ("t", StreamKind.SCREEN, RenderMode.FIT)
    assert main.rect == Rect(0, 0, 1024, 720)
    assert [p.user_id for p in small] == ["u0", "u1", "u2", "t"]
    assert all(p.render is RenderMode.FILL for p in small)
    unset = relay(people(3), mix_layout_mode=2)
    assert unset.panes[0].user_id is None
    assert len(relay(people(30), mix_layout_mode=2, max_video_user=("u0", None, 0)).panes) == 16


def test_trtc_relay_background_render_modes() -> None:
    layout = relay([], background_image_url="http://x/b.png")
    assert layout.canvas.background.image == ImageRef("http://x/b.png", RenderMode.STRETCH)
    layout = relay([], background_image_url="http://x/b.png", background_render_mode=0)
    assert layout.canvas.background.image == ImageRef("http://x/b.png", RenderMode.FILL)


# =========================================================================== SparkRTC


def sp(ps: list[Participant], w: int = 1920, h: int = 1080, **kw: Any) -> Layout:
    params = spark.SparkMixLayoutParams(**kw)
    layout = spark.mix_layout(ps, params, w, h)
    assert_sane(layout)
    assert as_data(spark.mix_layout_ref(params))(ps, Canvas(w, h)) == layout
    return layout


def test_spark_encode_templates() -> None:
    assert spark.encode_template_size("1920x1080_30_4620") == (1920, 1080)
    assert spark.encode_template_size("1280*720_15_2260") == (1280, 720)
    assert spark.encode_template_size("audio_only") is None
    assert spark.encode_template_size("1280x720_15_9999") is None
    assert {"nine_grids_view", "screen_share_left", "screen_share_right", "custom"} == spark.LAYOUT_TEMPLATES


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 9, 16, 25, 26])
def test_spark_nine_grid(n: int) -> None:
    layout = sp(people(n), layout_template="nine_grids_view")
    assert len(layout.panes) == min(n, 25)
    assert all(p.render is RenderMode.FILL for p in layout.panes)
    assert_no_overlap(layout, 0)
    if n == 4:
        assert rects(layout) == [
            Rect(0, 0, 960, 540),
            Rect(960, 0, 960, 540),
            Rect(0, 540, 960, 540),
            Rect(960, 540, 960, 540),
        ]


def test_spark_nine_grid_ignores_panes_and_keeps_audio_only() -> None:
    ps = [Participant("a", 0, has_camera=False), Participant("b", 1)]
    layout = sp(
        ps, layout_template="nine_grids_view", layout_panes=[spark.SparkLayoutPane(id=1, user_id="b")]
    )
    assert layout.user_ids == ("a", "b")


def test_spark_screen_share_right_shared_screen_example() -> None:
    ps = [*people(2), Participant("p", 5, has_screen=True)]
    panes = [
        spark.SparkLayoutPane(id=1, user_id="", video_type="SCREENSTREAM", filling_policy="SHARED_SCREEN")
    ]
    layout = sp(
        ps, layout_template="screen_share_right", layout_panes=panes, screen_background_image="s3://b/s.png"
    )
    main, *small = layout.panes
    assert (main.user_id, main.stream, main.rect, main.render) == (
        "p",
        StreamKind.SCREEN,
        Rect(384, 0, 1536, 1080),
        RenderMode.FIT,
    )
    assert main.background_image == ImageRef("s3://b/s.png", RenderMode.FILL)
    assert [(p.user_id, p.rect) for p in small] == [
        ("u0", Rect(192, 0, 192, 134)),
        ("u1", Rect(192, 134, 192, 134)),
        ("p", Rect(192, 268, 192, 134)),
    ]
    assert all(p.render is RenderMode.FILL for p in small)


def test_spark_screen_share_left_fixed_user_example() -> None:
    panes = [
        spark.SparkLayoutPane(id=1, user_id="u1", video_type="CAMERASTREAM", filling_policy="FIXED_USER")
    ]
    layout = sp(people(3), layout_template="screen_share_left", layout_panes=panes)
    assert (layout.panes[0].user_id, layout.panes[0].rect) == ("u1", Rect(0, 0, 1536, 1080))
    assert [p.user_id for p in layout.panes[1:]] == ["u0", "u2"]


def test_spark_screen_share_without_user_and_17_cap() -> None:
    layout = sp(people(3), layout_template="screen_share_left")
    assert layout.panes[0].user_id is None
    absent = [spark.SparkLayoutPane(id=1, user_id="gone", filling_policy="FIXED_USER")]
    reserved = sp(people(3), layout_template="screen_share_left", layout_panes=absent)
    assert reserved.panes[0].user_id == "gone" and not reserved.panes[0].has_video
    assert len(sp(people(30), layout_template="screen_share_left").panes) == 17


def test_spark_custom_example() -> None:
    panes = [
        spark.SparkLayoutPane(
            id=1, user_id="user1", x=0, y=0, width=0.666, height=0.333, crop_mode="KEEP_RATIO_CROP"
        ),
        spark.SparkLayoutPane(
            id=2, user_id="user2", x=0.666, y=0, width=0.333, height=0.666, crop_mode="KEEP_RATIO_PADDING"
        ),
    ]
    ps = [Participant("user2", 0), Participant("user1", 1)]
    layout = sp(ps, 1280, 720, layout_template="custom", layout_panes=panes)
    assert [(p.user_id, p.rect, p.render) for p in layout.panes] == [
        ("user1", Rect(0, 0, 852, 240), RenderMode.FILL),
        ("user2", Rect(852, 0, 426, 480), RenderMode.FIT),
    ]


def test_spark_custom_zorder_unnamed_and_defaults() -> None:
    panes = [
        spark.SparkLayoutPane(id=1, zorder=3, x=0.5, y=0.5),
        spark.SparkLayoutPane(id=2, zorder=1, user_id="", video_type="SCREENSTREAM", width=0.5, height=0.5),
    ]
    ps = [Participant("a", 0), Participant("b", 1, has_screen=True)]
    layout = sp(ps, 1280, 720, layout_template="custom", layout_panes=panes)
    assert [(p.user_id, p.stream, p.z, p.rect) for p in layout.panes] == [
        ("b", StreamKind.SCREEN, 1, Rect(0, 0, 640, 360)),
        ("a", StreamKind.CAMERA, 3, Rect(640, 360, 640, 360)),
    ]


def test_spark_background_images() -> None:
    ps = [Participant("a", 0, has_camera=False), Participant("b", 1, has_camera=False)]
    layout = sp(
        ps,
        layout_template="nine_grids_view",
        background_image="s3://b/bg.png",
        default_user_background_image="s3://b/default.png",
        user_background_images={"b": "s3://b/b.png"},
    )
    assert layout.canvas.background.image == ImageRef("s3://b/bg.png", RenderMode.FILL)
    assert [p.placeholder.image for p in layout.panes] == [
        ImageRef("s3://b/default.png", RenderMode.FILL),
        ImageRef("s3://b/b.png", RenderMode.FILL),
    ]


def test_spark_unknown_template() -> None:
    with pytest.raises(ValueError):
        sp([], layout_template="pip")


# =========================================================================== JOYY


def jy(ps: list[Participant], room: str | None = None, **kw: Any) -> Layout:
    kw.setdefault("width", 1280)
    kw.setdefault("height", 720)
    config = joyy.JoyyMixConfig(**kw)
    layout = joyy.mix_layout(ps, config, room_id=room)
    assert_sane(layout)
    assert (
        as_data(joyy.mix_layout_ref(config, room_id=room))(ps, Canvas(config.width, config.height)) == layout
    )
    return layout


def test_joyy_constants() -> None:
    assert {1, 2, 3, 4, 5} == joyy.TEMPLATE_IDS
    assert joyy.CROP_MODES == {0: RenderMode.FIT, 1: RenderMode.FILL}
    assert joyy.PATCH_MODES[3] is PlaceholderKind.IMAGE
    assert (joyy.MAX_Z_ORDER, joyy.COORD_MAX) == (16, 1920)
    assert joyy.round_video_dimension(1080) == 1080
    assert joyy.round_video_dimension(1082) == 1084
    assert joyy.round_video_dimension(721) == 720
    assert joyy.round_video_dimension(4) == 16
    assert joyy.round_video_dimension(5000) == 1920


def test_joyy_startrecord_example_custom_inputs() -> None:
    ps = [Participant("10266666", 0), Participant("10277777", 1, room_id="efdefd")]
    layout = jy(
        ps,
        room="abcabc",
        width=800,
        height=600,
        inputs=[
            joyy.JoyyInput(
                "10266666", "abcabc", 0, z_order=0, layout_x=0, layout_y=0, layout_h=600, layout_w=400
            ),
            joyy.JoyyInput(
                "10277777", "efdefd", 0, z_order=1, layout_x=400, layout_y=0, layout_h=600, layout_w=400
            ),
        ],
    )
    assert [
        (p.user_id, p.room_id, p.rect, p.z, p.render, p.fill_color, p.has_video) for p in layout.panes
    ] == [
        ("10266666", None, Rect(0, 0, 400, 600), 0, RenderMode.FIT, BLACK, True),
        ("10277777", "efdefd", Rect(400, 0, 400, 600), 1, RenderMode.FIT, BLACK, True),
    ]


def test_joyy_custom_crop_alpha_audio_and_fill() -> None:
    layout = jy(
        people(2),
        inputs=[
            joyy.JoyyInput(
                "u0",
                crop=1,
                crop_x=10,
                crop_y=20,
                crop_w=300,
                crop_h=200,
                alpha=0.5,
                layout_w=640,
                layout_h=360,
            ),
            joyy.JoyyInput("u1", streamtype=2, layout_w=640, layout_h=360),
        ],
    )
    (pane,) = layout.panes
    assert pane.crop == Crop(10, 20, 300, 200) and pane.alpha == 0.5
    assert pane.render is RenderMode.FILL and pane.fill_color is None


@pytest.mark.parametrize(
    ("template", "n", "expected"),
    [
        (1, 1, [Rect(0, 0, 1280, 720)]),
        (1, 2, [Rect(0, 0, 640, 720), Rect(640, 0, 640, 720)]),
        (1, 6, [Rect(320 * i, 0, 320, 720) for i in range(4)]),
        (2, 2, [Rect(0, 0, 1280, 360), Rect(0, 360, 1280, 360)]),
        (2, 3, [Rect(0, 0, 1280, 240), Rect(0, 240, 1280, 240), Rect(0, 480, 1280, 240)]),
        (
            3,
            4,
            [Rect(0, 0, 640, 360), Rect(640, 0, 640, 360), Rect(0, 360, 640, 360), Rect(640, 360, 640, 360)],
        ),
        (5, 2, [Rect(0, 0, 256, 720), Rect(256, 0, 256, 720)]),
        (5, 7, [Rect(256 * i, 0, 256, 720) for i in range(5)]),
    ],
)
def test_joyy_templates(template: int, n: int, expected: list[Rect]) -> None:
    layout = jy(people(n), template_id=template)
    assert rects(layout) == expected
    assert all(p.render is RenderMode.FILL for p in layout.panes)


def test_joyy_tiled_caps_at_16() -> None:
    layout = jy(people(20), template_id=3)
    assert len(layout.panes) == 16
    assert_no_overlap(layout, 0)


def test_joyy_corner_template() -> None:
    layout = jy(people(6), template_id=4)
    assert len(layout.panes) == 4
    main, *small = layout.panes
    assert main.rect == Rect(0, 0, 1280, 720) and main.user_id == "u0"
    # 1.2 % gaps (16 px, 8 px); tiles 300 x 170, stacked upwards from the bottom-right corner
    assert [p.rect for p in small] == [
        Rect(964, 542, 300, 170),
        Rect(964, 364, 300, 170),
        Rect(964, 186, 300, 170),
    ]
    assert [p.user_id for p in small] == ["u1", "u2", "u3"]


@pytest.mark.parametrize(
    ("patch", "kind"),
    [
        (0, PlaceholderKind.NONE),
        (1, PlaceholderKind.BLACK),
        (2, PlaceholderKind.LAST_FRAME),
        (3, PlaceholderKind.IMAGE),
    ],
)
def test_joyy_patch_modes(patch: int, kind: PlaceholderKind) -> None:
    layout = jy(people(1), template_id=3, patch=patch, patch_url="http://x/p.png")
    assert layout.panes[0].placeholder.kind is kind
    if kind is PlaceholderKind.IMAGE:
        assert layout.panes[0].placeholder.image == ImageRef("http://x/p.png", RenderMode.FILL)


def test_joyy_background_and_watermarks() -> None:
    layout = jy(
        [],
        template_id=1,
        background_color="00ff00",
        background_image_url="http://x/bg.png",
        background_image_scale=1,
        images=[joyy.JoyyImageMark(10, 10, 100, 50, "http://x/logo.png", scale=0, alpha=0.8)],
        texts=[joyy.JoyyTextMark(20, 600, "live", 20)],
        timestamp=joyy.JoyyTimestampMark(1000, 20, "%Y-%m-%d %H:%M:%S", 20, color="FF0000"),
    )
    assert layout.canvas.background.color == Color(0, 255, 0)
    assert layout.canvas.background.image == ImageRef("http://x/bg.png", RenderMode.STRETCH)
    img, text, ts = layout.watermarks
    assert isinstance(img, ImageWatermark) and img.rect == Rect(10, 10, 100, 50) and img.alpha == 0.8
    assert img.image.render is RenderMode.FILL
    assert isinstance(text, TextWatermark) and text.rect == Rect(20, 600, 50, 30) and text.background == BLACK
    assert isinstance(ts, TimestampWatermark) and ts.color == Color(255, 0, 0)
    assert ts.rect == Rect(1000, 20, 230, 30)  # 19 characters * 12 px, clipped at the canvas edge
    assert ts.utc_offset_minutes == 480 and ts.format == "%Y-%m-%d %H:%M:%S"
