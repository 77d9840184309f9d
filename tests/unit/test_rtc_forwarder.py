"""Fan-out, slow-subscriber and keyframe-request behaviour of the forwarder (no network)."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import av
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from roomcast.rtc.events import EventBus, ParticipantJoined, RoomOpened, event_to_dict
from roomcast.rtc.forwarder import TrackEnded, TrackForwarder
from roomcast.rtc.sdp_utils import media_sections
from roomcast.rtc.track import TrackInfo, TrackKind, parse_track_id

pytestmark = pytest.mark.timeout(10)


class FakeSource(MediaStreamTrack):
    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def feed(self, n: int, keyframe: bool = False, start: int = 0) -> None:
        for i in range(n):
            p = av.Packet(b"\x00" * 10)
            p.pts = (start + i) * 3000
            p.time_base = Fraction(1, 90000)
            p.is_keyframe = keyframe and i == 0
            self.queue.put_nowait(p)

    async def recv(self) -> Any:
        item = await self.queue.get()
        if item is None:
            raise MediaStreamError
        return item


INFO = TrackInfo("app", "room", "u1", TrackKind.CAMERA, "video/H264")


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_fanout_slow_subscriber_skips_to_keyframe() -> None:
    src = FakeSource()
    requests: list[int] = []

    async def request() -> bool:
        requests.append(1)
        return True

    fwd = TrackForwarder(INFO, src, request, min_keyframe_interval=0.0)
    fwd.start()
    fast = fwd.subscribe(maxsize=4, name="fast")
    slow = fwd.subscribe(maxsize=4, name="slow")
    await _settle()
    assert len(requests) >= 1  # subscribing to video asks for a keyframe
    src.feed(3, keyframe=False)  # not a keyframe: nobody gets these
    src.feed(1, keyframe=True, start=3)
    await _settle()
    got = await fast.recv()
    assert got.keyframe and got.pts == 9000
    # fast keeps draining; slow never reads and overflows
    for i in range(10):
        src.feed(1, start=4 + i)
        await _settle()
        await fast.recv()
    assert slow.dropped > 0 and slow.need_keyframe
    before = len(requests)
    src.feed(1, keyframe=True, start=20)
    await _settle()
    assert len(requests) >= before
    first = await slow.recv()
    assert first.keyframe and first.pts == 60000
    assert (await fast.recv()).pts == 60000
    await fwd.stop()
    with pytest.raises(TrackEnded):
        await fast.recv()


async def test_keyframe_requests_are_rate_limited_and_coalesced() -> None:
    src = FakeSource()
    sent: list[float] = []

    async def request() -> bool:
        sent.append(asyncio.get_running_loop().time())
        return True

    fwd = TrackForwarder(INFO, src, request, min_keyframe_interval=0.2)
    fwd.start()
    for _ in range(10):
        fwd.request_keyframe()
    await _settle()
    assert len(sent) == 1
    await asyncio.sleep(0.3)
    assert len(sent) == 2  # the burst collapsed into one delayed request
    await fwd.stop()


async def test_gate_blocks_and_resumes_on_keyframe() -> None:
    src = FakeSource()
    asked: list[int] = []

    async def request() -> bool:
        asked.append(1)
        return True

    fwd = TrackForwarder(INFO, src, request, min_keyframe_interval=10)
    fwd.start()
    sub = fwd.subscribe(maxsize=100)
    src.feed(2, keyframe=True)
    await _settle()
    assert sub.delivered == 0 and len(sub._queue) == 2
    fwd.set_blocked(True)
    src.feed(3, keyframe=True, start=2)
    await _settle()
    assert len(sub._queue) == 2
    n = len(asked)
    fwd.set_blocked(False)
    await _settle()
    assert len(asked) == n + 1  # forced, despite the rate limit
    src.feed(2, start=5)  # delta frames after unblock are not forwarded
    src.feed(1, keyframe=True, start=7)
    await _settle()
    first = await sub.recv()
    assert first.keyframe and first.pts == 7 * 3000
    await fwd.stop()


async def test_event_bus_delivers_and_serializes() -> None:
    bus = EventBus()
    sub = bus.subscribe(filter=lambda e: e.room_id == "r")
    seen: list[str] = []
    bus.add_handler(lambda e: seen.append(e.type))
    bus.publish(RoomOpened(app_key="a", room_id="other"))
    bus.publish(ParticipantJoined(app_key="a", room_id="r", user_id="u", session_id="s"))
    ev = await asyncio.wait_for(sub.get(), 1)
    assert isinstance(ev, ParticipantJoined)
    d = event_to_dict(ev)
    assert d["type"] == "participant_joined" and d["user_id"] == "u" and d["event_id"]
    assert seen == ["room_opened", "participant_joined"]
    sub.close()


def test_sdp_media_sections_and_track_ids() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        "m=video 9 X 97\r\na=mid:v1\r\nm=application 9 X\r\n"
    )
    assert media_sections(sdp) == [("0", "audio"), ("v1", "video")]
    assert parse_track_id("user/with/slash/screen") == ("user/with/slash", TrackKind.SCREEN)
