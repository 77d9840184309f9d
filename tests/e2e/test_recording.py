"""Per-user recording end to end: synthetic publishers through the real SFU, files checked with PyAV.

Each test records a few seconds. A/V sync is measured from the test pattern's flashes and beeps.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from roomcast.domain.errors import LimitExceeded
from roomcast.domain.recording import (
    MediaSelection,
    OutputFormat,
    RecordingLimits,
    RecordingSpec,
    StreamSelection,
    UserFilter,
    UserSelection,
)
from roomcast.media.engine import RecordingEngine
from roomcast.media.outputs import FileInfo
from roomcast.media.sink import EndReason, FileCompleted, LocalSink, RecordingEnded, RecordingEvent
from roomcast.media.testpattern import SyntheticParticipant
from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import serve_sfu
from roomcast.rtc.track import TrackKind
from tests.support import avcheck

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "t"
APP = "app1"
ROOM = "r1"
MAX_AV_OFFSET_MS = 40.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sfu() -> AsyncIterator[tuple[RoomManager, str]]:
    manager = RoomManager(SfuConfig(empty_room_grace=10, stats_interval=0, min_keyframe_interval=0.2))
    async with serve_sfu(manager, StaticTokenAuthenticator(TOKEN)) as url:
        yield manager, url


async def publish(url: str, user: str, codec: str = "video/H264") -> RoomClient:
    p = SyntheticParticipant(user)
    c = RoomClient(url, app_id=APP, room_id=ROOM, user_id=user, token=TOKEN)
    await c.connect()
    await c.publish({TrackKind.AUDIO: p.audio, TrackKind.CAMERA: p.video}, video_codecs=(codec,))
    return c


def spec(**kw: object) -> RecordingSpec:
    base: dict[str, object] = {"outputs": (OutputFormat.MP4,), "streams": StreamSelection(screen=False)}
    base.update(kw)
    return RecordingSpec(**base)  # type: ignore[arg-type]


def check_video_file(
    path: Path, *, codec: str = "h264", audio: str | None = "aac", gap: bool = False
) -> avcheck.ProbeInfo:
    p = avcheck.probe(path)
    assert p.video is not None and p.video.codec == codec, p
    assert p.video.width == 640 and p.video.height == 360
    if not gap:  # (a held frame during a gap lowers the average rate)
        assert p.video.measured_fps is not None and abs(p.video.measured_fps - 15) < 1.5, p.video
    if audio is not None:
        assert p.audio is not None and p.audio.codec == audio, p
        assert p.audio.sample_rate == 48000
        assert p.audio.duration is not None and p.video.duration is not None
        assert abs(p.audio.duration - p.video.duration) < 0.5
    assert avcheck.starts_with_keyframe(path)
    assert avcheck.timestamp_problems(path) == []
    return p


def check_sync(path: Path, min_pairs: int = 2) -> list[float]:
    offsets = avcheck.av_offsets(path)
    assert len(offsets) >= min_pairs, offsets
    assert max(abs(o) for o in offsets) <= MAX_AV_OFFSET_MS, offsets
    return offsets


def files_of(ended: RecordingEnded, user: str, fmt: OutputFormat = OutputFormat.MP4) -> list[FileInfo]:
    return sorted((f for f in ended.files if f.user_id == user and f.format is fmt), key=lambda f: f.index)


async def test_mp4_h264_copy_with_aac(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    events: list[RecordingEvent] = []
    sink = LocalSink()
    c = await publish(url, "u1")
    try:
        t0 = time.monotonic()
        await engine.start("task1", APP, ROOM, spec(), sink=sink, listener=events.append)
        await asyncio.sleep(4.5)
        elapsed = time.monotonic() - t0
        ended = await engine.stop("task1")
    finally:
        await c.close()
        await engine.close()
    assert ended.reason is EndReason.STOPPED, ended.error
    [info] = files_of(ended, "u1")
    assert info.path.name.endswith("_0.mp4") and info.stream == "camera" and info.media == "av"
    assert (info.width, info.height) == (640, 360)
    p = check_video_file(info.path)
    assert p.duration is not None and abs(p.duration - (elapsed - info.start_offset)) < 0.5
    assert abs(info.duration - p.duration) < 0.5
    assert p.video is not None and p.video.profile == "Constrained Baseline"  # copied, not re-encoded
    check_sync(info.path)
    # finalized: a normal moov before the media (faststart), no fragments
    head = info.path.read_bytes()[:4096]
    assert b"moov" in head and b"moof" not in info.path.read_bytes()
    # sink saw it and the listener heard about it after the sink
    assert [f.key for f in sink.completed] == [info.key]
    assert any(isinstance(e, FileCompleted) and e.info.key == info.key for e in events)
    assert isinstance(events[-1], RecordingEnded)


async def test_hls_segments_and_playlist(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    sink = LocalSink()
    c = await publish(url, "u1")
    try:
        s = spec(outputs=(OutputFormat.HLS,), limits=RecordingLimits(hls_segment_duration=2.0))
        await engine.start("hls1", APP, ROOM, s, sink=sink)
        await asyncio.sleep(6.0)
        ended = await engine.stop("hls1")
    finally:
        await c.close()
        await engine.close()
    [info] = files_of(ended, "u1", OutputFormat.HLS)
    text = info.path.read_text()
    assert text.startswith("#EXTM3U") and text.rstrip().endswith("#EXT-X-ENDLIST")
    segs = [line for line in text.splitlines() if line.endswith(".ts")]
    assert len(segs) >= 2 and len(set(segs)) == len(segs)
    durations = [float(line[8:].rstrip(",")) for line in text.splitlines() if line.startswith("#EXTINF:")]
    assert all(1.9 <= d <= 2.8 for d in durations[:-1]), durations
    assert abs(sum(durations) - info.duration) < 0.5
    # every segment was handed to the sink, followed by the playlist
    ts_calls = [s for s in sink.segments if s[2] == "video/mp2t"]
    assert [k for _, k, _, _ in ts_calls] == list(info.segments)
    assert sum(1 for s in sink.segments if s[2] == "application/vnd.apple.mpegurl") == len(ts_calls)
    for name in segs:
        seg = info.path.with_name(name)
        assert avcheck.starts_with_keyframe(seg)
    p = avcheck.probe(info.path)  # the playlist, through FFmpeg's HLS demuxer
    assert p.video is not None and p.video.codec == "h264" and p.audio is not None and p.audio.codec == "aac"
    assert p.duration is not None and abs(p.duration - info.duration) < 0.5
    check_sync(info.path)


async def test_late_joiner_and_rejoin_stay_in_sync(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    c1 = await publish(url, "u1")
    c2: RoomClient | None = None
    try:
        await engine.start("sync1", APP, ROOM, spec(limits=RecordingLimits(idle_timeout=10)))
        await asyncio.sleep(2.2)
        await c1.close()  # u1 leaves ...
        await asyncio.sleep(0.8)
        c2 = await publish(url, "u2")  # ... u2 joins 3 s late ...
        await asyncio.sleep(1.0)
        c1 = await publish(url, "u1")  # ... and u1 comes back
        await asyncio.sleep(3.0)
        ended = await engine.stop("sync1")
    finally:
        await c1.close()
        if c2 is not None:
            await c2.close()
        await engine.close()
    assert ended.reason is EndReason.STOPPED, ended.error
    [late] = files_of(ended, "u2")
    assert 2.5 < late.start_offset < 4.0
    p = check_video_file(late.path)
    assert p.duration is not None and abs(p.duration - 4.0) < 0.6
    check_sync(late.path)
    [back] = files_of(ended, "u1")  # one continuous file across the leave
    p = check_video_file(back.path, gap=True)
    assert p.duration is not None and p.duration > 6.0
    offsets = check_sync(back.path, min_pairs=4)
    flashes = avcheck.flash_times(back.path)
    assert any(f < 2.2 for f in flashes) and any(f > 4.5 for f in flashes), flashes
    assert len(offsets) >= 4


def test_sigkill_leaves_a_playable_fragmented_mp4(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.record_child", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line.startswith("STARTED"):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "recorder exited"
        path = Path(line.split(" ", 1)[1].strip())
        time.sleep(4.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.exists() and path.stat().st_size > 10_000
    assert b"moof" in path.read_bytes()  # still the fragmented form
    p = avcheck.probe(path)
    assert p.video is not None and p.video.codec == "h264" and p.audio is not None
    assert p.video.duration is not None and p.video.duration > 2.0
    with av.open(str(path)) as f:
        frames = sum(1 for _ in f.decode(video=0))
    assert frames > 30
    assert avcheck.starts_with_keyframe(path)
    assert avcheck.timestamp_problems(path) == []


async def test_idle_timeout_and_no_stream(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    try:
        empty = await engine.start("none", APP, "empty-room", spec(limits=RecordingLimits(start_timeout=0.6)))
        c = await publish(url, "u1")
        job = await engine.start("idle", APP, ROOM, spec(limits=RecordingLimits(idle_timeout=1.0)))
        await asyncio.sleep(2.0)
        await c.close()
        ended = await asyncio.wait_for(job.wait(), 10)
        nothing = await asyncio.wait_for(empty.wait(), 5)
    finally:
        await engine.close()
    assert nothing.reason is EndReason.NO_STREAM and nothing.files == ()
    assert ended.reason is EndReason.IDLE
    [info] = files_of(ended, "u1")
    assert 1.2 < info.duration < 2.8
    check_video_file(info.path)
    assert "idle" not in engine.jobs


async def test_split_at_max_file_duration(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    c = await publish(url, "u1")
    try:
        s = spec(outputs=(OutputFormat.MP4, OutputFormat.M4A), limits=RecordingLimits(max_file_duration=2.0))
        await engine.start("split", APP, ROOM, s)
        await asyncio.sleep(5.5)
        ended = await engine.stop("split")
    finally:
        await c.close()
        await engine.close()
    parts = files_of(ended, "u1")
    assert [f.index for f in parts] == list(range(len(parts))) and len(parts) >= 2
    for f in parts[:-1]:
        assert 1.9 <= f.duration <= 2.8, f
        check_video_file(f.path)
    for a, b in itertools.pairwise(parts):
        assert abs(b.start_offset - (a.start_offset + a.duration)) < 0.15
    audio = files_of(ended, "u1", OutputFormat.M4A)
    assert len(audio) >= 2 and all(f.path.suffix == ".m4a" for f in audio)
    pa = avcheck.probe(audio[0].path)
    assert pa.audio is not None and pa.audio.codec == "aac" and pa.video is None


async def test_vp8_publisher_to_h264_mp4_and_webm(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    c = await publish(url, "u1", codec="video/VP8")
    try:
        await engine.start("vp8", APP, ROOM, spec(outputs=(OutputFormat.MP4, OutputFormat.WEBM)))
        await asyncio.sleep(4.5)
        ended = await engine.stop("vp8")
    finally:
        await c.close()
        await engine.close()
    [mp4] = files_of(ended, "u1")
    check_video_file(mp4.path)
    check_sync(mp4.path)
    [webm] = files_of(ended, "u1", OutputFormat.WEBM)
    assert webm.path.suffix == ".webm"
    check_video_file(webm.path, codec="vp8", audio="opus")
    check_sync(webm.path)


async def test_audio_only_m4a_and_mp3(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    c = await publish(url, "u1")
    try:
        s = spec(media=MediaSelection.AUDIO_ONLY, outputs=(OutputFormat.M4A, OutputFormat.MP3))
        await engine.start("aud", APP, ROOM, s)
        await asyncio.sleep(3.5)
        ended = await engine.stop("aud")
    finally:
        await c.close()
        await engine.close()
    [m4a] = files_of(ended, "u1", OutputFormat.M4A)
    [mp3] = files_of(ended, "u1", OutputFormat.MP3)
    for f, codec in ((m4a, "aac"), (mp3, "mp3")):
        p = avcheck.probe(f.path)
        assert p.video is None and p.audio is not None and p.audio.codec.startswith(codec), p
        assert p.audio.duration is not None and abs(p.audio.duration - f.duration) < 0.5
        assert f.stream == "audio" and f.media == "audio"
        beeps = avcheck.beep_times(f.path)
        assert len(beeps) >= 2
        gaps = [b - a for a, b in itertools.pairwise(beeps)]
        assert all(abs(g - 1.0) < 0.03 for g in gaps), gaps


async def test_admission_control_refuses_when_full(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    c = await publish(url, "u1")
    one = RecordingEngine(manager, tmp_path).estimate(APP, ROOM, spec())
    engine = RecordingEngine(manager, tmp_path, capacity=1.5 * one)
    try:
        first = await engine.start("a1", APP, ROOM, spec())
        assert abs(engine.committed() - one) < 1e-9
        with pytest.raises(LimitExceeded) as err:
            await engine.start("a2", APP, ROOM, spec())
        assert err.value.subject == "recording"
        await first.stop()
    finally:
        await c.close()
        await engine.close()


async def test_screen_share_and_separate_audio_video_files(
    sfu: tuple[RoomManager, str], tmp_path: Path
) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    p = SyntheticParticipant("u1")
    c = RoomClient(url, app_id=APP, room_id=ROOM, user_id="u1", token=TOKEN)
    await c.connect()
    await c.publish(
        {TrackKind.AUDIO: p.audio, TrackKind.CAMERA: p.video, TrackKind.SCREEN: p.screen_track(fps=5)},
        video_codecs=("video/H264",),
    )
    try:
        await engine.start("sep", APP, ROOM, RecordingSpec(outputs=(OutputFormat.MP4,), separate_files=True))
        await asyncio.sleep(4.0)
        ended = await engine.stop("sep")
    finally:
        await c.close()
        await engine.close()
    kinds = sorted((f.stream, f.media) for f in ended.files)
    assert kinds == [("camera", "audio"), ("camera", "video"), ("screen", "video")]
    by = {(f.stream, f.media): f for f in ended.files}
    screen = avcheck.probe(by["screen", "video"].path)
    assert screen.audio is None and screen.video is not None
    assert (screen.video.width, screen.video.height) == (1280, 720)
    cam = avcheck.probe(by["camera", "video"].path)
    assert cam.audio is None and cam.video is not None and cam.video.width == 640
    aud = avcheck.probe(by["camera", "audio"].path)
    assert aud.video is None and aud.audio is not None and aud.audio.codec == "aac"
    # the separate files share the room clock: the flashes and beeps still line up
    flashes = [
        by["camera", "video"].start_offset + t for t in avcheck.flash_times(by["camera", "video"].path)
    ]
    beeps = [by["camera", "audio"].start_offset + t for t in avcheck.beep_times(by["camera", "audio"].path)]
    offsets = avcheck.pair_offsets(flashes, beeps)
    assert len(offsets) >= 2 and max(abs(o) for o in offsets) <= MAX_AV_OFFSET_MS, offsets


async def test_user_list_changes_while_running(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    c1 = await publish(url, "u1")
    c2 = await publish(url, "u2")
    try:
        await engine.start("upd", APP, ROOM, spec(users=UserSelection.same(allow=["u1"])))
        await asyncio.sleep(2.0)
        await engine.update("upd", users=UserSelection.same(allow=["u1", "u2"]))
        await asyncio.sleep(2.0)
        await engine.update("upd", users=UserSelection(audio=UserFilter.of(["u2"]), video=UserFilter.of()))
        await asyncio.sleep(2.0)
        ended = await engine.stop("upd")
    finally:
        await c1.close()
        await c2.close()
        await engine.close()
    u1 = files_of(ended, "u1")
    u2 = files_of(ended, "u2")
    # u1: recorded with audio until the second update, then as a new video-only file
    assert [f.index for f in u1] == [0, 1] and [f.media for f in u1] == ["av", "video"]
    assert 3.2 < u1[0].duration < 4.6 and 1.4 < u1[1].duration < 2.6
    assert avcheck.probe(u1[1].path).audio is None
    # u2: admitted 2 s in, recorded to the end in one file
    [f2] = u2
    assert 1.6 < f2.start_offset < 2.8 and 3.2 < f2.duration < 4.6
    check_video_file(f2.path)


async def test_audio_first_then_camera(sfu: tuple[RoomManager, str], tmp_path: Path) -> None:
    """A user with only a microphone gets an audio-only file from the start; when the camera
    comes, the next file holds audio and video."""
    manager, url = sfu
    engine = RecordingEngine(manager, tmp_path)
    p = SyntheticParticipant("u1")
    c = RoomClient(url, app_id=APP, room_id=ROOM, user_id="u1", token=TOKEN)
    await c.connect()
    try:
        await c.publish({TrackKind.AUDIO: p.audio})
        await engine.start("mic", APP, ROOM, spec())
        await asyncio.sleep(4.0)
        await c.publish({TrackKind.CAMERA: p.video}, video_codecs=("video/H264",))
        await asyncio.sleep(3.5)
        ended = await engine.stop("mic")
    finally:
        await c.close()
        await engine.close()
    first, second = files_of(ended, "u1")
    assert (first.index, first.media, second.index, second.media) == (0, "audio", 1, "av")
    assert first.start_offset < 0.5 and first.duration > 3.5
    pa = avcheck.probe(first.path)
    assert pa.video is None and pa.audio is not None and pa.audio.codec == "aac"
    check_video_file(second.path)
    check_sync(second.path)
