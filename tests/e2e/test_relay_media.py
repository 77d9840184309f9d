"""Relay media against a real nginx-rtmp on loopback, fed by an in-process source: a copied stream
arrives bit-exact, one dead or stalled destination does not hold back the others, a relay with
no publisher ends by its idle rule."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from roomcast.domain.recording import MediaSelection, RecordingMode, RecordingSpec, VideoEncoding
from roomcast.domain.relay import RelaySource, RelaySpec, SingleStream
from roomcast.media.mixed import VideoEncoder
from roomcast.media.outputs import VIDEO_TIME_BASE, AudioParams
from roomcast.media.relay import RelayJob
from roomcast.media.rtmp import PushState, RtmpFanout
from roomcast.media.sei import iter_nals
from roomcast.rtc.track import MediaPacket, TrackInfo, TrackKind
from tests.support import avcheck
from tests.support.live import free_port
from tests.support.rtmp import RtmpServer, avcc_nals, capture, rtmp_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def rtmp() -> Iterator[RtmpServer]:
    with rtmp_server() as srv:
        yield srv


def red_frame(k: int, width: int = 320, height: int = 180) -> av.VideoFrame:
    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 0] = 200
    img[:, : (k * 4) % width, 1] = 120  # moving content: every frame differs
    frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = k * 6000, VIDEO_TIME_BASE
    return frame


class _Sub:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[MediaPacket] = asyncio.Queue()
        self.keyframes_asked = 0

    async def recv(self) -> MediaPacket:
        return await self.queue.get()

    def request_keyframe(self) -> None:
        self.keyframes_asked += 1

    def close(self) -> None:
        pass


class FakeSource:
    """One publisher's H.264 camera, encoded here at 15 fps, as the SFU would deliver it."""

    def __init__(self, user: str = "u1", codec: str = "video/H264") -> None:
        self.info = TrackInfo("app", "room", user, TrackKind.CAMERA, codec)
        self.subs: list[_Sub] = []
        self.sent: list[bytes] = []
        self.publishing = True

    def list_tracks(self, app_key: str, room_id: str) -> list[TrackInfo]:
        return [self.info] if self.publishing else []

    def subscribe_track(self, app_key: str, room_id: str, user_id: str, kind: TrackKind, **_: Any) -> _Sub:
        sub = _Sub()
        self.subs.append(sub)
        return sub

    async def feed(self, seconds: float) -> None:
        enc = (
            VideoEncoder(320, 180, 15, 400, gop=1.0, preset="ultrafast")
            if "264" in self.info.codec
            else VP8()
        )
        start = time.monotonic()
        for k in range(round(seconds * 15)):
            await asyncio.sleep(max(0.0, start + k / 15 - time.monotonic()))
            for p in enc.encode(red_frame(k), keyframe=k == 0):
                self.sent.append(p.data)
                pkt = av.Packet(p.data)
                mp = MediaPacket(
                    pkt, self.info, p.pts, Fraction(1, 90000), time.monotonic(), time.time(), p.keyframe
                )
                for s in self.subs:
                    s.queue.put_nowait(mp)


class VP8:
    """What a browser publishing VP8 sends."""

    def __init__(self) -> None:
        cc: Any = av.CodecContext.create("libvpx", "w")
        cc.width, cc.height, cc.pix_fmt = 320, 180, "yuv420p"
        cc.time_base = VIDEO_TIME_BASE
        cc.bit_rate = 400_000
        cc.options = {"deadline": "realtime", "cpu-used": "8"}
        cc.open()
        self.cc = cc

    def encode(self, frame: av.VideoFrame, *, keyframe: bool = False) -> list[Any]:
        return [
            type("P", (), {"data": bytes(p), "pts": int(p.pts), "keyframe": bool(p.is_keyframe)})()
            for p in self.cc.encode(frame)
        ]


def annexb_nals(au: bytes) -> tuple[bytes, ...]:
    out = []
    marks = list(iter_nals(au))
    for i, (_, h) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(au)
        out.append(au[h:end])
    return tuple(out)


async def test_single_stream_is_copied_bit_exact(rtmp: RtmpServer, tmp_path: Path) -> None:
    source = FakeSource()
    spec = RelaySpec(
        source=RelaySource.SINGLE,
        mix=RecordingSpec(
            mode=RecordingMode.MIXED, media=MediaSelection.VIDEO_ONLY, video=VideoEncoding(320, 180)
        ),
        single=SingleStream("u1"),
        outputs=(rtmp.url("copy"),),
    )
    job = RelayJob("t-copy", "app", "room", spec, source)
    await job.start()
    feeder = asyncio.create_task(source.feed(6.0))
    await asyncio.sleep(1.0)
    packets = await asyncio.to_thread(capture, rtmp.url("copy"), tmp_path / "copy.mkv", seconds=3.0)
    await feeder
    ended = await job.stop()
    assert ended.reason == "stopped"
    sent = {annexb_nals(d) for d in source.sent}
    relayed = [tuple(avcc_nals(d)) for _, d, _ in packets]
    assert len(relayed) >= 40
    assert all(r in sent for r in relayed), "every relayed access unit is a publisher's, byte for byte"


async def test_a_vp8_publisher_is_relayed_as_h264(rtmp: RtmpServer, tmp_path: Path) -> None:
    source = FakeSource(codec="video/VP8")
    spec = RelaySpec(
        source=RelaySource.SINGLE,
        mix=RecordingSpec(
            mode=RecordingMode.MIXED, media=MediaSelection.VIDEO_ONLY, video=VideoEncoding(320, 180, fps=15)
        ),
        single=SingleStream("u1"),
        outputs=(rtmp.url("vp8"),),
    )
    job = RelayJob("t-vp8", "app", "room", spec, source)
    await job.start()
    feeder = asyncio.create_task(source.feed(5.0))
    await asyncio.sleep(1.5)
    path = tmp_path / "vp8.mkv"
    packets = await asyncio.to_thread(capture, rtmp.url("vp8"), path, seconds=2.0)
    await feeder
    await job.stop()
    info = avcheck.probe(path)
    assert (
        info.video is not None
        and info.video.codec == "h264"
        and (info.video.width, info.video.height) == (320, 180)
    )
    assert len(packets) >= 20
    r, _g, b = avcheck.dominant_colour(avcheck.frame_at(path, 1.0), (0, 0, 40, 180))
    assert r > 150 and b < 80  # the publisher's red (its green bar moves)


async def test_a_dead_or_stalled_destination_does_not_hold_back_the_others(
    rtmp: RtmpServer, tmp_path: Path
) -> None:
    # A server that accepts and then never reads: its pushes fill the socket and stall.
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(4)
    stall_url = f"rtmp://127.0.0.1:{stall.getsockname()[1]}/live/stalled"
    dead_url = f"rtmp://127.0.0.1:{free_port()}/live/dead"
    good = rtmp.url("good")
    enc = VideoEncoder(320, 180, 15, 800, gop=1.0, preset="ultrafast")
    fan = RtmpFanout(
        [good, dead_url, stall_url],
        enc.params,
        None,
        queue_packets=30,
        backoff=(0.2, 1.0),
        io_timeout=1.5,
    )
    slowest = 0.0
    got: dict[str, Any] = {}

    def read() -> None:
        got["packets"] = capture(good, tmp_path / "good.mkv", seconds=3.0)

    reader = threading.Thread(target=read)
    try:
        start = time.monotonic()
        for k in range(90):
            await asyncio.sleep(max(0.0, start + k / 15 - time.monotonic()))
            if k == 10:
                reader.start()
            encoded = enc.encode(red_frame(k), keyframe=fan.wants_keyframe or k == 0)
            t0 = time.perf_counter()  # only the hand-over to the destinations is timed
            for p in encoded:
                fan.write(p)
            slowest = max(slowest, time.perf_counter() - t0)
        await asyncio.to_thread(reader.join, 10)
        states = fan.states()
        dead, stalled = fan.pushes[dead_url], fan.pushes[stall_url]
    finally:
        await asyncio.to_thread(fan.close)
        stall.close()
    assert slowest < 0.1, "writing never waits for a destination"
    packets = got["packets"]
    span = packets[-1][0] - packets[0][0]
    assert span >= 2.5 and len(packets) / span > 11, "the good destination gets the full rate (15 fps)"
    assert states[good] == PushState.CONNECTED and fan.pushes[good].stats.dropped == 0
    assert dead.stats.failures >= 2
    assert stalled.stats.dropped > 0 or stalled.stats.failures > 0


async def test_relay_without_publishers_ends_when_idle() -> None:
    source = FakeSource()
    source.publishing = False
    spec = RelaySpec(
        source=RelaySource.SINGLE,
        mix=RecordingSpec(
            mode=RecordingMode.MIXED, media=MediaSelection.VIDEO_ONLY, video=VideoEncoding(320, 180)
        ),
        single=SingleStream("u1"),
        outputs=("rtmp://127.0.0.1:1/live/none",),
        max_idle_s=1.0,  # below the API's minimum of 5 s, to keep the test short
    )
    job = RelayJob("t-idle", "app", "room", spec, source)
    await job.start()
    ended = await asyncio.wait_for(job.wait(), 10)
    assert ended.reason == "idle"


def test_audio_params_are_aac_only() -> None:
    with pytest.raises(ValueError):
        from roomcast.media.rtmp import _audio_stream

        _audio_stream(None, AudioParams("mp3"))
