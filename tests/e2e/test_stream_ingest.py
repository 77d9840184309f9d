"""TRTC stream ingest end to end with the official SDK: a local HTTP server serves PyAV-made clips
(a colour per second, a beep per second) and an HLS playlist; a WebRTC subscriber in the room
checks the colours, their pace and the beeps' sync; loops, seek, pause, volume, a live URL switch,
stop, the documented errors, and the usage row of each ended task."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.rtc.client import RoomClient
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import issue_usersig
from roomcast.stats.ledger import MINUTE, UsageLedger
from roomcast.store.tables import IngestUsageRow
from tests.api.conftest import Tenant, make_tenant
from tests.support.ingest_media import (
    Capture,
    audio_level,
    beep_onsets,
    colour_changes,
    make_hls,
    make_media,
    media_server,
    rtmp_server,
)
from tests.support.live import LiveServer, free_port, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("ingest-media"))


@pytest.fixture(scope="module")
def media(media_dir: Path) -> Iterator[str]:
    d = media_dir
    make_media(d / "clip.mp4", 4)
    make_media(d / "other.mp4", 3, first_colour=4)
    make_media(d / "bframes.mp4", 3, b_frames=True)
    make_hls(d / "hls", d / "clip.mp4")
    (d / "notes.txt").write_text("not a media file\n" * 100)
    with media_server(d) as base:
        yield base


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("ingest")) / "var"
    with live_server(
        data,
        ice_host_addresses=["127.0.0.1"],
        empty_room_grace_s=1.0,
        max_ingests=3,
        ingest_retries=1,
        stats_interval_s=1.0,
        stats_flush_s=0.5,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server, "ingest")


def sdk(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def start_req(
    t: Tenant, room: str, url: str, user: str = "ingest-bot", **extra: Any
) -> models.StartStreamIngestRequest:
    req = models.StartStreamIngestRequest()
    req.from_json_string(
        json.dumps(
            {
                "SdkAppId": t.app.sdk_app_id,
                "RoomId": room,
                "RoomIdType": 1,
                "UserId": user,
                "UserSig": issue_usersig(t.app, user),
                "StreamUrl": url,
                **extra,
            }
        )
    )
    return req


def call(client: trtc_client.TrtcClient, action: str, params: dict[str, Any]) -> Any:
    req = getattr(models, f"{action}Request")()
    req.from_json_string(json.dumps(params))
    return getattr(client, action)(req)


def status(client: trtc_client.TrtcClient, t: Tenant, task_id: str) -> str:
    return str(call(client, "DescribeStreamIngest", {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id}).Status)


def code_of(fn: Any, *args: Any) -> str:
    with pytest.raises(TencentCloudSDKException) as ei:
        fn(*args)
    return str(ei.value.code)


@asynccontextmanager
async def subscriber(
    server: LiveServer, t: Tenant, room: str, user: str = "viewer"
) -> AsyncIterator[tuple[RoomClient, Capture]]:
    client = RoomClient(
        server.url, app_id=str(t.app.sdk_app_id), room_id=room, user_id=user, token=issue_usersig(t.app, user)
    )
    cap = Capture(client)
    client.received = cap
    await client.connect(auto_subscribe=True)
    try:
        yield client, cap
    finally:
        await client.close()
        await cap.close()


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def wait_status(
    client: trtc_client.TrtcClient, t: Tenant, task_id: str, want: str, limit: float
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await in_thread(status, client, t, task_id) == want:
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    raise AssertionError(f"task not {want} after {limit} s")


def _usage(server: LiveServer, task_id: str) -> IngestUsageRow | None:
    async def body(rt: Runtime) -> IngestUsageRow | None:
        async with rt.db.sessions() as s:
            return (
                await s.execute(select(IngestUsageRow).where(IngestUsageRow.task_id == task_id))
            ).scalar_one_or_none()

    return server.run(body)


def _metered(server: LiveServer, app: str) -> dict[str, float]:
    async def body(rt: Runtime) -> dict[str, float]:
        end = datetime.now(UTC)
        rows = await UsageLedger(rt.db.sessions).read([app], "ingest", MINUTE, end - timedelta(hours=1), end)
        out: dict[str, float] = {}
        for r in rows:
            out[r.tier] = out.get(r.tier, 0.0) + r.seconds
        return out

    return server.run(body)  # type: ignore[no-any-return]


async def usage(server: LiveServer, task_id: str) -> IngestUsageRow | None:
    return await asyncio.to_thread(_usage, server, task_id)  # type: ignore[no-any-return]


async def test_mp4_plays_in_real_time_with_beeps_in_sync(
    server: LiveServer, tenant: Tenant, media: str
) -> None:
    client = sdk(server, tenant)
    async with subscriber(server, tenant, "7001") as (viewer, cap):
        t0 = time.monotonic()
        resp = await in_thread(client.StartStreamIngest, start_req(tenant, "7001", f"{media}/clip.mp4"))
        task_id = resp.TaskId
        assert await in_thread(status, client, tenant, task_id) == "InProgress"
        await viewer.wait_event("participant_joined", lambda m: m.get("user_id") == "ingest-bot")
        took = await wait_status(client, tenant, task_id, "NotExist", 15)
        await viewer.wait_event("participant_left", lambda m: m.get("user_id") == "ingest-bot")
    total = time.monotonic() - t0
    assert 3.8 <= total <= 8.0, total  # a 4 s clip plays in about 4 s, not in a burst
    changes = colour_changes(cap, "ingest-bot/camera")
    assert [i for i, _ in changes] == [0, 1, 2, 3], changes
    gaps = [b.arrival - a.arrival for (_, a), (_, b) in itertools.pairwise(changes)]
    # One colour per second, at real-time pace (margins for a loaded box: one late frame shifts
    # two gaps, the span of three seconds stays about 3 s).
    assert all(0.6 <= g <= 1.5 for g in gaps) and 2.6 <= sum(gaps) <= 3.6, gaps
    arrivals = [r.arrival for r in cap.packets["ingest-bot/camera"]]
    assert arrivals[10] - arrivals[0] >= 0.3, "the first frames came in a burst"
    beeps = beep_onsets(cap, "ingest-bot/audio")
    assert len(beeps) == 4, beeps
    # A/V sync as a browser computes it (sender reports): each beep starts with its colour.
    offsets = [abs(b.sender_time - c.sender_time) for b, (_, c) in zip(beeps, changes, strict=True)]
    assert max(offsets) <= 0.040, offsets
    row = await usage(server, task_id)
    assert row is not None and row.reason == "completed" and row.video_mode == "copy"
    assert 3 <= row.seconds <= 9 and row.user_id == "ingest-bot" and row.room_id == "7001"
    assert took > 0
    # Its minutes are in the usage ledger: 320x240 (SD) once its video was sampled.
    await asyncio.sleep(1.0)
    metered = await asyncio.to_thread(_metered, server, str(tenant.app.sdk_app_id))
    assert 2.5 <= sum(metered.values()) <= 10 and set(metered) <= {"SD", "Audio"}, metered
    assert metered.get("SD", 0.0) >= 1.5, metered


async def test_hls_playlist(server: LiveServer, tenant: Tenant, media: str) -> None:
    client = sdk(server, tenant)
    async with subscriber(server, tenant, "7002") as (_, cap):
        resp = await in_thread(client.StartStreamIngest, start_req(tenant, "7002", f"{media}/hls/index.m3u8"))
        await wait_status(client, tenant, resp.TaskId, "NotExist", 15)
    changes = colour_changes(cap, "ingest-bot/camera")
    assert [i for i, _ in changes] == [0, 1, 2, 3], changes
    beeps = beep_onsets(cap, "ingest-bot/audio")
    assert len(beeps) == 4, beeps
    # Seconds 1-3 (the first "change" is the stream's start, where the AAC decoder's priming
    # delays the first sound a little).
    offsets = [abs(b.sender_time - c.sender_time) for b, (_, c) in zip(beeps[1:], changes[1:], strict=True)]
    assert max(offsets) <= 0.040, offsets


async def test_rtmp_stream(server: LiveServer, tenant: Tenant, media: str, media_dir: Path) -> None:
    """A live RTMP source (FFmpeg as the server): played as it comes, the task ends with it."""
    client = sdk(server, tenant)
    with rtmp_server(media_dir / "clip.mp4", free_port(), connections=2) as url:  # the probe, the job
        async with subscriber(server, tenant, "7007") as (_, cap):
            resp = await in_thread(client.StartStreamIngest, start_req(tenant, "7007", url))
            await wait_status(client, tenant, resp.TaskId, "NotExist", 20)
    changes = colour_changes(cap, "ingest-bot/camera")
    assert [i for i, _ in changes][-3:] == [1, 2, 3], changes
    beeps = beep_onsets(cap, "ingest-bot/audio")
    pairs = [(b, c) for b in beeps for _, c in changes[1:] if abs(b.sender_time - c.sender_time) < 0.5]
    assert len(pairs) >= 2 and max(abs(b.sender_time - c.sender_time) for b, c in pairs) <= 0.040, pairs
    row = await usage(server, resp.TaskId)
    assert row is not None and row.reason == "completed" and row.video_mode == "copy"


async def test_repeat_and_seek(server: LiveServer, tenant: Tenant, media: str) -> None:
    client = sdk(server, tenant)
    async with subscriber(server, tenant, "7003") as (_, cap):
        req = start_req(tenant, "7003", f"{media}/clip.mp4", RepeatNum=2, SeekSecond=2)
        t0 = time.monotonic()
        resp = await in_thread(client.StartStreamIngest, req)
        await wait_status(client, tenant, resp.TaskId, "NotExist", 20)
        took = time.monotonic() - t0
    # Seconds 2, 3, then the whole clip again.
    assert [i for i, _ in colour_changes(cap, "ingest-bot/camera")] == [2, 3, 0, 1, 2, 3]
    assert 5.5 <= took <= 10, took


async def test_transcoded_sources(server: LiveServer, tenant: Tenant, media: str) -> None:
    """H.264 with B-frames, and any source with VideoEncodeParams, is re-encoded."""
    client = sdk(server, tenant)
    async with subscriber(server, tenant, "7004") as (_, cap):
        resp = await in_thread(client.StartStreamIngest, start_req(tenant, "7004", f"{media}/bframes.mp4"))
        await wait_status(client, tenant, resp.TaskId, "NotExist", 15)
    assert [i for i, _ in colour_changes(cap, "ingest-bot/camera")] == [0, 1, 2]
    row = await usage(server, resp.TaskId)
    assert row is not None and row.video_mode == "transcode"

    async with subscriber(server, tenant, "7005") as (_, cap):
        enc = {"Width": 160, "Height": 120, "Fps": 15, "BitRate": 300, "Gop": 1}
        req = start_req(tenant, "7005", f"{media}/other.mp4", VideoEncodeParams=enc, Volume=50)
        resp = await in_thread(client.StartStreamIngest, req)
        await wait_status(client, tenant, resp.TaskId, "NotExist", 15)
    assert [i for i, _ in colour_changes(cap, "ingest-bot/camera")] == [4, 5, 6]
    row = await usage(server, resp.TaskId)
    assert row is not None and (row.video_mode, row.width, row.height) == ("transcode", 160, 120)
    frames = len(cap.packets["ingest-bot/camera"])
    assert 30 <= frames <= 55, frames  # 15 fps for 3 s
    level = audio_level(cap, "ingest-bot/audio", 0, time.monotonic())
    assert 0.15 <= level <= 0.35, level  # the 0.5 beeps at half volume


async def test_pause_volume_switch_and_stop(server: LiveServer, tenant: Tenant, media: str) -> None:
    client = sdk(server, tenant)
    sdk_app_id = tenant.app.sdk_app_id
    async with subscriber(server, tenant, "7006") as (_, cap):
        resp = await in_thread(
            client.StartStreamIngest,
            start_req(tenant, "7006", f"{media}/clip.mp4", RepeatNum=-1, MaxDuration=1),
        )
        task_id = resp.TaskId
        await asyncio.sleep(1.5)
        upd = {"SdkAppId": sdk_app_id, "TaskId": task_id}
        r = await in_thread(call, client, "UpdateStreamIngest", {**upd, "IsPause": True})
        assert r.Status == "InProgress"
        paused_at = time.monotonic()
        await asyncio.sleep(1.5)
        assert await in_thread(status, client, tenant, task_id) == "InProgress"  # paused is in progress
        await in_thread(call, client, "UpdateStreamIngest", {**upd, "IsPause": False, "Volume": 0})
        resumed_at = time.monotonic()
        await asyncio.sleep(1.5)
        muted_until = time.monotonic()
        await in_thread(
            call, client, "UpdateStreamIngest", {**upd, "StreamUrl": f"{media}/other.mp4", "Volume": 100}
        )
        switched_at = time.monotonic()
        await asyncio.sleep(2.2)
        await in_thread(call, client, "StopStreamIngest", upd)
        stopped_at = time.monotonic()
        # StopStreamIngest returns once the user has left the room.
        room = server.app.state.sfu.get_room(str(sdk_app_id), "7006")
        assert room is not None and "ingest-bot" not in room.participants
        assert await in_thread(status, client, tenant, task_id) == "NotExist"
        assert code_of(call, client, "StopStreamIngest", upd) == "FailedOperation.TaskFinished"
        assert (
            code_of(call, client, "UpdateStreamIngest", {**upd, "Volume": 10})
            == "FailedOperation.TaskNotExist"
        )
    video = cap.packets["ingest-bot/camera"]
    during_pause = [r for r in video if paused_at + 0.6 < r.arrival < resumed_at - 0.1]
    assert not during_pause, f"{len(during_pause)} video frames while paused"
    assert not [r for r in video if r.arrival > stopped_at + 0.6]
    assert audio_level(cap, "ingest-bot/audio", resumed_at + 0.3, muted_until) < 0.01
    changes = colour_changes(cap, "ingest-bot/camera")
    first_new = next(c for i, c in changes if i == 4)
    assert first_new.arrival - switched_at < 2.5  # the new URL plays at once, in the same session
    assert [i for i, c in changes if c.arrival > switched_at][:2] == [4, 5]
    row = await usage(server, task_id)
    assert row is not None and row.reason == "stopped" and row.seconds >= 6  # pauses are billed


async def test_documented_errors(server: LiveServer, tenant: Tenant, media: str) -> None:
    client = sdk(server, tenant)
    sid = tenant.app.sdk_app_id
    start = client.StartStreamIngest
    url = f"{media}/clip.mp4"
    assert (
        code_of(start, start_req(tenant, "7010", "ftp://example.com/a.mp4")) == "InvalidParameter.StreamUrl"
    )
    assert code_of(start, start_req(tenant, "7010", f"{media}/missing.mp4")) == "InvalidParameter.StreamUrl"
    assert code_of(start, start_req(tenant, "7010", f"{media}/notes.txt")) == "InvalidParameter.StreamUrl"
    assert code_of(start, start_req(tenant, "7010", "")) == "InvalidParameter.StreamUrl"
    bad_sig = start_req(tenant, "7010", url)
    bad_sig.UserSig = issue_usersig(tenant.app, "someone-else")
    assert code_of(start, bad_sig) == "InvalidParameter.UserSig"
    assert code_of(start, start_req(tenant, "room123", url)) == "InvalidParameter.RoomId"
    assert code_of(start, start_req(tenant, "7010", url, RepeatNum=0)) == "InvalidParameter"
    assert code_of(start, start_req(tenant, "7010", url, Volume=101)) == "InvalidParameter"
    bad_enc = start_req(
        tenant,
        "7010",
        url,
        VideoEncodeParams={"Width": 4000, "Height": 100, "Fps": 15, "BitRate": 100, "Gop": 1},
    )
    assert code_of(start, bad_enc) == "InvalidParameter.EncodeParams"
    assert code_of(start, start_req(tenant, "7010", url, AutoPush=True)) == "FailedOperation.NotAllowed"
    assert (
        code_of(call, client, "DescribeStreamIngest", {"SdkAppId": sid, "TaskId": ""})
        == "InvalidParameter.TaskId"
    )
    assert status(client, tenant, "no-such-task") == "NotExist"
    assert (
        code_of(call, client, "StopStreamIngest", {"SdkAppId": sid, "TaskId": "no-such-task"})
        == "InvalidParameter.TaskId"
    )
    assert (
        code_of(call, client, "UpdateStreamIngest", {"SdkAppId": sid, "TaskId": "nope"})
        == "FailedOperation.TaskNotExist"
    )

    async with subscriber(server, tenant, "7011", user="human"):
        # A user already in the room; a second task with the same user; the per-node limit (3).
        assert code_of(start, start_req(tenant, "7011", url, user="human")) == "FailedOperation.NotAllowed"
        first = await in_thread(start, start_req(tenant, "7011", url, user="bot-1", RepeatNum=-1))
        assert code_of(start, start_req(tenant, "7011", url, user="bot-1")) == "FailedOperation.TaskExist"
        others = [
            await in_thread(start, start_req(tenant, "7011", url, user=f"bot-{i}", RepeatNum=-1))
            for i in (2, 3)
        ]
        assert (
            code_of(start, start_req(tenant, "7011", url, user="bot-4"))
            == "FailedOperation.RestrictedConcurrency"
        )
        upd = {"SdkAppId": sid, "TaskId": first.TaskId, "StreamUrl": "rtmp://127.0.0.1:1/none"}
        assert code_of(call, client, "UpdateStreamIngest", upd) == "InvalidParameter.StreamUrl"
        for r in (first, *others):
            await in_thread(call, client, "StopStreamIngest", {"SdkAppId": sid, "TaskId": r.TaskId})


async def test_failing_source_ends_the_task(
    server: LiveServer, tenant: Tenant, media: str, tmp_path: Path
) -> None:
    """A source that disappears is retried (ingest_retries 1 here), then the task ends as failed."""
    with media_server(tmp_path) as base:
        make_media(tmp_path / "gone.mp4", 2)
        client = sdk(server, tenant)
        resp = await in_thread(
            client.StartStreamIngest, start_req(tenant, "7020", f"{base}/gone.mp4", RepeatNum=-1)
        )
        (tmp_path / "gone.mp4").unlink()
        await wait_status(client, tenant, resp.TaskId, "NotExist", 20)
    row = await usage(server, resp.TaskId)
    assert row is not None and row.reason == "failed"


async def test_a_restarted_server_resumes_the_task(media: str, tmp_path: Path) -> None:
    """Stopping the server leaves the task running; the next start takes it over and joins again."""
    data = tmp_path / "var"
    opts: dict[str, Any] = {"ice_host_addresses": ["127.0.0.1"], "empty_room_grace_s": 0.5}

    def first_life() -> tuple[Tenant, str]:
        with live_server(data, **opts) as srv:
            t = make_tenant(srv, "restart")
            client = sdk(srv, t)
            task_id = str(
                client.StartStreamIngest(start_req(t, "7030", f"{media}/clip.mp4", RepeatNum=-1)).TaskId
            )
            assert status(client, t, task_id) == "InProgress"
            return t, task_id

    t, task_id = await in_thread(first_life)

    def second_life() -> tuple[str, bool, str]:
        with live_server(data, **opts) as srv:
            client = sdk(srv, t)
            deadline = time.monotonic() + 15
            joined = False
            while time.monotonic() < deadline and not joined:
                room = srv.app.state.sfu.get_room(str(t.app.sdk_app_id), "7030")
                joined = room is not None and "ingest-bot" in room.participants
                time.sleep(0.2)
            before = status(client, t, task_id)
            call(client, "StopStreamIngest", {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id})
            return before, joined, status(client, t, task_id)

    before, joined, after = await in_thread(second_life)
    assert joined and before == "InProgress" and after == "NotExist"
