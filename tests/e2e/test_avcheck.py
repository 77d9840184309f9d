"""avcheck against real encoded files: the synthetic pattern through libx264/AAC into MP4, and
through aiortc's own WebRTC encoders. Each check is paired with a negative case so it can fail."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from roomcast.media.testpattern import (
    VIDEO_TIME_BASE,
    MediaClock,
    PatternAudioTrack,
    PatternVideoTrack,
    open_file_source,
    user_beep_hz,
)
from tests.support import avcheck

pytestmark = pytest.mark.e2e

USERS = ["u1", "u2", "u3", "u4"]
SECONDS = 3
W, H, FPS = 640, 360, 15


def write_mp4(
    path: Path,
    video: Callable[[int], av.VideoFrame],
    audio: Callable[[int], av.AudioFrame],
    *,
    width: int = W,
    height: int = H,
    fps: int = FPS,
    seconds: int = SECONDS,
) -> Path:
    """Encode ``seconds`` of frames (video(i), audio(i) for 20 ms audio frames) to H.264 + AAC."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.bit_rate = 600_000
        vs.options = {"preset": "veryfast"}  # B-frames on: pts != dts, as in real files
        aus = out.add_stream("aac", rate=48000)
        aus.layout = "stereo"
        for i in range(seconds * 50):
            out.mux(aus.encode(audio(i)))
        for i in range(seconds * fps):
            out.mux(vs.encode(video(i)))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    return path


def single_user(path: Path, user: str, *, audio_delay_ms: int = 0) -> Path:
    clock = MediaClock(time.time())
    video = PatternVideoTrack(user, width=W, height=H, fps=FPS, clock=clock, realtime=False)
    audio = PatternAudioTrack(user, clock=clock, realtime=False)
    delay_frames = audio_delay_ms // 20

    def audio_frame(i: int) -> av.AudioFrame:
        # the audio runs late: prepend silence, keep timestamps contiguous
        f = audio.render(i - delay_frames) if i >= delay_frames else _silence(i)
        f.pts = i * 960
        return f

    return write_mp4(path, video.render, audio_frame)


def _silence(i: int) -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="stereo")
    f.sample_rate, f.pts = 48000, i * 960
    return f


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("avcheck")
    return {
        "synced": single_user(d / "synced.mp4", "u3"),
        "late_audio": single_user(d / "late_audio.mp4", "u3", audio_delay_ms=200),
        "mixed": two_up(d / "mixed.mp4"),
    }


def two_up(path: Path) -> Path:
    """u1 (left) and u2 (right) side by side, audio mixed; u2's clock starts 400 ms later so
    their flashes and beeps are at different instants, and u2's audio is 120 ms late."""
    t = time.time()
    left = PatternVideoTrack("u1", width=W // 2, height=H, fps=FPS, clock=MediaClock(t), realtime=False)
    right = PatternVideoTrack("u2", width=W // 2, height=H, fps=FPS, realtime=False)
    a1 = PatternAudioTrack("u1", realtime=False)
    a2 = PatternAudioTrack("u2", realtime=False)
    phase_v = 6  # u2's video lags by 6 frames = 400 ms
    phase_a = 20 + 6  # u2's audio lags by 400 ms + 120 ms, in 20 ms frames

    def video(i: int) -> av.VideoFrame:
        canvas = av.VideoFrame(W, H, "yuv420p")
        for pane, src in ((0, left.render(i)), (1, right.render(i - phase_v) if i >= phase_v else None)):
            for k, plane in enumerate(canvas.planes):
                d = 1 if k == 0 else 2
                dst = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
                x0, w, h = pane * (W // 2) // d, (W // 2) // d, H // d
                if src is None:
                    dst[:h, x0 : x0 + w] = 16 if k == 0 else 128
                    continue
                sp = src.planes[k]
                dst[:h, x0 : x0 + w] = np.frombuffer(memoryview(sp), np.uint8).reshape(-1, sp.line_size)[
                    :h, :w
                ]
        canvas.pts = left.pts_of(i)
        canvas.time_base = VIDEO_TIME_BASE
        return canvas

    def audio(i: int) -> av.AudioFrame:
        mix = a1.render(i).to_ndarray().astype(np.int32)
        if i >= phase_a:
            mix += a2.render(i - phase_a).to_ndarray().astype(np.int32)
        f = av.AudioFrame.from_ndarray(
            np.clip(mix, -32768, 32767).astype(np.int16), format="s16", layout="stereo"
        )
        f.sample_rate, f.pts = 48000, i * 960
        return f

    return write_mp4(path, video, audio)


# -- probe, timestamps ---------------------------------------------------------------------------


def test_probe(files: dict[str, Path]) -> None:
    info = avcheck.probe(files["synced"])
    v, a = info.video, info.audio
    assert v is not None and a is not None
    assert (v.codec, v.width, v.height, v.pix_fmt) == ("h264", W, H, "yuv420p")
    assert v.fps == pytest.approx(FPS) and v.measured_fps == pytest.approx(FPS, rel=0.01)
    assert v.packets == SECONDS * FPS and v.keyframes >= 1
    assert v.duration == pytest.approx(SECONDS, abs=0.07)
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 2)
    assert a.duration == pytest.approx(SECONDS, abs=0.05)
    assert info.duration == pytest.approx(SECONDS, abs=0.05)


def test_timestamps_and_keyframe(files: dict[str, Path], tmp_path: Path) -> None:
    assert avcheck.is_monotonic(files["synced"]) and avcheck.timestamp_problems(files["mixed"]) == []
    assert avcheck.starts_with_keyframe(files["synced"])
    # negative: a stream cut after the first keyframe, muxed into MPEG-TS (which keeps it as is)
    cut = tmp_path / "cut.ts"
    with av.open(str(files["synced"])) as src, av.open(str(cut), "w", format="mpegts") as dst:
        ins = src.streams.video[0]
        outs = dst.add_stream_from_template(ins)
        for n, pkt in enumerate(src.demux(ins)):
            if n >= 3 and pkt.size:
                pkt.stream = outs
                dst.mux(pkt)
    assert not avcheck.starts_with_keyframe(cut)


# -- colours, flashes, beeps, sync ---------------------------------------------------------------


def test_user_colour_found(files: dict[str, Path]) -> None:
    quadrants = [(x, y, W // 2, H // 2) for y in (0, H // 2) for x in (0, W // 2)]
    assert avcheck.region_users(files["synced"], quadrants, USERS) == ["u3"] * 4
    halves = [(0, 0, W // 2, H), (W // 2, 0, W // 2, H)]
    assert avcheck.region_users(files["mixed"], halves, USERS, at=1.5) == ["u1", "u2"]
    # negative: the user isn't among the candidates
    assert avcheck.region_users(files["synced"], quadrants[:1], ["u1", "u2"]) == [None]
    with pytest.raises(ValueError):
        avcheck.nearest_user((0, 0, 0), ["u1", "u13"])  # same colour: ambiguous test setup


def test_flashes_found(files: dict[str, Path]) -> None:
    assert avcheck.flash_times(files["synced"]) == pytest.approx([0.0, 1.0, 2.0], abs=1 / FPS)
    left, right = (0, 0, W // 2, H), (W // 2, 0, W // 2, H)
    assert avcheck.flash_times(files["mixed"], left) == pytest.approx([0.0, 1.0, 2.0], abs=1 / FPS)
    assert avcheck.flash_times(files["mixed"], right) == pytest.approx([0.4, 1.4, 2.4], abs=1 / FPS)
    assert avcheck.flash_times(files["mixed"]) == []  # never the whole frame at once


def test_beeps_found(files: dict[str, Path]) -> None:
    found = avcheck.beeps(files["synced"])
    assert [b.time for b in found] == pytest.approx([0.0, 1.0, 2.0], abs=0.005)
    for b in found:
        assert b.freq_hz == pytest.approx(user_beep_hz("u3"), abs=2)
        assert b.duration == pytest.approx(0.1, abs=0.01)
    # several users mixed into one track: told apart by frequency
    u1 = avcheck.user_beeps(files["mixed"], "u1")
    u2 = avcheck.user_beeps(files["mixed"], "u2")
    assert [b.time for b in u1] == pytest.approx([0.0, 1.0, 2.0], abs=0.005)
    assert [b.time for b in u2] == pytest.approx([0.52, 1.52, 2.52], abs=0.005)
    assert avcheck.beeps(files["mixed"], 3000.0) == []


def test_av_offset_in_sync(files: dict[str, Path]) -> None:
    offsets = avcheck.av_offsets(files["synced"])
    assert len(offsets) == SECONDS
    assert max(abs(o) for o in offsets) < 40


def test_av_offset_detects_late_audio(files: dict[str, Path]) -> None:
    offsets = avcheck.av_offsets(files["late_audio"])
    assert len(offsets) == SECONDS
    assert offsets == pytest.approx([200.0] * SECONDS, abs=10)
    assert not max(abs(o) for o in offsets) < 40  # the sync check above would fail on this file


def test_av_offset_per_user_in_a_mix(files: dict[str, Path]) -> None:
    left, right = (0, 0, W // 2, H), (W // 2, 0, W // 2, H)
    u1 = avcheck.av_offsets(files["mixed"], region=left, user_id="u1")
    u2 = avcheck.av_offsets(files["mixed"], region=right, user_id="u2")
    assert u1 == pytest.approx([0.0] * 3, abs=10)
    assert u2 == pytest.approx([120.0] * 3, abs=10)


def test_frame_counter_read_back(files: dict[str, Path]) -> None:
    got = avcheck.counters(files["synced"])
    assert [t for t, _ in got] == pytest.approx([i / FPS for i in range(SECONDS * FPS)])
    assert [c for _, c in got] == [None if i % FPS == 0 else i for i in range(SECONDS * FPS)]
    right = avcheck.counters(files["mixed"], (W // 2, 0, W // 2, H))
    assert right[6][1] is None and right[20][1] == 20 - 6


# -- through aiortc's WebRTC encoders ------------------------------------------------------------


@pytest.mark.parametrize("mime", ["video/H264", "video/VP8"])
def test_pattern_survives_webrtc_encoders(mime: str) -> None:
    params: dict[str, int | str | None] = {}
    if mime == "video/H264":
        params = {"packetization-mode": "1", "profile-level-id": "42001f"}
    codec = RTCRtpCodecParameters(mimeType=mime, clockRate=90000, payloadType=96, parameters=params)
    encoder, decoder = get_encoder(codec), get_decoder(codec)
    encoder.target_bitrate = 1  # type: ignore[attr-defined]  # clamped to the encoder's minimum: the worst case after REMB
    track = PatternVideoTrack("u4", width=320, height=180, fps=15, realtime=False)
    flash: list[float] = []
    other: list[float] = []
    users: set[str | None] = set()
    counts: list[int | None] = []
    for i in range(30):
        payloads, timestamp = encoder.encode(track.render(i))
        data = b"".join(depayload(codec, p) for p in payloads)
        for frame in decoder.decode(JitterFrame(data=data, timestamp=timestamp)):
            assert isinstance(frame, av.VideoFrame)
            (flash if track.is_flash(i) else other).append(avcheck.whiteness(frame))
            if not track.is_flash(i):
                users.add(avcheck.nearest_user(avcheck.dominant_colour(frame), USERS))
                counts.append(avcheck.read_overlay(frame).counter)
    assert len(flash) == 2 and min(flash) > 0.95
    assert max(other) < 0.1
    assert users == {"u4"}
    assert counts == [i for i in range(30) if i % 15]


def test_file_source(files: dict[str, Path]) -> None:
    player = open_file_source(str(files["synced"]))
    assert player.video is not None and player.audio is not None
    assert player.video.kind == "video" and player.audio.kind == "audio"
    player.video.stop()
    player.audio.stop()
