"""Stream ingest tasks below the API, on SQLite and PostgreSQL: the maximum duration, a restart
(another node, or this one again, resumes the task), the user removed or the room dismissed, and
a mixed recording of the room that shows the ingested user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import pytest
from sqlalchemy import select

from roomcast.domain.ingest import FOREVER, IngestSpec
from roomcast.domain.layout import Canvas, grid
from roomcast.domain.recording import FileNaming
from roomcast.domain.task import TaskState
from roomcast.domain.tenancy import App
from roomcast.media.mixed import MixedRecorder, MixedSettings, local_outputs
from roomcast.media.outputs import OutputContext
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.events import EventSubscription, TrackPublished
from roomcast.rtc.forwarder import TrackEnded
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.ingests import IngestRequest, IngestService
from roomcast.services.tasks import TaskService
from roomcast.store.tables import IngestUsageRow
from tests.support import avcheck
from tests.support.ingest_media import colour_index, make_media, media_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = Path(tmp_path_factory.mktemp("ingest-task-media"))
    make_media(d / "clip.mp4", 2)
    make_media(d / "clip3.mp4", 3)
    make_media(d / "mpeg4.mp4", 2, codec="mpeg4")
    with media_server(d) as base:
        yield base


@pytest.fixture
async def app(runtime: Runtime) -> App:
    acc = await runtime.tenancy.create_account("ingest")
    return await runtime.tenancy.create_app(acc.account_id, "ingest")


def service(runtime: Runtime, sfu: RoomManager, node_id: str) -> IngestService:
    return IngestService(
        TaskService(runtime.db.sessions, runtime.box), sfu, UrlPolicy(allow_private=True), node_id=node_id
    )


@pytest.fixture
async def sfu() -> AsyncIterator[RoomManager]:
    manager = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    try:
        yield manager
    finally:
        await manager.close()


def request(app: App, url: str, room: str = "r1", **spec: object) -> IngestRequest:
    return IngestRequest(
        app=app,
        room_id=room,
        user_id="bot",
        spec=IngestSpec(url=url, **spec),  # type: ignore[arg-type]
        dialect="trtc",
        dialect_request={},
    )


async def frames(sfu: RoomManager, app: App, room: str, count: int, limit: float = 10.0) -> int:
    """Video frames the ingested user publishes (in-process subscriber)."""
    sub = sfu.subscribe_track(str(app.sdk_app_id), room, "bot", TrackKind.CAMERA, maxsize=1000)
    got = 0
    try:
        async with asyncio.timeout(limit):
            while got < count:
                await sub.recv()
                got += 1
    except TrackEnded:
        pass
    finally:
        sub.close()
    return got


async def ended(svc: IngestService, app: App, task_id: str, limit: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        task = await svc.get(app, task_id)
        if task.state is TaskState.EXITED:
            return time.monotonic() - t0
        await asyncio.sleep(0.1)
    raise AssertionError("the task did not end")


async def test_max_duration_ends_an_endless_loop(
    runtime: Runtime, sfu: RoomManager, app: App, media: str
) -> None:
    svc = service(runtime, sfu, "node-a")
    try:
        t0 = time.monotonic()
        task = await svc.start(request(app, f"{media}/clip.mp4", repeats=FOREVER, max_duration_s=3.0))
        assert task.state is TaskState.RUNNING and task.robot_user_id == "bot"
        assert await frames(sfu, app, "r1", 10) == 10
        await ended(svc, app, task.task_id, 10)
        took = time.monotonic() - t0
        assert 2.8 <= took <= 5.0, took  # 1.5 loops of the 2 s clip, then MaxDuration
        done = await svc.get(app, task.task_id)
        assert done.reason == "max_duration"
        assert (
            "bot" not in sfu.room(str(app.sdk_app_id), "r1").participants
            if sfu.get_room(str(app.sdk_app_id), "r1")
            else True
        )
    finally:
        await svc.close()


async def test_restart_resumes_the_task_on_another_node(
    runtime: Runtime, sfu: RoomManager, app: App, media: str
) -> None:
    first = service(runtime, sfu, "node-a")
    task = await first.start(request(app, f"{media}/clip.mp4", repeats=FOREVER, volume=40))
    await first.update(app, task.task_id, paused=True)
    await first.close()  # shutdown: the user leaves, the task stays for the next node
    assert (await first.get(app, task.task_id)).state is TaskState.RUNNING
    assert (
        sfu.get_room(str(app.sdk_app_id), "r1") is None
        or "bot" not in sfu.room(str(app.sdk_app_id), "r1").participants
    )

    other_sfu = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    second = service(runtime, other_sfu, "node-b")
    try:
        await second.take_over()
        assert second.running() == [task.task_id]
        moved = await second.get(app, task.task_id)
        assert moved.node_id == "node-b" and moved.state is TaskState.RUNNING
        await asyncio.sleep(0.5)
        room = other_sfu.room(str(app.sdk_app_id), "r1")
        assert "bot" in room.participants
        # Resumed paused, as the last update left it. An update through the first node (which
        # does not run the task) reaches the job on the second: it plays.
        await first.update(app, task.task_id, paused=False)
        assert await frames(other_sfu, app, "r1", 10) == 10
        # So does a stop: the task ends at once, the user leaves the room on the second node.
        bot = room.participants["bot"]
        await first.stop(app, task.task_id)
        assert (await second.get(app, task.task_id)).reason == "stopped"
        await asyncio.wait_for(bot.closed.wait(), 5)
        assert "bot" not in room.participants
        assert second.running() == []
    finally:
        await second.close()
        await other_sfu.close()


async def test_removed_user_or_dismissed_room_ends_the_task(
    runtime: Runtime, sfu: RoomManager, app: App, media: str
) -> None:
    svc = service(runtime, sfu, "node-a")
    key = str(app.sdk_app_id)
    try:
        a = await svc.start(request(app, f"{media}/clip.mp4", room="r2", repeats=FOREVER))
        await sfu.remove_participants(key, "r2", ["bot"], reason="kicked")
        await ended(svc, app, a.task_id, 5)
        assert (await svc.get(app, a.task_id)).reason == "removed"
        b = await svc.start(request(app, f"{media}/clip.mp4", room="r3", repeats=FOREVER))
        await sfu.dismiss_room(key, "r3")
        await ended(svc, app, b.task_id, 5)
        assert (await svc.get(app, b.task_id)).reason == "room_dismissed"
        async with runtime.db.sessions() as s:
            rows = (await s.execute(select(IngestUsageRow).order_by(IngestUsageRow.id))).scalars().all()
        assert [(r.task_id, r.reason) for r in rows] == [
            (a.task_id, "removed"),
            (b.task_id, "room_dismissed"),
        ]
    finally:
        await svc.close()


async def test_mixed_recording_shows_the_ingested_user(
    runtime: Runtime, sfu: RoomManager, app: App, media: str, tmp_path: Path
) -> None:
    key = str(app.sdk_app_id)
    ctx = OutputContext(
        root=tmp_path,
        naming=FileNaming("{room_id}_{user_id}_{index}"),
        variables={"task_id": "t1", "app": key, "room_id": "r4", "user_id": "mix", "stream": "mix"},
        wall_origin=time.time(),
    )
    settings = MixedSettings(
        canvas=Canvas(320, 240), fps=15, video_bitrate_kbps=400, preset="veryfast", latency=0.4
    )
    svc = service(runtime, sfu, "node-a")
    rec = MixedRecorder(sfu, key, "r4", grid, settings, local_outputs(ctx))
    try:
        task = await svc.start(request(app, f"{media}/clip3.mp4", room="r4"))
        await rec.start()
        await ended(svc, app, task.task_id, 10)
        await asyncio.sleep(0.3)
        await rec.stop()
    finally:
        await svc.close()
    check_mix(tmp_path)


def check_mix(tmp_path: Path) -> None:
    files = sorted(tmp_path.rglob("*.mp4"))
    assert len(files) == 1, files
    seen: list[int] = []
    for _, frame in avcheck.video_frames(files[0]):
        idx = colour_index(avcheck.dominant_colour(frame, (80, 60, 160, 120)))
        if idx is not None and (not seen or seen[-1] != idx):
            seen.append(idx)
    assert seen[-2:] == [1, 2] and set(seen) <= {0, 1, 2}, seen  # the clip's colours, in order
    assert len(avcheck.beep_times(files[0], 1000)) >= 2  # and its beeps


async def published(events: EventSubscription, kind: TrackKind) -> None:
    async with asyncio.timeout(5):
        async for ev in events:
            if isinstance(ev, TrackPublished) and ev.kind is kind:
                return


async def colours(
    sfu: RoomManager, app: App, room: str, limit: float = 15.0, codec: str = "h264"
) -> list[int]:
    """The palette colours the ingested user's video shows, in order, until its track ends."""
    sub = sfu.subscribe_track(str(app.sdk_app_id), room, "bot", TrackKind.CAMERA, maxsize=1000)
    dec = av.CodecContext.create(codec, "r")
    seen: list[int] = []
    try:
        async with asyncio.timeout(limit):
            while True:
                pkt = await sub.recv()
                for frame in dec.decode(pkt.packet):
                    idx = colour_index(avcheck.dominant_colour(frame))
                    if idx is not None and (not seen or seen[-1] != idx):
                        seen.append(idx)
    except TrackEnded:
        pass
    finally:
        sub.close()
    return seen


async def test_resume_continues_where_the_file_was(
    runtime: Runtime, sfu: RoomManager, app: App, media: str
) -> None:
    first = service(runtime, sfu, "node-a")
    task = await first.start(request(app, f"{media}/clip3.mp4", room="r5"))
    await asyncio.sleep(1.6)  # into the second second (colour 1)
    await first.update(app, task.task_id, paused=True)
    await first.close()

    other_sfu = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    second = service(runtime, other_sfu, "node-b")
    events = other_sfu.events.subscribe(types=(TrackPublished,))
    try:
        await second.take_over()
        await published(events, TrackKind.CAMERA)
        watching = asyncio.ensure_future(colours(other_sfu, app, "r5"))
        await asyncio.sleep(0.2)
        await second.update(app, task.task_id, paused=False)
        seen = await watching
        await ended(second, app, task.task_id, 10)
    finally:
        events.close()
        await second.close()
        await other_sfu.close()
    assert seen == [1, 2], seen  # from the keyframe before where it paused, not from the start
    done = await second.get(app, task.task_id)
    assert done.reason == "completed"


async def test_room_without_h264_gets_vp8(runtime: Runtime, app: App, media: str) -> None:
    """Video is transcoded to the room's codec: VP8 when the room has no H.264 (MPEG-4 source)."""
    vp8_sfu = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0, video_codecs=("video/VP8",)))
    svc = service(runtime, vp8_sfu, "node-a")
    events = vp8_sfu.events.subscribe(types=(TrackPublished,))
    try:
        task = await svc.start(request(app, f"{media}/mpeg4.mp4", room="r6"))
        await published(events, TrackKind.CAMERA)
        info = next(t for t in vp8_sfu.list_tracks(str(app.sdk_app_id), "r6") if t.kind is TrackKind.CAMERA)
        assert info.codec == "video/VP8"
        seen = await colours(vp8_sfu, app, "r6", codec="vp8")
        await ended(svc, app, task.task_id, 10)
    finally:
        events.close()
        await svc.close()
        await vp8_sfu.close()
    assert seen[-2:] == [0, 1], seen
