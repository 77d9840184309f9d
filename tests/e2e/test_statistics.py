"""Statistics through the official TRTC and SparkRTC SDKs against real rooms: synthetic publishers
join, publish (one through a lossy path), change resolution, get removed and leave; every
monitoring and usage API then answers with the rooms, users, times, events, tiers, minutes and
quality problems of what happened."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcloudrtc.v1 import (
    CloudRTCClient,
    ListRtcAbnormalEventDimensionRequest,
    ListRtcAbnormalEventsRequest,
    ListRtcClientQosDetailsRequest,
    ListRtcHistoryUsageRequest,
    ListRtcRealtimeNetworkRequest,
    ListRtcRealtimeQualityRequest,
    ListRtcRealtimeScaleDimensionRequest,
    ListRtcRealtimeScaleRequest,
    ListRtcRoomListRequest,
    ListRtcUserListRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from prometheus_client.parser import text_string_to_metric_families
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.rtc.client import ClientError, RoomClient
from roomcast.rtc.testing import ColorVideoTrack, ToneAudioTrack
from roomcast.rtc.track import TrackKind
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOM = "5501"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("stats")) / "var"
    with live_server(
        data,
        ice_host_addresses=["127.0.0.1"],
        empty_room_grace_s=0.5,
        stats_interval_s=0.5,
        stats_flush_s=0.5,
        max_participants_per_room=4,
    ) as srv:
        yield srv


def trtc(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def spark(server: LiveServer, t: Tenant) -> CloudRTCClient:
    creds = BasicCredentials(t.creds.secret_id, t.creds.secret_key, t.creds.project_id)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([server.url]).build()


def lossy(client: RoomClient, share: float) -> None:
    """Drop ``share`` of the RTP packets the client sends (its uplink becomes a lossy path)."""
    assert client.pub_pc is not None
    rng = random.Random(7)
    for sender in client.pub_pc.getSenders():
        transport = sender.transport
        if getattr(transport, "_lossy", False):
            continue
        send = transport._send_rtp

        async def drop(data: bytes, send: Any = send) -> None:
            if rng.random() >= share:
                await send(data)

        transport._send_rtp = drop
        transport._lossy = True


def member(server: LiveServer, t: Tenant, user: str, telemetry: float | None = None) -> RoomClient:
    return RoomClient(
        server.url,
        app_id=str(t.app.sdk_app_id),
        room_id=ROOM,
        user_id=user,
        token=issue_usersig(t.app, user),
        telemetry_interval=telemetry,
    )


async def api(sdk: trtc_client.TrtcClient, action: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await asyncio.to_thread(sdk.call_json, action, body))["Response"]
    return result


async def api_error(sdk: trtc_client.TrtcClient, action: str, body: dict[str, Any]) -> str:
    with pytest.raises(TencentCloudSDKException) as ei:
        await asyncio.to_thread(sdk.call_json, action, body)
    return str(ei.value.get_code())


@pytest.fixture(scope="module")
def story(server: LiveServer) -> dict[str, Any]:
    """Run the scenario once; the tests read what it left."""
    tenant = make_tenant(server)

    async def run() -> dict[str, Any]:
        sdk = trtc(server, tenant)
        # alice and bob report telemetry every second; carol and dave report nothing
        alice, bob = member(server, tenant, "alice", 1.0), member(server, tenant, "bob", 1.0)
        carol, dave = member(server, tenant, "carol"), member(server, tenant, "dave")
        cam = ColorVideoTrack(width=320, height=240, color=(90, 200))
        t0 = time.time()
        await alice.connect()
        await alice.publish({TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: cam})
        await bob.connect(auto_subscribe=True)
        await carol.connect()
        await dave.connect()
        await dave.publish({TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack()})
        lossy(dave, 0.6)
        eve = member(server, tenant, "eve")
        with pytest.raises(ClientError) as refused:  # the room is full: a refused join
            await eve.connect()
        assert refused.value.code == "room_full"
        await eve.close()
        await bob.wait_frames("alice/camera", 10)
        await asyncio.sleep(6)
        cam.width, cam.height = 960, 540  # alice changes resolution; bob now receives HD
        await asyncio.sleep(6)
        rm = models.RemoveUserRequest()
        rm.SdkAppId, rm.RoomId, rm.UserIds = tenant.app.sdk_app_id, int(ROOM), ["carol"]
        await asyncio.to_thread(sdk.RemoveUser, rm)
        await asyncio.wait_for(carol.closed.wait(), 10)
        await asyncio.sleep(1)
        await bob.leave()
        await dave.leave()
        await alice.close()  # alice's connection just drops
        t1 = time.time()
        await asyncio.sleep(2.5)  # the room closes (grace 0.5 s) and the last numbers are written
        return {"tenant": tenant, "t0": t0, "t1": t1}

    return asyncio.run(run())


async def _room(sdk: trtc_client.TrtcClient, app: int, t0: float) -> dict[str, Any]:
    got = await api(
        sdk, "DescribeRoomInfo", {"SdkAppId": app, "StartTime": int(t0) - 60, "EndTime": int(time.time())}
    )
    rooms = [r for r in got["RoomList"] if r["RoomString"] == ROOM]
    assert len(rooms) == 1, got
    return rooms[0]


async def test_rooms_users_and_events(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    app, t0, t1 = tenant.app.sdk_app_id, story["t0"], story["t1"]
    sdk = trtc(server, tenant)
    room = await _room(sdk, app, t0)
    assert room["CommId"] == f"{app}_{ROOM}_{room['CreateTime']}"
    assert t0 - 1 <= room["CreateTime"] <= t0 + 5 and room["IsFinished"] is True
    assert t1 - 1 <= room["DestroyTime"] <= t1 + 3 and room["UserId"] == "alice"
    # The SDK's own model reads the answer.
    req = models.DescribeRoomInfoRequest()
    req.SdkAppId, req.StartTime, req.EndTime, req.RoomId = app, int(t0) - 60, int(time.time()), ROOM
    resp = await asyncio.to_thread(sdk.DescribeRoomInfo, req)
    assert resp.Total == 1 and resp.RoomList[0].CommId == room["CommId"]

    window = {
        "SdkAppId": app,
        "CommId": room["CommId"],
        "StartTime": int(t0) - 60,
        "EndTime": int(time.time()),
    }
    users = await api(sdk, "DescribeUserInfo", {**window, "PageSize": 10, "PageNumber": 0})
    assert users["Total"] == 4
    by = {u["UserId"]: u for u in users["UserList"]}
    assert set(by) == {"alice", "bob", "carol", "dave"}
    assert all(u["Finished"] and u["ClientIp"] == "127.0.0.1" and u["RoomStr"] == ROOM for u in by.values())
    assert by["alice"]["SdkVersion"].startswith("roomcast-python/") and by["alice"]["DeviceType"] == "pc"
    assert by["carol"]["SdkVersion"] == by["carol"]["DeviceType"] == ""  # carol's client said nothing
    assert by["alice"]["JoinTs"] <= by["bob"]["JoinTs"] <= by["carol"]["JoinTs"] <= by["carol"]["LeaveTs"]
    assert by["carol"]["LeaveTs"] < by["bob"]["LeaveTs"]
    # pagination: one per page, in join order
    page = await api(sdk, "DescribeUserInfo", {**window, "PageSize": 1, "PageNumber": 1})
    assert page["Total"] == 4 and [u["UserId"] for u in page["UserList"]] == ["bob"]
    only = await api(sdk, "DescribeUserInfo", {**window, "UserIds": ["carol"]})
    assert [u["UserId"] for u in only["UserList"]] == ["carol"]

    async def events(user: str) -> dict[str, list[dict[str, Any]]]:
        got = await api(
            sdk,
            "DescribeUserEvent",
            {
                **{k: window[k] for k in window if k != "CommId"},
                "CommId": room["CommId"],
                "UserId": user,
                "RoomId": ROOM,
            },
        )
        return {g["PeerId"]: g["Content"] for g in got["Data"]}

    alice = await events("alice")
    ids = [m["EventId"] for m in alice["alice"]]
    for expected in (32788, 7000, 32769, 32768, 4003, 32789, 7001, 32793):  # 32793: alice's client
        assert expected in ids, (expected, ids)
    change = next(m for m in alice["alice"] if m["EventId"] == 4003)
    assert (change["ParamOne"], change["ParamTwo"], change["Type"]) == (960, 540, 2)
    assert next(m for m in alice["alice"] if m["EventId"] == 7001)["ParamOne"] == 1  # dropped
    assert all(t0 * 1000 - 1000 <= m["Time"] <= t1 * 1000 + 3000 for m in alice["alice"])
    carol = await events("carol")
    leave = next(m for m in carol["carol"] if m["EventId"] == 7001)
    assert leave["ParamOne"] == 2  # kicked out
    bob = await events("bob")
    assert 32776 in [m["EventId"] for m in bob.get("alice", [])]  # bob subscribed to alice's video
    bye = next(m for m in bob["bob"] if m["EventId"] == 7001)
    assert bye["ParamOne"] == 0  # left normally


async def test_call_detail_series(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    app, t0 = tenant.app.sdk_app_id, story["t0"]
    sdk = trtc(server, tenant)
    room = await _room(sdk, app, t0)
    body = {
        "SdkAppId": app,
        "CommId": room["CommId"],
        "StartTime": int(t0) - 60,
        "EndTime": int(time.time()),
        "UserIds": ["alice", "bob"],
        "DataType": ["bigvWidth", "bigvBit", "aBit", "bigvCapFps", "bigvDecFps"],
    }
    got = await api(sdk, "DescribeCallDetailInfo", body)
    assert {u["UserId"] for u in got["UserList"]} == {"alice", "bob"}
    series = {(d["UserId"], d["PeerId"], d["DataType"]): d["Content"] for d in got["Data"]}
    widths = {p["Value"] for p in series[("alice", "", "bigvWidth")]}
    assert widths == {320, 960}, widths
    down = {p["Value"] for p in series[("bob", "alice", "bigvWidth")]}
    assert {320, 960} <= down
    assert max(p["Value"] for p in series[("alice", "", "aBit")]) > 8000  # opus audio flowed
    assert max(p["Value"] for p in series[("bob", "alice", "bigvBit")]) > 10000
    # only a client knows its capture and rendering rates: alice and bob reported theirs
    caps = [p["Value"] for p in series[("alice", "", "bigvCapFps")]]
    assert caps and 5 <= sorted(caps)[len(caps) // 2] <= 20  # ColorVideoTrack runs at 15 fps
    decoded = [p["Value"] for p in series[("bob", "alice", "bigvDecFps")]]
    assert decoded and max(decoded) > 5
    # SDK model
    req = models.DescribeCallDetailInfoRequest()
    req.SdkAppId, req.CommId, req.StartTime, req.EndTime = (
        app,
        room["CommId"],
        body["StartTime"],
        body["EndTime"],
    )
    req.DataType = ["all"]
    req.UserIds = ["alice"]
    resp = await asyncio.to_thread(sdk.DescribeCallDetailInfo, req)
    assert resp.Total == 1 and {d.DataType for d in resp.Data} >= {
        "aBit",
        "bigvBit",
        "bigvWidth",
        "bigvHeight",
    }


async def test_usage(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    app, t0, t1 = tenant.app.sdk_app_id, story["t0"], story["t1"]
    sdk = trtc(server, tenant)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    got = await api(sdk, "DescribeTrtcUsage", {"SdkAppId": app, "StartTime": today, "EndTime": today})
    assert got["UsageKey"] == ["Audio", "SD", "HD", "FullHD", "2K", "4K"]
    assert len(got["UsageList"]) == 288  # 5-minute buckets for one day
    totals = [sum(row["UsageValue"][i] for row in got["UsageList"]) for i in range(6)]
    # four people were present for (at most) the story's length; bob watched SD then HD
    minutes = sum(totals)
    assert 0.5 * 4 * (t1 - t0) / 60 < minutes <= 4 * (t1 - t0) / 60 + 0.1, totals
    assert totals[1] > 0 and totals[2] > 0 and totals[0] > 0  # SD, HD (bob), Audio (alice, carol)
    assert totals[3] == totals[4] == totals[5] == 0
    # SDK model; a two-day period answers per day
    req = models.DescribeTrtcUsageRequest()
    req.StartTime, req.EndTime, req.SdkAppId = today, "2020-01-01", app
    with pytest.raises(TencentCloudSDKException) as ei:
        await asyncio.to_thread(sdk.DescribeTrtcUsage, req)
    assert ei.value.get_code() == "InvalidParameter.QueryScaleOversize"
    # per room: the CSV, byte for byte
    start = datetime.fromtimestamp(t0 - 60, UTC).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(t1 + 120, UTC).strftime("%Y-%m-%d %H:%M")
    room = await api(sdk, "DescribeTrtcRoomUsage", {"SdkAppid": app, "StartTime": start, "EndTime": end})
    lines = room["Data"].split("\n")
    assert lines[0] == "RoomId,Audio,SD,hd,FullHD,2K,4K" and lines[-1] == ""
    assert lines[1].startswith(f"{ROOM},") and len(lines) == 3
    rec = await api(
        sdk, "DescribeRecordingUsage", {"StartTime": today, "EndTime": today, "MixType": "single"}
    )
    assert sum(sum(r["UsageValue"]) for r in rec["UsageList"]) == 0  # nothing was recorded
    mix = await api(sdk, "DescribeMixTranscodingUsage", {"StartTime": today, "EndTime": today})
    assert len(mix["UsageKey"]) == 11


async def test_dashboards(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    app, t0, t1 = tenant.app.sdk_app_id, story["t0"], story["t1"]
    sdk = trtc(server, tenant)
    req = models.DescribeTRTCRealTimeScaleDataRequest()
    req.SdkAppId, req.StartTime, req.EndTime = str(app), int(t0) - 20, int(t1) + 20
    resp = await asyncio.to_thread(sdk.DescribeTRTCRealTimeScaleData, req)
    series = resp.Data.Series[0]
    assert series.Columns == ["time", "userCount", "roomCount"]
    rows = [v.RowValue for v in series.Values]
    assert all(r[0] % 10 == 0 for r in rows)
    assert max(r[1] for r in rows) == 4 and max(r[2] for r in rows) == 1
    assert rows[0][1] == 0  # before anyone joined
    q = await api(
        sdk,
        "DescribeTRTCRealTimeQualityData",
        {"SdkAppId": str(app), "StartTime": int(t0) - 20, "EndTime": int(t1) + 20},
    )
    assert q["Data"]["Series"][0]["Columns"] == ["time", "videoFreezeRate", "audioFreezeRate"]
    freeze = [v["RowValue"] for v in q["Data"]["Series"][0]["Values"]]
    assert max(r[1] for r in freeze) > 0  # bob watched dave's video through dave's lossy uplink
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    m = await api(
        sdk,
        "DescribeTRTCMarketScaleData",
        {"SdkAppId": str(app), "StartTime": day, "EndTime": day, "Period": "d"},
    )
    row = m["Data"]["Series"][0]["Values"][0]["RowValue"]
    assert row[1:] == [4, 1, 4, 1]  # peak users, peak rooms, users, rooms
    mq = await api(
        sdk,
        "DescribeTRTCMarketQualityData",
        {"SdkAppId": str(app), "StartTime": day, "EndTime": day, "Period": "h"},
    )
    assert len(mq["Data"]["Series"][0]["Values"]) == 24
    hours = [v["RowValue"] for v in mq["Data"]["Series"][0]["Values"] if v["RowValue"][4]]
    # 5 attempts, 4 entries (each within 5 s of connecting): 80 % and 80 %
    if len(hours) == 1:  # (unless the story straddled an hour)
        assert hours[0][4:] == [80, 80], hours
    scale = await api(
        sdk, "DescribeScaleInfo", {"SdkAppId": app, "StartTime": int(t0) - 60, "EndTime": int(time.time())}
    )
    assert scale["Total"] == len(scale["ScaleList"])  # today is never reported
    assert all(r["Time"] < t0 for r in scale["ScaleList"])


async def test_documented_errors(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    app = tenant.app.sdk_app_id
    sdk = trtc(server, tenant)
    now = int(time.time())
    assert await api_error(
        sdk, "DescribeRoomInfo", {"SdkAppId": app, "StartTime": now - 90000, "EndTime": now}
    ) == ("InvalidParameter.QueryScaleOversize")
    assert (
        await api_error(
            sdk,
            "DescribeRoomInfo",
            {"SdkAppId": app, "StartTime": now - 20 * 86400, "EndTime": now - 20 * 86400 + 60},
        )
        == "InvalidParameter.StartTsOversize"
    )
    assert (
        await api_error(sdk, "DescribeRoomInfo", {"SdkAppId": app, "EndTime": now})
        == "MissingParameter.StartTs"
    )
    assert await api_error(
        sdk, "DescribeRoomInfo", {"SdkAppId": app, "StartTime": now, "EndTime": now - 5}
    ) == ("InvalidParameter.EndTs")
    assert (
        await api_error(
            sdk, "DescribeRoomInfo", {"SdkAppId": app, "StartTime": now - 60, "EndTime": now, "PageSize": 101}
        )
        == "InvalidParameter.PageSizeOversize"
    )
    detail = {"SdkAppId": app, "CommId": f"{app}_1_{now}", "StartTime": now - 60, "EndTime": now}
    assert (
        await api_error(
            sdk,
            "DescribeCallDetailInfo",
            {**detail, "DataType": ["aBit"], "UserIds": [str(i) for i in range(7)]},
        )
        == "InvalidParameter.UserIdsMorethanSix"
    )
    assert (
        await api_error(
            sdk, "DescribeCallDetailInfo", {**detail, "StartTime": now - 7200, "DataType": ["aBit"]}
        )
        == "InvalidParameter.QueryScaleOversize"
    )
    assert await api_error(sdk, "DescribeUserInfo", {**detail, "StartTime": now - 5 * 3600}) == (
        "InvalidParameter.QueryScaleOversize"
    )
    assert await api_error(sdk, "DescribeUserInfo", {k: v for k, v in detail.items() if k != "CommId"}) == (
        "MissingParameter.CommId"
    )
    empty = await api(sdk, "DescribeUserInfo", detail)  # a call that never was
    assert empty["Total"] == 0 and empty["UserList"] == []
    assert (
        await api_error(sdk, "DescribeTrtcUsage", {"StartTime": "2026-13-01", "EndTime": "2026-01-01"})
        == "InvalidParameter"
    )
    assert (
        await api_error(
            sdk,
            "DescribeRecordingUsage",
            {"StartTime": "2026-01-01", "EndTime": "2026-01-01", "MixType": "x"},
        )
        == "InvalidParameter"
    )
    # times that do not fit a date are refused like any bad value, never an internal error
    assert await api_error(
        sdk, "DescribeRoomInfo", {"SdkAppId": app, "StartTime": now - 60, "EndTime": 2**45}
    ) == ("InvalidParameter.EndTs")
    assert await api_error(
        sdk, "DescribeTrtcUsage", {"StartTime": "9999-12-31", "EndTime": "9999-12-31"}
    ) == ("InvalidParameter")
    assert (
        await api_error(
            sdk,
            "DescribeTRTCMarketScaleData",
            {"SdkAppId": str(app), "StartTime": "0001-01-01", "EndTime": "0001-01-01", "Period": "d"},
        )
        == "InvalidParameter"
    )
    other = await asyncio.to_thread(make_tenant, server, "rival")
    # (as another account: room usage answers one call per 15 s per account)
    assert (
        await api_error(
            trtc(server, other),
            "DescribeTrtcRoomUsage",
            {"SdkAppid": 1, "StartTime": "2026-01-01 00:00", "EndTime": "2026-01-01 01:00"},
        )
        == "FailedOperation.SdkAppIdNotExist"
    )
    assert (
        await api_error(
            trtc(server, other), "DescribeRoomInfo", {"SdkAppId": app, "StartTime": now - 60, "EndTime": now}
        )
        == "UnauthorizedOperation.SdkAppId"
    )


async def test_sparkrtc_statistics(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    t0, t1 = story["t0"], story["t1"]
    client = spark(server, tenant)
    app = tenant.app.app_id
    iso = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    window = {"start_time": iso(t0 - 60), "end_time": iso(time.time())}

    def call(fn: Any, req: Any) -> Any:
        return asyncio.to_thread(fn, req)

    rooms = await call(client.list_rtc_room_list, ListRtcRoomListRequest(app=app, **window))
    assert rooms.total == 1 and rooms.room_info_list[0].room_id == ROOM
    assert rooms.room_info_list[0].state == "CLOSED" and rooms.room_info_list[0].end_time != "-"
    running = await call(
        client.list_rtc_room_list, ListRtcRoomListRequest(app=app, state="RUNNING", **window)
    )
    assert running.total == 0
    users = await call(client.list_rtc_user_list, ListRtcUserListRequest(app=app, type="detail", **window))
    assert sorted(u.uid for u in users.users) == ["alice", "bob", "carol", "dave"]
    assert all(u.state == "OFFLINE" and u.leave_time != "-" for u in users.users)

    scale = await call(
        client.list_rtc_realtime_scale, ListRtcRealtimeScaleRequest(app=app, metric="OnlineUsers", **window)
    )
    assert scale.scale and max(p.value for p in scale.scale) <= 4

    at = iso((t0 + t1) / 2)
    dims = await call(
        client.list_rtc_realtime_scale_dimension,
        ListRtcRealtimeScaleDimensionRequest(app=app, metric="OnlineUsers", dimension="sdk", time=at),
    )
    assert sum(d.online_users for d in dims.dimensions) == 4

    net = await call(
        client.list_rtc_realtime_network,
        ListRtcRealtimeNetworkRequest(
            app=app, metric="VideoUpstreamExcellentTransRate", sdk_type="native", **window
        ),
    )
    assert net.network and min(p.value for p in net.network) < 1.0  # dave's uplink lost packets
    quality = await call(
        client.list_rtc_realtime_quality,
        ListRtcRealtimeQualityRequest(app=app, metric="VideoFreezeRate", sdk_type="webrtc", **window),
    )
    assert quality.quality and max(p.value for p in quality.quality) > 0

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    usage = await call(
        client.list_rtc_history_usage,
        ListRtcHistoryUsageRequest(app=app, metric="CommunicationDuration", start_date=today, end_date=today),
    )
    day = usage.usage[0]
    assert day.total_duration == day.video_sd + day.video_hd + day.video_hdp + day.audio
    assert 0.5 * 4 * (t1 - t0) - 4 < day.total_duration <= 4 * (t1 - t0) + 4
    assert day.video_hd > 0 and day.video_sd > 0

    qos = await call(
        client.list_rtc_client_qos_details,
        ListRtcClientQosDetailsRequest(app_id=app, room_id=ROOM, mid="vwidth,dwidth,vloss", **window),
    )
    series = {(d.uid, d.peerid, d.mid): d.data for d in qos.data}
    assert {p.value for p in series[("alice", "0", "vwidth")]} == {320, 960}
    assert 960 in {p.value for p in series[("bob", "alice", "dwidth")]}
    assert max(p.value for p in series[("dave", "0", "vloss")]) >= 10

    events = await call(
        client.list_rtc_abnormal_events, ListRtcAbnormalEventsRequest(app=app, limit=100, **window)
    )
    assert events.total >= 1
    kinds = {(e.uid, e.abnormal_factor, e.location, e.peer_uid) for e in events.events}
    assert any(uid == "dave" and factor in (11, 12) and loc == "local" for uid, factor, loc, _ in kinds), (
        kinds
    )
    assert all(e.stage == "communication" and e.abnormal_type in (2, 3) for e in events.events)
    dim = await call(
        client.list_rtc_abnormal_event_dimension,
        ListRtcAbnormalEventDimensionRequest(app=app, dimension="abnormal_type", **window),
    )
    assert dim.dimensions and all(d.user_count >= 1 and d.abnormal_factor is None for d in dim.dimensions)

    # documented errors: SparkRTC's own body, never a bare 404
    with pytest.raises(ClientRequestException) as ei:
        await call(
            client.list_rtc_room_list,
            ListRtcRoomListRequest(app=app, start_time=iso(t0 - 100 * 86400), end_time=iso(t0)),
        )
    assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001003")
    with pytest.raises(ClientRequestException) as ei:
        await call(
            client.list_rtc_realtime_scale,
            ListRtcRealtimeScaleRequest(app=app, metric="OnlineUsers", start_time="0001-01-01T00:00:00Z"),
        )
    assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001003")
    with pytest.raises(ClientRequestException) as ei:
        await call(client.list_rtc_abnormal_events, ListRtcAbnormalEventsRequest(app="nope"))
    assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001015")
    with pytest.raises(ClientRequestException) as ei:
        await call(
            client.list_rtc_realtime_scale, ListRtcRealtimeScaleRequest(app=app, metric="Nope", **window)
        )
    assert ei.value.error_code == "RTC.00001003"


async def test_prometheus_metrics(server: LiveServer, story: dict[str, Any]) -> None:
    tenant: Tenant = story["tenant"]
    alice = RoomClient(
        server.url,
        app_id=str(tenant.app.sdk_app_id),
        room_id="metrics",
        user_id="alice",
        token=issue_usersig(tenant.app, "alice"),
    )
    bob = RoomClient(
        server.url,
        app_id=str(tenant.app.sdk_app_id),
        room_id="metrics",
        user_id="bob",
        token=issue_usersig(tenant.app, "bob"),
    )
    try:
        await alice.connect()
        await alice.publish({TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack()})
        await bob.connect(auto_subscribe=True)
        await bob.wait_frames("alice/camera", 10)
        await asyncio.sleep(2.0)  # a few stats samples of the subscriptions

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            resp = httpx.get(f"{server.url}/metrics", timeout=10)
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(resp.text)
                for s in family.samples
            }

        got = await asyncio.to_thread(scrape)
        assert got[("roomcast_rooms", ())] == 1
        assert got[("roomcast_participants", (("hidden", "false"),))] == 2
        assert got[("roomcast_tracks", (("kind", "camera"),))] == 1
        assert got[("roomcast_tracks", (("kind", "audio"),))] == 1
        assert got[("roomcast_forwarded_bitrate_bps", ())] > 10_000
        assert 0 <= got[("roomcast_event_loop_lag_seconds", ())] < 5
    finally:
        await bob.close()
        await alice.close()
