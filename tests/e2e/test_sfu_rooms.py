"""End-to-end SFU tests on 127.0.0.1: real aiortc peers, uvicorn, signalling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import ClientError, RoomClient, WhepViewer, WhipPublisher
from roomcast.rtc.events import LeaveReason, ParticipantLeft, RoomClosed
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.testing import ColorVideoTrack, ToneAudioTrack, serve_sfu
from roomcast.rtc.track import TrackKind

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

TOKEN = "test-token"
APP = "app1"


@pytest.fixture
async def sfu() -> AsyncIterator[tuple[RoomManager, str]]:
    manager = RoomManager(SfuConfig(empty_room_grace=0.3, stats_interval=0.5, min_keyframe_interval=0.2))
    async with serve_sfu(manager, StaticTokenAuthenticator(TOKEN)) as url:
        yield manager, url


def client(url: str, user: str, room: str = "r1") -> RoomClient:
    return RoomClient(url, app_id=APP, room_id=room, user_id=user, token=TOKEN)


def av_tracks(color: tuple[int, int] = (90, 200)) -> dict[TrackKind, object]:
    return {TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack(color=color)}


async def test_two_clients_receive_each_other(sfu: tuple[RoomManager, str]) -> None:
    _, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    try:
        await a.connect(auto_subscribe=True)
        await b.connect(auto_subscribe=True)
        await a.publish(av_tracks())  # type: ignore[arg-type]
        await b.publish(av_tracks((200, 90)))  # type: ignore[arg-type]
        await a.wait_frames("bob/camera", 10)
        await a.wait_frames("bob/audio", 20)
        await b.wait_frames("alice/camera", 10)
        await b.wait_frames("alice/audio", 20)
        assert a.received.tracks["bob/camera"].keyframes >= 1
        ev = await a.wait_event("track_published", lambda m: m["track_id"] == "bob/camera")
        assert ev["codec"].lower() == "video/h264"
    finally:
        await a.close()
        await b.close()


async def test_whip_publish_watched_over_whep(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    pub = await WhipPublisher.start(f"{url}/rtc/whip/{APP}/r2/cam1", TOKEN, av_tracks())  # type: ignore[arg-type]
    viewer = None
    try:
        assert "/rtc/whip/resource/" in pub.resource_url
        viewer = await WhepViewer.start(f"{url}/rtc/whep/{APP}/r2/viewer1?publisher=cam1", TOKEN)
        await viewer.received.wait_frames("video0", 10)
        await viewer.received.wait_frames("audio0", 20)
        assert viewer.received.tracks["video0"].keyframes >= 1
        assert await viewer.stop() == 200
        viewer = None
        assert await pub.stop() == 200
        await asyncio.sleep(0.1)
        room = manager.get_room(APP, "r2")
        assert room is None or "cam1" not in room.participants
    finally:
        if viewer is not None:
            await viewer.stop()


async def test_whip_rejects_bad_token(sfu: tuple[RoomManager, str]) -> None:
    _, url = sfu
    with pytest.raises(ClientError) as err:
        await WhipPublisher.start(
            f"{url}/rtc/whip/{APP}/r2/cam1", "wrong", {TrackKind.AUDIO: ToneAudioTrack()}
        )
    assert err.value.code == "401"


async def test_remove_participant_drops_connections(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    events = manager.events.subscribe()
    try:
        await a.connect(auto_subscribe=True)
        await b.connect(auto_subscribe=True)
        await b.publish(av_tracks())  # type: ignore[arg-type]
        await a.wait_frames("bob/camera", 3)
        removed = await manager.remove_participants(APP, "r1", ["bob"], "kicked by test")
        assert removed == ["bob"]
        await asyncio.wait_for(b.closed.wait(), 5)
        assert b.close_code == 4001
        assert any(m["type"] == "removed" and m["reason"] == "kicked by test" for m in b.events)
        await a.wait_event("participant_left", lambda m: m["user_id"] == "bob" and m["reason"] == "removed")
        await a.wait_event("track_unpublished", lambda m: m["track_id"] == "bob/camera")
        await asyncio.sleep(0.3)
        assert b.pub_pc is not None and b.pub_pc.connectionState in (
            "closed",
            "failed",
            "connecting",
            "connected",
        )
        frames = a.received.frames("bob/camera")
        await asyncio.sleep(0.5)
        assert a.received.frames("bob/camera") == frames
        left = [e async for e in _drain(events) if isinstance(e, ParticipantLeft) and e.user_id == "bob"]
        assert left and left[0].reason is LeaveReason.REMOVED
    finally:
        events.close()
        await a.close()
        await b.close()


async def _drain(sub):  # type: ignore[no-untyped-def]
    while True:
        try:
            yield await asyncio.wait_for(sub.get(), 0.05)
        except (TimeoutError, StopAsyncIteration):
            return


async def test_dismiss_room(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    events = manager.events.subscribe()
    try:
        await a.connect()
        await b.connect()
        await manager.dismiss_room(APP, "r1", "meeting over")
        await asyncio.wait_for(a.closed.wait(), 5)
        await asyncio.wait_for(b.closed.wait(), 5)
        assert a.close_code == 4002 and b.close_code == 4002
        assert any(m["type"] == "room_dismissed" and m["reason"] == "meeting over" for m in a.events)
        assert manager.get_room(APP, "r1") is None
        got = [e async for e in _drain(events)]
        assert any(isinstance(e, RoomClosed) and e.reason == "dismissed" for e in got)
    finally:
        events.close()
        await a.close()
        await b.close()


async def test_block_stops_frames_and_unblock_resumes(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    try:
        await a.connect(auto_subscribe=True)
        await b.connect()
        await b.publish(av_tracks())  # type: ignore[arg-type]
        await a.wait_frames("bob/camera", 5)
        await a.wait_frames("bob/audio", 5)
        manager.set_media_blocked(APP, "r1", "bob", audio=True, video=True)
        await a.wait_event("media_blocked", lambda m: m["user_id"] == "bob")
        await asyncio.sleep(0.3)  # in flight
        v, au = a.received.frames("bob/camera"), a.received.frames("bob/audio")
        await asyncio.sleep(0.7)
        assert a.received.frames("bob/camera") == v
        assert a.received.frames("bob/audio") == au
        keyframes_before = a.received.tracks["bob/camera"].keyframes
        manager.set_media_blocked(APP, "r1", "bob", video=False)
        await a.wait_frames("bob/camera", 5)
        # resumed on a keyframe requested from the publisher
        assert a.received.tracks["bob/camera"].keyframes > keyframes_before
        assert a.received.frames("bob/audio") == au  # audio still blocked
        manager.set_media_blocked(APP, "r1", "bob", audio=False)
        await a.wait_frames("bob/audio", 5)
    finally:
        await a.close()
        await b.close()


async def test_subscriber_pli_reaches_publisher(sfu: tuple[RoomManager, str]) -> None:
    _, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    try:
        await a.connect(auto_subscribe=True)
        await b.connect()
        await b.publish(av_tracks())  # type: ignore[arg-type]
        await a.wait_frames("bob/camera", 5)
        await asyncio.sleep(0.3)  # let the rate limiter window pass
        before = b.keyframe_requests.get(TrackKind.CAMERA, 0)
        kf_before = a.received.tracks["bob/camera"].keyframes
        assert await a.request_keyframe("bob/camera")
        for _ in range(50):
            if b.keyframe_requests.get(TrackKind.CAMERA, 0) > before:
                break
            await asyncio.sleep(0.05)
        assert b.keyframe_requests.get(TrackKind.CAMERA, 0) > before
        await a.wait_frames("bob/camera", 5)
        assert a.received.tracks["bob/camera"].keyframes > kf_before
    finally:
        await a.close()
        await b.close()


async def test_mute_stops_forwarding(sfu: tuple[RoomManager, str]) -> None:
    _, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    try:
        await a.connect(auto_subscribe=True)
        await b.connect()
        await b.publish(av_tracks())  # type: ignore[arg-type]
        await a.wait_frames("bob/camera", 3)
        await b.mute(TrackKind.CAMERA)
        await a.wait_event("track_muted", lambda m: m["track_id"] == "bob/camera")
        await asyncio.sleep(0.3)
        n = a.received.frames("bob/camera")
        await asyncio.sleep(0.5)
        assert a.received.frames("bob/camera") == n
        await b.mute(TrackKind.CAMERA, False)
        await a.wait_event("track_unmuted", lambda m: m["track_id"] == "bob/camera")
        await a.wait_frames("bob/camera", 3)
    finally:
        await a.close()
        await b.close()


async def test_limits_refused() -> None:
    manager = RoomManager(
        SfuConfig(max_participants_per_room=1, max_rooms=1, empty_room_grace=0, stats_interval=0)
    )
    async with serve_sfu(manager, StaticTokenAuthenticator(TOKEN)) as url:
        a, b, c = client(url, "alice"), client(url, "bob"), client(url, "carol", room="other")
        try:
            await a.connect()
            with pytest.raises(ClientError) as full:
                await b.connect()
            assert full.value.code == "room_full"
            with pytest.raises(ClientError) as many:
                await c.connect()
            assert many.value.code == "too_many_rooms"
            with pytest.raises(ClientError) as whip:
                await WhipPublisher.start(
                    f"{url}/rtc/whip/{APP}/r1/dave", TOKEN, {TrackKind.AUDIO: ToneAudioTrack()}
                )
            assert whip.value.code == "403"
        finally:
            for x in (a, b, c):
                await x.close()


async def test_room_closes_after_grace(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    a = client(url, "alice", room="grace")
    await a.connect()
    assert manager.get_room(APP, "grace") is not None
    await a.leave()
    await asyncio.sleep(0.1)
    assert manager.get_room(APP, "grace") is not None  # still in grace
    # re-join within grace keeps the room
    a2 = client(url, "alice", room="grace")
    await a2.connect()
    room = manager.get_room(APP, "grace")
    await asyncio.sleep(0.4)
    assert manager.get_room(APP, "grace") is room
    await a2.leave()
    await asyncio.sleep(0.6)
    assert manager.get_room(APP, "grace") is None


async def test_source_interface_and_stats(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    b = client(url, "bob")
    stats = manager.events.subscribe(filter=lambda e: e.type == "track_stats")
    try:
        await b.connect()
        await b.publish(av_tracks())  # type: ignore[arg-type]
        for _ in range(50):
            if len(manager.list_tracks(APP, "r1")) == 2:
                break
            await asyncio.sleep(0.05)
        kinds = {t.kind for t in manager.list_tracks(APP, "r1")}
        assert kinds == {TrackKind.AUDIO, TrackKind.CAMERA}
        async with manager.subscribe_track(APP, "r1", "bob", TrackKind.CAMERA) as sub:
            first = await asyncio.wait_for(sub.recv(), 5)
            assert first.keyframe  # video subscriptions start on a keyframe
            assert first.time_base.denominator == 90000 and first.arrival > 0
            assert first.track.codec.lower() == "video/h264"
            pts = [first.pts]
            for _ in range(5):
                pts.append((await asyncio.wait_for(sub.recv(), 5)).pts)
            assert pts == sorted(pts)
        ev = await asyncio.wait_for(stats.get(), 5)
        ev = await asyncio.wait_for(stats.get(), 5)
        assert ev.type == "track_stats"
    finally:
        stats.close()
        await b.close()


async def test_vp8_screen_and_explicit_subscriptions(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    a, b = client(url, "alice"), client(url, "bob")
    try:
        await a.connect()
        await b.connect()
        tracks = {TrackKind.CAMERA: ColorVideoTrack(), TrackKind.SCREEN: ColorVideoTrack(color=(30, 30))}
        published = await b.publish(tracks, video_codecs=("video/VP8",))  # type: ignore[arg-type]
        assert sorted(published) == ["bob/camera", "bob/screen"]
        assert {t.codec.lower() for t in manager.list_tracks(APP, "r1")} == {"video/vp8"}
        await a.subscribe(["bob/screen"])
        await a.wait_frames("bob/screen", 5)
        assert a.received.frames("bob/camera") == 0
        await a.subscribe(["bob/camera"])
        await a.wait_frames("bob/camera", 5)
        await a.unsubscribe(["bob/screen"])
        await asyncio.sleep(0.3)
        n = a.received.frames("bob/screen")
        await asyncio.sleep(0.4)
        assert a.received.frames("bob/screen") == n
        # a later WHEP viewer of everything gets both videos
        viewer = await WhepViewer.start(f"{url}/rtc/whep/{APP}/r1/viewer", TOKEN, audio=0, video=2)
        try:
            await viewer.received.wait_frames("video0", 5)
            await viewer.received.wait_frames("video1", 5)
        finally:
            await viewer.stop()
    finally:
        await a.close()
        await b.close()
