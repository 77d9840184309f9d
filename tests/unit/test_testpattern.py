"""Synthetic participant tracks: identity, picture, flashes, beeps, timestamps and pacing."""

from __future__ import annotations

import calendar
import itertools
import math
import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from roomcast.media.testpattern import (
    AUDIO_SAMPLE_RATE,
    AUDIO_TIME_BASE,
    BEEP_FREQUENCIES,
    PALETTE,
    VIDEO_TIME_BASE,
    MediaClock,
    PatternAudioTrack,
    PatternVideoTrack,
    SevenSegmentFont,
    SyntheticParticipant,
    rgb_to_yuv,
    user_beep_hz,
    user_colour,
    user_index,
)
from tests.support import avcheck

USERS = [f"u{i}" for i in range(1, 13)]


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    out = []
    for i, p in enumerate(frame.planes):
        h = frame.height if i == 0 else frame.height // 2
        w = frame.width if i == 0 else frame.width // 2
        out.append(np.frombuffer(memoryview(p), np.uint8).reshape(-1, p.line_size)[:h, :w].copy())
    return out


# -- identity ------------------------------------------------------------------------------------


def test_palette_is_saturated_and_well_separated() -> None:
    assert len(PALETTE) == 12
    for rgb in PALETTE:
        assert max(rgb) - min(rgb) >= 150, f"{rgb} is too grey"
        assert min(rgb) <= 40 and max(rgb) <= 220, f"{rgb} is too close to white"
    for a, b in itertools.combinations(PALETTE, 2):
        assert math.dist(a, b) >= 80, (a, b)


def test_user_colours_and_beeps_are_deterministic_and_distinct() -> None:
    assert [user_colour(u) for u in USERS] == list(PALETTE)
    assert [user_beep_hz(u) for u in USERS] == list(BEEP_FREQUENCIES)
    assert user_colour("u13") == user_colour("u1")  # numbered ids wrap around the palette
    assert user_colour("alice") == user_colour("alice")
    assert user_index("alice") == user_index("alice") and 0 <= user_index("alice") < 12
    assert user_index("user_7") == user_index("7") == 6
    freqs = sorted(BEEP_FREQUENCIES)
    assert freqs[0] >= 400 and freqs[-1] <= 2000
    assert min(b - a for a, b in itertools.pairwise(freqs)) >= 60


def test_rgb_to_yuv_matches_ffmpeg() -> None:
    for rgb in (*PALETTE, (255, 255, 255), (0, 0, 0)):
        frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), rgb, np.uint8), format="rgb24")
        y, u, v = planes(frame.reformat(format="yuv420p"))
        assert np.allclose((y.mean(), u.mean(), v.mean()), rgb_to_yuv(rgb), atol=1.5)


# -- video -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("w", "h", "fps"), [(640, 360, 15), (1280, 720, 30), (320, 240, 24)])
def test_video_frame_basics(w: int, h: int, fps: int) -> None:
    track = PatternVideoTrack("u2", width=w, height=h, fps=fps, realtime=False)
    frame = track.render(3)
    assert (frame.width, frame.height, frame.format.name) == (w, h, "yuv420p")
    assert frame.time_base == VIDEO_TIME_BASE
    assert frame.pts == 3 * 90000 // fps
    rgb = frame.to_ndarray(format="rgb24")
    assert np.abs(rgb[h * 3 // 4, w // 2].astype(int) - user_colour("u2")).max() <= 3
    assert avcheck.nearest_user(avcheck.dominant_colour(frame), USERS) == "u2"


@pytest.mark.parametrize("fps", [5, 15, 30])
def test_flash_at_each_whole_second(fps: int) -> None:
    track = PatternVideoTrack("u1", width=160, height=90, fps=fps, realtime=False)
    flashes = []
    for i in range(3 * fps + 1):
        frame = track.render(i)
        y, u, v = planes(frame)
        white = bool((y == 235).all() and (u == 128).all() and (v == 128).all())
        assert white == (avcheck.whiteness(frame) > 0.99)
        if white:
            flashes.append(frame.pts)
    assert flashes == [0, 90000, 180000, 270000]


def test_digits_render_the_clock_and_counter() -> None:
    start = calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0)) + 0.678
    track = PatternVideoTrack("u3", fps=15, clock=MediaClock(start), realtime=False)
    assert track.clock_text(0) == "03:04:05.678"
    assert track.clock_text(15 + 5) == "03:04:07.011"
    assert track.counter_text(123) == "000123"

    frame = track.render(123)
    y = planes(frame)[0]
    lay, font = track.layout, track.font
    mask = font.render("000123")
    got = y[lay.counter_y : lay.counter_y + font.height, lay.counter_x : lay.counter_x + mask.shape[1]]
    assert np.array_equal(got == 235, mask)
    assert np.array_equal(got[~mask], np.full((~mask).sum(), 16, np.uint8))
    assert avcheck.read_overlay(frame) == avcheck.Overlay(clock="03:04:13.878", counter=123)


def test_only_the_digits_change_between_frames() -> None:
    track = PatternVideoTrack("u4", realtime=False)
    a, b = planes(track.render(1)), planes(track.render(2))
    bx, by, bw, bh = track.layout.box
    diff = a[0] != b[0]
    assert diff.any()
    rows, cols = np.nonzero(diff)
    assert rows.min() >= by and rows.max() < by + bh and cols.min() >= bx and cols.max() < bx + bw
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_seven_segment_font() -> None:
    font = SevenSegmentFont(21)
    assert font.render("8").sum() > font.render("1").sum() > 0
    assert font.render("12:34.5").shape == (21, font.text_width("12:34.5"))
    with pytest.raises(ValueError):
        SevenSegmentFont(5)


def test_screen_variant_looks_different_but_keeps_the_user_colour() -> None:
    cam = PatternVideoTrack("u5", width=1280, height=720, realtime=False).render(1)
    scr = PatternVideoTrack("u5", width=1280, height=720, screen=True, realtime=False).render(1)
    assert not np.array_equal(planes(cam)[0], planes(scr)[0])
    assert avcheck.nearest_user(avcheck.dominant_colour(scr), USERS) == "u5"
    assert avcheck.whiteness(scr) < 0.05


def test_tiny_frames_render() -> None:
    track = PatternVideoTrack("u6", width=16, height=16, fps=1, realtime=False)
    assert track.render(1).width == 16
    with pytest.raises(ValueError):
        PatternVideoTrack("u6", width=15, height=16)


# -- audio -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_audio_frames_for_opus(layout: str) -> None:
    track = PatternAudioTrack("u1", layout=layout, realtime=False)  # type: ignore[arg-type]
    frames = [track.render(i) for i in range(3)]
    for i, f in enumerate(frames):
        assert (f.format.name, f.layout.name, f.samples, f.sample_rate) == ("s16", layout, 960, 48000)
        assert f.pts == i * 960 and f.time_base == AUDIO_TIME_BASE


@pytest.mark.parametrize("user", ["u1", "u2", "u7", "alice"])
def test_beep_frequency_and_instant(user: str) -> None:
    track = PatternAudioTrack(user, layout="stereo", realtime=False)
    pcm = np.concatenate([track.render(i).to_ndarray().reshape(-1, 2) for i in range(100)])  # 2 s
    assert np.array_equal(pcm[:, 0], pcm[:, 1])
    x = pcm[:, 0].astype(np.float64) / 32767
    nonzero = np.flatnonzero(x)
    for k in (0, 1):
        s0 = k * AUDIO_SAMPLE_RATE
        beep = nonzero[(nonzero >= s0) & (nonzero < s0 + AUDIO_SAMPLE_RATE)]
        # starts at the whole second (the 2 ms ramp starts from 0), lasts 100 ms, then silence
        assert s0 < beep[0] <= s0 + 5 and s0 + 4790 < beep[-1] < s0 + 4800
        assert np.abs(x[s0 + 200 : s0 + 4600]).max() == pytest.approx(0.3, abs=0.01)
        seg = x[s0 : s0 + 4800]
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), 48000))
        assert int(spec.argmax()) == user_beep_hz(user)  # 1 Hz bins


# -- tracks: shared clock, timestamps, pacing ------------------------------------------------------


async def test_video_pts_monotonic_and_paced() -> None:
    track = PatternVideoTrack("u1", width=160, height=90, fps=30)
    t0 = time.monotonic()
    pts = [(await track.recv()).pts for _ in range(10)]
    elapsed = time.monotonic() - t0
    assert pts == [i * 3000 for i in range(10)]
    assert 9 / 30 - 0.02 <= elapsed < 2.0  # paced in real time, not as fast as possible
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_audio_paced_and_unpaced() -> None:
    track = PatternAudioTrack("u1")
    t0 = time.monotonic()
    pts = [(await track.recv()).pts for _ in range(11)]
    assert pts == [i * 960 for i in range(11)]
    assert time.monotonic() - t0 >= 0.18
    fast = PatternAudioTrack("u1", realtime=False)
    t0 = time.monotonic()
    for _ in range(200):  # 4 s of audio
        await fast.recv()
    assert time.monotonic() - t0 < 1.0


async def test_participant_tracks_share_one_clock() -> None:
    p = SyntheticParticipant("u3", width=160, height=90, fps=15)
    a = await p.audio.recv()
    v = await p.video.recv()
    assert p.audio.clock is p.video.clock and p.clock.start is not None
    assert a.pts == 0 and v.pts == 0  # both start at media time 0: flash and beep together
    scr = p.screen_track(width=320, height=180, fps=5)
    assert scr.clock is p.clock
    p.stop()
    assert p.video.readyState == p.audio.readyState == scr.readyState == "ended"


async def test_late_track_joins_the_shared_clock() -> None:
    clock = MediaClock(time.time() - 1.5)
    video = PatternVideoTrack("u1", width=160, height=90, fps=15, clock=clock)
    audio = PatternAudioTrack("u1", clock=clock)
    v, a = await video.recv(), await audio.recv()
    assert v.pts is not None and a.pts is not None
    assert v.pts / 90000 == pytest.approx(1.5, abs=0.1)
    assert a.pts / 48000 == pytest.approx(1.5, abs=0.1)
    # the next flash and the next beep are at the same media instant (2 s)
    assert video.is_flash(30) and video.pts_of(30) / 90000 == 2.0
    assert audio.pts_of(100) / 48000 == 2.0
