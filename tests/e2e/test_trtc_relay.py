"""TRTC relay to CDN end to end with the official SDK: two synthetic publishers in a live room, a
grid mix pushed to two RTMP URLs of a real nginx-rtmp on loopback, read back with PyAV; a live
layout update seen on the same connection; the SEI; a single-stream relay; stop; the errors."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.api.trtc.usage import TRANSCODE_KEYS
from roomcast.media.sei import parse_sei
from roomcast.rtc.client import RoomClient
from roomcast.services.join_tokens import issue_usersig
from roomcast.stats.tiers import TIERS
from tests.api.conftest import Tenant, make_tenant
from tests.e2e.test_trtc_cloud_recording import call, publishers, req, sdk
from tests.support import avcheck
from tests.support.live import LiveServer, live_server
from tests.support.rtmp import RtmpServer, avcc_nals, capture, rtmp_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOM = "7777"
USERS = ["u1", "u2"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        Path(tmp_path_factory.mktemp("relay")) / "var",
        ice_host_addresses=["127.0.0.1"],
        empty_room_grace_s=5.0,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def rtmp() -> Iterator[RtmpServer]:
    with rtmp_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server, "relay")


def start_body(t: Tenant, urls: list[str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": ROOM,
        "RoomIdType": 1,
        "AgentParams": {
            "UserId": "relay-bot",
            "UserSig": issue_usersig(t.app, "relay-bot"),
            "MaxIdleTime": 30,
        },
        "WithTranscoding": 1,
        "AudioParams": {"AudioEncode": {"SampleRate": 48000, "Channel": 2, "BitRate": 64}},
        "VideoParams": {
            "VideoEncode": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 800, "Gop": 1},
            "LayoutParams": {"MixLayoutMode": 3},
        },
        "PublishCdnParams": [{"PublishCdnUrl": u, "IsTencentCdn": 0} for u in urls],
    }
    body.update(extra)
    return body


async def start(client: trtc_client.TrtcClient, body: dict[str, Any]) -> str:
    out = await call(client.StartPublishCdnStream, req(models.StartPublishCdnStreamRequest, body))
    assert out.TaskId
    return str(out.TaskId)


async def error_code(fn: Any, request: Any) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        await call(fn, request)
    return str(info.value.get_code())


def halves(path: Path, at: float) -> list[str | None]:
    frame = avcheck.frame_at(path, at)
    w, h = frame.width, frame.height
    return avcheck.region_users(
        frame, [(w // 8, h // 4, w // 4, h // 2), (5 * w // 8, h // 4, w // 4, h // 2)], USERS
    )


async def test_mix_to_two_urls_update_and_stop(
    server: LiveServer, rtmp: RtmpServer, tenant: Tenant, tmp_path: Path
) -> None:
    client = sdk(server, tenant)
    urls = [rtmp.url("mix-a"), rtmp.url("mix-b")]
    sei = {
        "LayoutVolume": {"AppData": "layout_sei_test", "PayloadType": 100, "Interval": 1000, "FollowIdr": 0},
        "PassThrough": {"PayloadContent": "hello-sei", "PayloadType": 5, "PayloadUuid": "0" * 31 + "1"},
    }
    async with publishers(server, tenant, USERS, room=ROOM):
        task_id = await start(client, start_body(tenant, urls, SeiParams=sei))
        await asyncio.sleep(1.5)
        # Both URLs play the same mix: size, rate, audio as requested, both users in their panes.
        got: dict[str, list[tuple[float, bytes, bool]]] = {}
        files = {u: tmp_path / f"{u.rsplit('/', 1)[1]}.mkv" for u in urls}

        def read(u: str) -> None:
            got[u] = capture(u, files[u], seconds=4.0)

        threads = [threading.Thread(target=read, args=(u,)) for u in urls]
        for th in threads:
            th.start()
        await asyncio.gather(*(asyncio.to_thread(th.join) for th in threads))
        for u in urls:
            info = avcheck.probe(files[u])
            assert info.video is not None and info.audio is not None
            assert (info.video.width, info.video.height) == (640, 360)
            assert info.video.codec == "h264"
            span = got[u][-1][0] - got[u][0][0]
            assert 12 <= (len(got[u]) - 1) / span <= 18, "about 15 frames per second"
            assert (info.audio.sample_rate, info.audio.channels) == (48000, 2)
            assert halves(files[u], 1.0) == ["u1", "u2"]  # grid: by join order
        # Both users are heard (a beep a second each; either capture, a loaded machine may lose one).
        for uid in USERS:
            assert any(avcheck.user_beeps(files[u], uid) for u in urls), f"{uid} is not heard"
        # SEI: the volume layout JSON and the pass-through payload, about once a second.
        layouts: list[dict[str, Any]] = []
        passed: list[bytes] = []
        for _, data, _ in got[urls[0]]:
            for nal in avcc_nals(data):
                if nal and nal[0] & 0x1F == 6:
                    for m in parse_sei(nal):
                        if m.payload_type == 100:
                            layouts.append(json.loads(m.payload))
                        elif m.payload_type == 5:
                            assert m.uuid == bytes.fromhex("0" * 31 + "1")
                            passed.append(m.payload)
        assert 2 <= len(layouts) <= 6 and 2 <= len(passed) <= 6
        doc = layouts[-1]
        assert doc["app_data"] == "layout_sei_test" and doc["canvas"] == {"w": 640, "h": 360}
        assert {r["uid"] for r in doc["regions"]} == set(USERS)
        assert all(0 <= r["volume"] <= 100 and r["w"] > 0 for r in doc["regions"])
        assert set(passed) == {b"hello-sei"}

        # A live update to a custom layout (u2 left, u1 right) shows on the same connection.
        cont = tmp_path / "continuous.mkv"
        reader = asyncio.create_task(asyncio.to_thread(capture, urls[0], cont, seconds=5.0))
        await asyncio.sleep(2.0)
        slots = [
            {
                "UserMediaStream": {"UserInfo": {"UserId": uid, "RoomId": ROOM, "RoomIdType": 1}},
                "ImageWidth": 320,
                "ImageHeight": 360,
                "LocationX": x,
                "LocationY": 0,
            }
            for uid, x in (("u2", 0), ("u1", 320))
        ]
        update = {
            "SdkAppId": tenant.app.sdk_app_id,
            "TaskId": task_id,
            "SequenceNumber": 5,
            "WithTranscoding": 1,
            "VideoParams": {"LayoutParams": {"MixLayoutMode": 4, "MixLayoutList": slots}},
        }
        out = await call(client.UpdatePublishCdnStream, req(models.UpdatePublishCdnStreamRequest, update))
        assert out.TaskId == task_id
        packets = await reader
        assert halves(cont, 0.5) == ["u1", "u2"]
        assert halves(cont, 4.5) == ["u2", "u1"]
        times = [t for t, _, _ in packets]
        assert max(b - a for a, b in itertools.pairwise(times)) < 0.5, "no timestamp jump"
        assert times[-1] - times[0] >= 4.5

        # The SequenceNumber must increase; codec parameters cannot change.
        assert (
            await error_code(client.UpdatePublishCdnStream, req(models.UpdatePublishCdnStreamRequest, update))
            == "FailedOperation"
        )
        codec = {
            **update,
            "SequenceNumber": 6,
            "VideoParams": {
                "VideoEncode": {"Width": 1280, "Height": 720, "Fps": 15, "BitRate": 800, "Gop": 1}
            },
        }
        assert (
            await error_code(client.UpdatePublishCdnStream, req(models.UpdatePublishCdnStreamRequest, codec))
            == "InvalidParameter"
        )
        switch = {**update, "SequenceNumber": 7, "WithTranscoding": 0}
        assert (
            await error_code(client.UpdatePublishCdnStream, req(models.UpdatePublishCdnStreamRequest, switch))
            == "UnsupportedOperation"
        )

        # Stop ends the stream.
        stop = {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}
        out = await call(client.StopPublishCdnStream, req(models.StopPublishCdnStreamRequest, stop))
        assert out.TaskId == task_id
        await asyncio.sleep(1.5)
        with pytest.raises(Exception):  # noqa: B017 - nginx has no such stream any more
            await asyncio.to_thread(capture, urls[0], tmp_path / "after.mkv", seconds=1.0, timeout=3.0)
        assert (
            await error_code(client.StopPublishCdnStream, req(models.StopPublishCdnStreamRequest, stop))
            == "ResourceNotFound"
        )


async def test_single_stream_relay(
    server: LiveServer, rtmp: RtmpServer, tenant: Tenant, tmp_path: Path
) -> None:
    client = sdk(server, tenant)
    url = rtmp.url("single")
    body = start_body(tenant, [url], WithTranscoding=0)
    body["AgentParams"]["UserId"] = "relay-single"
    body["AgentParams"]["UserSig"] = issue_usersig(tenant.app, "relay-single")
    body["VideoParams"] = {"VideoEncode": {"Width": 320, "Height": 180, "Fps": 15, "BitRate": 300, "Gop": 2}}
    body["SingleSubscribeParams"] = {"UserMediaStream": {"UserInfo": {"UserId": "u2", "RoomId": ROOM}}}
    async with publishers(server, tenant, USERS, room=ROOM):
        task_id = await start(client, body)
        await asyncio.sleep(1.5)
        path = tmp_path / "single.mkv"
        await asyncio.to_thread(capture, url, path, seconds=3.0)
        info = avcheck.probe(path)
        assert info.video is not None and info.audio is not None
        assert (info.video.width, info.video.height) == (320, 180)  # the publisher's own picture
        assert info.audio.codec == "aac"
        assert avcheck.region_users(path, [(40, 40, 240, 100)], USERS, at=1.0) == ["u2"]
        assert avcheck.user_beeps(path, "u2") and not avcheck.user_beeps(path, "u1")
        # A relay is not a recording.
        describe = {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}
        assert (
            await error_code(
                client.DescribeCloudRecording, req(models.DescribeCloudRecordingRequest, describe)
            )
            == "ResourceNotFound"
        )
        await call(
            client.StopPublishCdnStream,
            req(models.StopPublishCdnStreamRequest, {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}),
        )


async def test_documented_errors(server: LiveServer, rtmp: RtmpServer, tenant: Tenant) -> None:
    client = sdk(server, tenant)
    start_req = models.StartPublishCdnStreamRequest
    url = rtmp.url("errors")

    async def code(body: dict[str, Any]) -> str:
        return await error_code(client.StartPublishCdnStream, req(start_req, body))

    assert await code({**start_body(tenant, [url]), "PublishCdnParams": []}) == "MissingParameter"
    assert await code(start_body(tenant, ["http://127.0.0.1/live/x"])) == "InvalidParameter"
    assert await code(start_body(tenant, ["rtmp://127.0.0.1:1935/"])) == "InvalidParameter"
    assert await code(start_body(tenant, [rtmp.url(f"s{i}") for i in range(11)])) == "InvalidParameter"
    assert await code(start_body(tenant, [url], WithTranscoding=0)) == "MissingParameter"
    single = {"UserMediaStream": {"UserInfo": {"UserId": "u1"}}}
    assert await code(start_body(tenant, [url], SingleSubscribeParams=single)) == "InvalidParameter"
    assert (
        await code({**start_body(tenant, [url]), "RoomIdType": 0, "RoomId": "abc"})
        == "InvalidParameter.RoomId"
    )
    assert (
        await code({**start_body(tenant, [url]), "AudioParams": None, "VideoParams": None})
        == "InvalidParameter"
    )
    bad_sig = start_body(tenant, [url])
    bad_sig["AgentParams"]["UserSig"] = "nope"
    assert await code(bad_sig) == "InvalidParameter.UserSig"
    bad_encode = start_body(tenant, [url])
    bad_encode["VideoParams"]["VideoEncode"]["Width"] = 641
    assert await code(bad_encode) == "InvalidParameter"
    bad_sei = start_body(tenant, [url], SeiParams={"LayoutVolume": {"PayloadType": 244}})
    assert await code(bad_sei) == "InvalidParameter"
    async with publishers(server, tenant, ["taken"], room=ROOM):
        taken = start_body(tenant, [url])
        taken["AgentParams"] = {"UserId": "taken", "UserSig": issue_usersig(tenant.app, "taken")}
        assert await code(taken) == "InvalidParameter.UserId"
    for fn, model, body in (
        (client.StopPublishCdnStream, models.StopPublishCdnStreamRequest, {}),
        (
            client.UpdatePublishCdnStream,
            models.UpdatePublishCdnStreamRequest,
            {"SequenceNumber": 1, "WithTranscoding": 1},
        ),
    ):
        full = {"SdkAppId": tenant.app.sdk_app_id, "TaskId": "no-such-task", **body}
        assert await error_code(fn, req(model, full)) == "ResourceNotFound"


async def test_feedback_into_another_room(server: LiveServer, tenant: Tenant) -> None:
    client = sdk(server, tenant)
    body = start_body(tenant, [])
    body.pop("PublishCdnParams")
    body["AgentParams"]["UserId"] = "relay-fb"
    body["AgentParams"]["UserSig"] = issue_usersig(tenant.app, "relay-fb")
    body["FeedBackRoomParams"] = [
        {
            "RoomId": "7778",
            "RoomIdType": 1,
            "UserId": "mix-bot",
            "UserSig": issue_usersig(tenant.app, "mix-bot"),
        }
    ]
    async with publishers(server, tenant, USERS, room=ROOM):
        task_id = await start(client, body)
        viewer = RoomClient(
            server.url,
            app_id=str(tenant.app.sdk_app_id),
            room_id="7778",
            user_id="viewer",
            token=issue_usersig(tenant.app, "viewer"),
            decode=True,
        )
        try:
            await viewer.connect(auto_subscribe=True)
            assert await viewer.wait_frames("mix-bot/camera", 15, time_limit=20) >= 15
            assert await viewer.wait_frames("mix-bot/audio", 20, time_limit=10) >= 20
            # The robot is a user of that room like any other.
            sfu = server.app.state.sfu
            kinds = {
                t.kind.value
                for t in sfu.list_tracks(str(tenant.app.sdk_app_id), "7778")
                if t.user_id == "mix-bot"
            }
            assert kinds == {"camera", "audio"}
            # A second feedback relay may not publish as the same robot in that room.
            other = start_body(tenant, [])
            other.pop("PublishCdnParams")
            other["AgentParams"] = {"UserId": "relay-fb2"}
            other["FeedBackRoomParams"] = body["FeedBackRoomParams"]
            assert (
                await error_code(
                    client.StartPublishCdnStream, req(models.StartPublishCdnStreamRequest, other)
                )
                == "InvalidParameter.UserId"
            )
        finally:
            await viewer.close()
        await call(
            client.StopPublishCdnStream,
            req(models.StopPublishCdnStreamRequest, {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}),
        )


async def test_a_relay_survives_a_restart(rtmp: RtmpServer, tmp_path: Path) -> None:
    data = tmp_path / "var"
    url = rtmp.url("restart")
    with live_server(data, ice_host_addresses=["127.0.0.1"], stats_flush_s=0.5) as first:
        t = await asyncio.to_thread(make_tenant, first, "restart")
        body = start_body(t, [url])
        body["AgentParams"]["MaxIdleTime"] = 120  # nobody publishes: the canvas is relayed
        task_id = await start(sdk(first, t), body)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(capture, url, tmp_path / "before.mkv", seconds=1.0)
    # The node stopped without stopping the relay; the next one on the same database pushes again.
    with live_server(data, ice_host_addresses=["127.0.0.1"], stats_flush_s=0.5) as second:
        client = sdk(second, t)
        await asyncio.sleep(2.0)
        packets = await asyncio.to_thread(capture, url, tmp_path / "after.mkv", seconds=1.5)
        assert len(packets) >= 15
        stop = {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id}
        out = await call(client.StopPublishCdnStream, req(models.StopPublishCdnStreamRequest, stop))
        assert out.TaskId == task_id
        await asyncio.sleep(1.0)

        # Usage through the SDK: relay and transcoding minutes at the mix's tier (640x360: SD),
        # both nodes' shares, each counted once (the second node does not count the first's again).
        today = datetime.now(UTC).date()
        period = {
            "SdkAppId": t.app.sdk_app_id,
            "StartTime": (today - timedelta(days=1)).isoformat(),
            "EndTime": (today + timedelta(days=1)).isoformat(),
        }
        relay = await call(client.DescribeRelayUsage, req(models.DescribeRelayUsageRequest, period))
        mix = await call(
            client.DescribeMixTranscodingUsage, req(models.DescribeMixTranscodingUsageRequest, period)
        )
    for answer, tier, keys in ((relay, "SD", TIERS), (mix, "SDH264", TRANSCODE_KEYS)):
        assert list(answer.UsageKey) == list(keys) and len(answer.UsageList) == 3
        sums = [sum(item.UsageValue[i] for item in answer.UsageList) for i in range(len(keys))]
        minutes = dict(zip(keys, sums, strict=True))
        assert 4 / 60 < minutes.pop(tier) < 1.0  # a few seconds on each node
        assert not any(minutes.values())


async def test_custom_layout_users_without_a_slot_are_not_heard(
    server: LiveServer, rtmp: RtmpServer, tenant: Tenant, tmp_path: Path
) -> None:
    client = sdk(server, tenant)
    url = rtmp.url("custom-audio")
    body = start_body(tenant, [url])
    body["AgentParams"]["UserId"] = "relay-custom"
    body["AgentParams"]["UserSig"] = issue_usersig(tenant.app, "relay-custom")
    body["VideoParams"]["LayoutParams"] = {
        "MixLayoutMode": 4,
        "MixLayoutList": [
            {"UserMediaStream": {"UserInfo": {"UserId": "u1"}}, "ImageWidth": 320, "ImageHeight": 360}
        ],
    }
    async with publishers(server, tenant, USERS, room=ROOM):
        task_id = await start(client, body)
        await asyncio.sleep(1.5)
        path = tmp_path / "custom.mkv"
        await asyncio.to_thread(capture, url, path, seconds=3.0)
        assert avcheck.user_beeps(path, "u1") and not avcheck.user_beeps(path, "u2")
        await call(
            client.StopPublishCdnStream,
            req(models.StopPublishCdnStreamRequest, {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}),
        )


async def test_dismissing_the_room_ends_its_relays(
    server: LiveServer, rtmp: RtmpServer, tenant: Tenant
) -> None:
    client = sdk(server, tenant)
    body = start_body(tenant, [rtmp.url("dismissed")])
    body["AgentParams"]["UserId"] = "relay-dismissed"
    body["AgentParams"].pop("UserSig")
    async with publishers(server, tenant, ["d1"], room=ROOM):
        task_id = await start(client, body)
        await asyncio.sleep(1.0)
        await call(
            client.DismissRoomByStrRoomId,
            req(models.DismissRoomByStrRoomIdRequest, {"SdkAppId": tenant.app.sdk_app_id, "RoomId": ROOM}),
        )
        await asyncio.sleep(1.0)
    stop = {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}
    assert await error_code(client.StopPublishCdnStream, req(models.StopPublishCdnStreamRequest, stop)) == (
        "ResourceNotFound"
    )


async def test_feedback_robots_are_not_mixed_by_other_feedback_relays(
    server: LiveServer, tenant: Tenant
) -> None:
    client = sdk(server, tenant)

    def feedback_body(agent: str, room: str, into: str, robot: str) -> dict[str, Any]:
        body = start_body(tenant, [])
        body.pop("PublishCdnParams")
        body["RoomId"] = room
        body["AgentParams"] = {"UserId": agent}
        body["FeedBackRoomParams"] = [
            {"RoomId": into, "RoomIdType": 1, "UserId": robot, "UserSig": issue_usersig(tenant.app, robot)}
        ]
        return body

    relays = server.app.state.runtime.relays
    async with (
        publishers(server, tenant, ["p1"], room="7790"),
        publishers(server, tenant, ["p2"], room="7791"),
    ):
        first = await start(client, feedback_body("agent-a", "7790", "7791", "bot-a"))  # 7790 -> 7791
        second = await start(client, feedback_body("agent-b", "7791", "7792", "bot-b"))  # 7791 -> 7792
        sfu = server.app.state.sfu
        for _ in range(100):
            if any(t.user_id == "bot-a" for t in sfu.list_tracks(str(tenant.app.sdk_app_id), "7791")):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        mixed = {p.user_id for p in relays.job(second)._recorder.participants}
        assert mixed == {"p2"}, "bot-a publishes in 7791 but another feedback relay does not mix it"
        for task_id in (first, second):
            await call(
                client.StopPublishCdnStream,
                req(
                    models.StopPublishCdnStreamRequest, {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}
                ),
            )


async def test_update_moves_the_cdn_list_and_the_audio_list(
    server: LiveServer, rtmp: RtmpServer, tenant: Tenant, tmp_path: Path
) -> None:
    client = sdk(server, tenant)
    old_url, new_url = rtmp.url("list-old"), rtmp.url("list-new")
    body = start_body(tenant, [old_url])
    body["AgentParams"] = {"UserId": "relay-lists"}
    async with publishers(server, tenant, USERS, room=ROOM):
        task_id = await start(client, body)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(capture, old_url, tmp_path / "old.mkv", seconds=1.0)
        update = {
            "SdkAppId": tenant.app.sdk_app_id,
            "TaskId": task_id,
            "SequenceNumber": 1,
            "WithTranscoding": 1,
            "PublishCdnParams": [{"PublishCdnUrl": new_url, "IsTencentCdn": 0}],
            "AudioParams": {"SubscribeAudioList": [{"UserInfo": {"UserId": "u2"}}]},
        }
        await call(client.UpdatePublishCdnStream, req(models.UpdatePublishCdnStreamRequest, update))
        await asyncio.sleep(2.0)
        path = tmp_path / "new.mkv"
        await asyncio.to_thread(capture, new_url, path, seconds=3.0)
        assert avcheck.user_beeps(path, "u2") and not avcheck.user_beeps(path, "u1")
        assert halves(path, 1.0) == ["u1", "u2"]  # the audio list does not change the picture
        with pytest.raises(Exception):  # noqa: B017 - the old URL is no longer pushed to
            await asyncio.to_thread(capture, old_url, tmp_path / "gone.mkv", seconds=1.0, timeout=3.0)
        # An empty list ("" or []) resets the allowlist: everyone is heard again.
        reset = {
            **update,
            "SequenceNumber": 2,
            "PublishCdnParams": None,
            "AudioParams": {"SubscribeAudioList": []},
        }
        await call(client.UpdatePublishCdnStream, req(models.UpdatePublishCdnStreamRequest, reset))
        await asyncio.sleep(1.5)
        again = tmp_path / "again.mkv"
        await asyncio.to_thread(capture, new_url, again, seconds=3.0)
        assert avcheck.user_beeps(again, "u1") and avcheck.user_beeps(again, "u2")
        await call(
            client.StopPublishCdnStream,
            req(models.StopPublishCdnStreamRequest, {"SdkAppId": tenant.app.sdk_app_id, "TaskId": task_id}),
        )
