"""The video compositor (roomcast.media.compositor): frames in, canvas frame out."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from roomcast.domain.layout import (
    Background,
    Canvas,
    Color,
    Crop,
    ImageRef,
    ImageWatermark,
    Layout,
    MainSelector,
    Pane,
    Participant,
    Placeholder,
    PlaceholderKind,
    Rect,
    RenderMode,
    TextWatermark,
    TileStyle,
    TimestampWatermark,
    floating,
    grid,
)
from roomcast.media.compositor import Compositor, SourceKey, frame_planes
from roomcast.media.testpattern import user_colour
from tests.support.avcheck import dominant_colour, nearest_user, to_rgb

U8 = npt.NDArray[np.uint8]
USERS = ["u1", "u2", "u3", "u4"]


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> av.VideoFrame:
    arr = np.empty((height, width, 3), np.uint8)
    arr[...] = rgb
    return av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")


def people(n: int = 4) -> list[Participant]:
    return [Participant(f"u{i + 1}", join_order=i) for i in range(n)]


def user_frames(width: int = 320, height: int = 240) -> dict[SourceKey, av.VideoFrame]:
    return {SourceKey(u): solid(width, height, user_colour(u)) for u in USERS}


def rgb_at(frame: av.VideoFrame, x: int, y: int) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in to_rgb(frame)[y, x])
    return r, g, b


def close(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_grid_of_four_solid_colours() -> None:
    layout = grid(people(), Canvas(640, 360))
    out = Compositor(layout).compose(user_frames())
    assert (out.width, out.height, out.format.name) == (640, 360, "yuv420p")
    regions = [(p.rect.x, p.rect.y, p.rect.width, p.rect.height) for p in layout.panes]
    rgb = to_rgb(out)
    found = [nearest_user(dominant_colour(rgb, r), USERS, 20) for r in regions]
    assert found == USERS
    # every pixel of every pane is its user's colour (FILL, no bars)
    for pane in layout.panes:
        r = pane.rect
        assert pane.user_id is not None
        assert close(rgb_at(out, r.x + 1, r.y + 1), user_colour(pane.user_id))
        assert close(rgb_at(out, r.right - 2, r.bottom - 2), user_colour(pane.user_id))


def test_fit_letterboxes_and_fill_covers() -> None:
    canvas = Canvas(320, 180, background=Background(Color(0, 0, 0)))
    tall = {SourceKey("u1"): solid(90, 160, user_colour("u1"))}  # portrait source in a landscape pane
    fit = Compositor(grid(people(1), canvas, style=TileStyle(render=RenderMode.FIT))).compose(tall)
    fill = Compositor(grid(people(1), canvas, style=TileStyle(render=RenderMode.FILL))).compose(tall)
    # fit: a centred 102x180 column at x = 108..210 (source aspect 9:16), black bars around it
    assert close(rgb_at(fit, 160, 90), user_colour("u1"))
    assert close(rgb_at(fit, 5, 90), (0, 0, 0))
    assert close(rgb_at(fit, 314, 90), (0, 0, 0))
    assert close(rgb_at(fit, 104, 90), (0, 0, 0))
    assert close(rgb_at(fit, 112, 90), user_colour("u1"))
    assert close(rgb_at(fit, 206, 90), user_colour("u1"))
    assert close(rgb_at(fit, 214, 90), (0, 0, 0))
    # fill: the whole canvas
    assert close(rgb_at(fill, 5, 90), user_colour("u1"))
    assert close(rgb_at(fill, 314, 5), user_colour("u1"))


def test_fill_crops_the_centre() -> None:
    # left half u1 colour, right half u2 colour; a square pane with FILL shows the centre strip
    arr = np.empty((180, 320, 3), np.uint8)
    arr[:, :160] = user_colour("u1")
    arr[:, 160:] = user_colour("u2")
    frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
    layout = Layout(Canvas(180, 180), (Pane(Rect(0, 0, 180, 180), "u1", render=RenderMode.FILL),))
    out = Compositor(layout).compose({SourceKey("u1"): frame})
    # the 180-wide centre of the 320-wide source: 70..250, so the colour edge is at x = 90
    assert close(rgb_at(out, 80, 90), user_colour("u1"))
    assert close(rgb_at(out, 100, 90), user_colour("u2"))
    stretch = Layout(Canvas(180, 180), (Pane(Rect(0, 0, 180, 180), "u1", render=RenderMode.STRETCH),))
    out = Compositor(stretch).compose({SourceKey("u1"): frame})
    assert close(rgb_at(out, 5, 90), user_colour("u1"))
    assert close(rgb_at(out, 175, 90), user_colour("u2"))


def test_crop_rectangle() -> None:
    arr = np.empty((180, 320, 3), np.uint8)
    arr[:, :160] = user_colour("u1")
    arr[:, 160:] = user_colour("u2")
    frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
    pane = Pane(Rect(0, 0, 160, 90), "u1", render=RenderMode.STRETCH, crop=Crop(160, 0, 160, 180))
    out = Compositor(Layout(Canvas(160, 90), (pane,))).compose({SourceKey("u1"): frame})
    assert close(dominant_colour(out), user_colour("u2"))


def test_z_order_and_alpha() -> None:
    canvas = Canvas(320, 180)
    under = Pane(Rect(0, 0, 320, 180), "u1", z=0)
    over = Pane(Rect(100, 50, 100, 60), "u2", z=1)
    frames = user_frames()
    out = Compositor(Layout(canvas, (under, over))).compose(frames)
    assert close(rgb_at(out, 150, 80), user_colour("u2"))
    assert close(rgb_at(out, 20, 20), user_colour("u1"))
    # half-transparent top pane: the colours mix
    half = Pane(Rect(100, 50, 100, 60), "u2", z=1, alpha=0.5)
    out = Compositor(Layout(canvas, (under, half))).compose(frames)
    c1, c2, got = user_colour("u1"), user_colour("u2"), rgb_at(out, 150, 80)
    assert close(got, tuple((a + b) // 2 for a, b in zip(c1, c2, strict=True)), 16)  # type: ignore[arg-type]


def test_placeholders() -> None:
    canvas = Canvas(320, 180, background=Background(Color(0, 0, 255)))
    frames = user_frames()

    def layout(kind: PlaceholderKind) -> Layout:
        return Layout(canvas, (Pane(Rect(0, 0, 160, 180), "u1", placeholder=Placeholder(kind)),))

    # NONE: the canvas background shows through
    out = Compositor(layout(PlaceholderKind.NONE)).compose({})
    assert close(rgb_at(out, 80, 90), (0, 0, 255), 16)
    # BLACK
    out = Compositor(layout(PlaceholderKind.BLACK)).compose({})
    assert close(rgb_at(out, 80, 90), (0, 0, 0))
    # LAST_FRAME: black before any frame, then the last picture after the source is gone
    comp = Compositor(layout(PlaceholderKind.LAST_FRAME))
    assert close(rgb_at(comp.compose({}), 80, 90), (0, 0, 0))
    comp.compose({SourceKey("u1"): frames[SourceKey("u1")]})
    assert close(rgb_at(comp.compose({}), 80, 90), user_colour("u1"))
    # IMAGE without a picture: the built-in silhouette (grey, not the background)
    out = Compositor(layout(PlaceholderKind.IMAGE)).compose({})
    assert close(rgb_at(out, 3, 3), (43, 43, 46), 16)
    # IMAGE with a picture
    img = np.zeros((10, 10, 4), np.uint8)
    img[...] = (255, 255, 0, 255)
    lay = Layout(
        canvas,
        (Pane(Rect(0, 0, 160, 180), "u1", placeholder=Placeholder(PlaceholderKind.IMAGE, ImageRef("x"))),),
    )
    out = Compositor(lay, image_loader=lambda url: img).compose({})
    assert close(rgb_at(out, 80, 90), (255, 255, 0), 16)


def test_watermarks() -> None:
    logo = np.zeros((20, 40, 4), np.uint8)
    logo[...] = (255, 0, 0, 255)
    logo[:, 20:, 3] = 0  # right half transparent
    marks = (
        ImageWatermark(Rect(10, 10, 40, 20), ImageRef("logo.png")),
        TextWatermark(Rect(10, 100, 200, 24), "ROOMCAST 42", font_size=20, color=Color(255, 255, 255)),
        TimestampWatermark(Rect(10, 140, 400, 30), font_size=24, background=Color(0, 0, 0)),
    )
    canvas = Canvas(480, 180, background=Background(Color(0, 0, 255)), watermarks=marks)
    layout = grid(people(1), canvas)
    comp = Compositor(layout, image_loader=lambda url: logo)
    out = comp.compose(user_frames(), wallclock=1_600_000_000.0)
    colour = user_colour("u1")
    assert close(rgb_at(out, 20, 20), (255, 0, 0), 20)  # opaque logo half
    assert close(rgb_at(out, 40, 20), colour)  # transparent half: the pane shows
    y = frame_planes(out).y
    text = y[100:124, 10:210]
    assert (text > 200).sum() > 100  # white glyph pixels
    stamp = y[140:170, 10:410]
    assert (stamp > 200).sum() > 100 and (stamp < 30).sum() > 1000  # text on a black box
    # a new second: the timestamp changes, the rest does not
    later = frame_planes(comp.compose(user_frames(), wallclock=1_600_000_001.0)).y
    assert not np.array_equal(later[140:170, 10:410], stamp)
    assert np.array_equal(later[100:124, 10:210], text)


def test_layout_change_between_frames() -> None:
    frames = user_frames()
    comp = Compositor(grid(people(), Canvas(640, 360)))
    before = comp.compose(frames)
    assert nearest_user(dominant_colour(before, (0, 0, 320, 180)), USERS, 20) == "u1"
    comp.set_layout(floating(people(), Canvas(640, 360), main=MainSelector("u3")))
    after = comp.compose(frames)
    assert nearest_user(dominant_colour(after, (200, 20, 240, 160)), USERS, 20) == "u3"


def test_scaled_frame_is_reused_while_source_unchanged() -> None:
    frames = user_frames(640, 480)
    comp = Compositor(grid(people(), Canvas(640, 360)))
    a = frame_planes(comp.compose(frames)).y.copy()
    b = frame_planes(comp.compose(frames)).y.copy()
    assert np.array_equal(a, b)
    assert len(comp._scaled) == 4
