"""Rooms through the whole server: join tokens, real media, moderation via the official SDKs, records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcloudrtc.v2 import CloudRTCClient, RemoveRoomRequest, RemoveUsersReq, RemoveUsersRequest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.rtc.client import ClientError, RoomClient
from roomcast.rtc.testing import ColorVideoTrack, ToneAudioTrack
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.activity import ActivityRecorder
from roomcast.services.join_tokens import issue_jwt, issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = Path(tmp_path_factory.mktemp("rooms")) / "var"
    with live_server(
        data,
        ice_host_addresses=["127.0.0.1"],
        empty_room_grace_s=0.5,
        stats_interval_s=0.5,
        max_participants_per_room=3,
    ) as srv:
        yield srv


@pytest.fixture
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server)


def trtc(server: LiveServer, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def spark(server: LiveServer, t: Tenant) -> CloudRTCClient:
    creds = BasicCredentials(t.creds.secret_id, t.creds.secret_key, t.creds.project_id)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([server.url]).build()


def member(server: LiveServer, t: Tenant, user: str, room: str = "1234") -> RoomClient:
    return RoomClient(
        server.url, app_id=str(t.app.sdk_app_id), room_id=room, user_id=user, token=issue_usersig(t.app, user)
    )


def tracks(color: tuple[int, int]) -> Any:
    return {TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack(color=color)}


async def frames_flow(c: RoomClient, track_id: str, within: float = 3.0) -> bool:
    before = c.received.frames(track_id)
    await asyncio.sleep(within)
    return c.received.frames(track_id) > before + 3


def call(fn: Any, req: Any) -> Any:
    return asyncio.to_thread(fn, req)


async def test_trtc_block_remove_and_sparkrtc_dismiss(server: LiveServer, tenant: Tenant) -> None:
    alice, bob = member(server, tenant, "alice"), member(server, tenant, "bob")
    sdk = trtc(server, tenant)
    try:
        await alice.connect(auto_subscribe=True)
        await bob.connect(auto_subscribe=True)
        await alice.publish(tracks((90, 200)))
        await bob.publish(tracks((200, 90)))
        await bob.wait_frames("alice/camera", 10)
        await bob.wait_frames("alice/audio", 10)
        await alice.wait_frames("bob/camera", 10)

        # Block alice's video only (IsMute=3): bob stops getting her video, keeps her audio.
        # The China-site Python SDK has no SetUserBlocked model (the intl-site one does), so the
        # official client's generic call is used.
        req: dict[str, Any] = {
            "SdkAppId": tenant.app.sdk_app_id,
            "RoomId": 1234,
            "UserId": "alice",
            "IsMute": 3,
        }
        await asyncio.to_thread(sdk.call_json, "SetUserBlocked", req)
        await bob.wait_event("media_blocked", lambda m: m["user_id"] == "alice")
        await asyncio.sleep(0.5)
        assert not await frames_flow(bob, "alice/camera", 1.5)
        assert await frames_flow(bob, "alice/audio", 1.0)
        # Unblock (IsMute=0): video comes back.
        req["IsMute"] = 0
        await asyncio.to_thread(sdk.call_json, "SetUserBlocked", req)
        await bob.wait_event("media_unblocked", lambda m: m["user_id"] == "alice")
        assert await frames_flow(bob, "alice/camera", 2.0)

        # Remove bob: his connection really drops, alice sees him leave.
        rm = models.RemoveUserRequest()
        rm.SdkAppId, rm.RoomId, rm.UserIds = tenant.app.sdk_app_id, 1234, ["bob"]
        await call(sdk.RemoveUser, rm)
        await asyncio.wait_for(bob.closed.wait(), 10)
        assert bob.close_code == 4001
        await alice.wait_event(
            "participant_left", lambda m: m["user_id"] == "bob" and m["reason"] == "removed"
        )

        # SparkRTC dismisses the room: alice is disconnected with the dismiss code.
        resp = await call(
            spark(server, tenant).remove_room, RemoveRoomRequest(app_id=tenant.app.app_id, room_id="1234")
        )
        assert resp.status_code == 202
        await asyncio.wait_for(alice.closed.wait(), 10)
        assert alice.close_code == 4002
    finally:
        await alice.close()
        await bob.close()

    # Everything was recorded: sessions with reasons and addresses, events, quality samples.
    async def records(rt: Runtime) -> tuple[Any, Any, int]:
        rec = ActivityRecorder(rt.db.sessions, None)  # type: ignore[arg-type]
        for _ in range(50):
            sessions = await rec.user_sessions(str(tenant.app.sdk_app_id), "1234")
            if all(s.left_at for s in sessions) and len(sessions) == 2:
                break
            await asyncio.sleep(0.2)
        return (
            sessions,
            await rec.event_types(str(tenant.app.sdk_app_id), "1234"),
            await rec.sample_count(str(tenant.app.sdk_app_id), "1234"),
        )

    sessions, events, samples = await asyncio.to_thread(server.run, records)
    by_user = {s.user_id: s for s in sessions}
    assert by_user["bob"].leave_reason == "removed" and by_user["alice"].leave_reason == "dismissed"
    assert by_user["alice"].ip == "127.0.0.1" and by_user["alice"].user_agent
    types = set(events)
    for expected in [
        ("alice", "participant_joined"),
        ("alice", "track_published"),
        ("alice", "media_blocked"),
        ("alice", "media_unblocked"),
        ("bob", "participant_removed"),
        ("bob", "participant_left"),
    ]:
        assert expected in types, (expected, types)
    assert samples > 0


async def test_sparkrtc_batch_remove(server: LiveServer, tenant: Tenant) -> None:
    carol = member(server, tenant, "carol", room="spark-room")
    dave = member(server, tenant, "dave", room="spark-room")
    client = spark(server, tenant)
    try:
        await carol.connect()
        await dave.connect()
        resp = await call(
            client.remove_users,
            RemoveUsersRequest(
                app_id=tenant.app.app_id, room_id="spark-room", body=RemoveUsersReq(user_ids=["dave"])
            ),
        )
        assert resp.status_code == 202
        await asyncio.wait_for(dave.closed.wait(), 10)
        assert dave.close_code == 4001 and not carol.closed.is_set()
        with pytest.raises(ClientRequestException) as ei:
            await call(client.remove_room, RemoveRoomRequest(app_id=tenant.app.app_id, room_id="nope"))
        assert (ei.value.status_code, ei.value.error_code) == (404, "RTC.00001003")
        with pytest.raises(ClientRequestException) as ei:
            await call(
                client.remove_users,
                RemoveUsersRequest(
                    app_id=tenant.app.app_id, room_id="nope", body=RemoveUsersReq(user_ids=["x"])
                ),
            )
        assert (ei.value.status_code, ei.value.error_code) == (400, "RTC.00001003")
        other = await asyncio.to_thread(make_tenant, server, "other")
        with pytest.raises(ClientRequestException) as ei:
            await call(
                spark(server, other).remove_room,
                RemoveRoomRequest(app_id=tenant.app.app_id, room_id="spark-room"),
            )
        assert ei.value.error_code == "RTC.00001015"
        assert not carol.closed.is_set()
    finally:
        await carol.close()
        await dave.close()


async def test_trtc_room_errors(server: LiveServer, tenant: Tenant) -> None:
    sdk = trtc(server, tenant)
    erin = member(server, tenant, "erin", room="errs")
    try:
        await erin.connect()

        def expect(fn: Any, req: Any, code: str) -> None:
            with pytest.raises(TencentCloudSDKException) as ei:
                fn(req)
            assert ei.value.get_code() == code, ei.value

        rm = models.RemoveUserByStrRoomIdRequest()
        rm.SdkAppId, rm.RoomId, rm.UserIds = tenant.app.sdk_app_id, "no-such-room", ["x"]
        await asyncio.to_thread(expect, sdk.RemoveUserByStrRoomId, rm, "FailedOperation.RoomNotExist")
        rm.RoomId, rm.UserIds = "errs", [f"u{i}" for i in range(11)]
        await asyncio.to_thread(expect, sdk.RemoveUserByStrRoomId, rm, "InvalidParameter.UserIds")
        blk: dict[str, Any] = {
            "SdkAppId": tenant.app.sdk_app_id,
            "StrRoomId": "errs",
            "UserId": "ghost",
            "IsMute": 1,
        }

        def block(params: dict[str, Any]) -> Any:
            return sdk.call_json("SetUserBlockedByStrRoomId", params)

        await asyncio.to_thread(expect, block, blk, "FailedOperation.UserNotExist")
        blk.update(UserId="erin", IsMute=7)
        await asyncio.to_thread(expect, block, blk, "InvalidParameter")
        dis = models.DismissRoomRequest()
        dis.SdkAppId, dis.RoomId = tenant.app.sdk_app_id, 0
        await asyncio.to_thread(expect, sdk.DismissRoom, dis, "InvalidParameter.RoomId")
        dis.SdkAppId, dis.RoomId = (await asyncio.to_thread(make_tenant, server, "x")).app.sdk_app_id, 5
        await asyncio.to_thread(expect, sdk.DismissRoom, dis, "UnauthorizedOperation.SdkAppId")
        ok = models.DismissRoomByStrRoomIdRequest()
        ok.SdkAppId, ok.RoomId = tenant.app.sdk_app_id, "errs"
        await asyncio.to_thread(sdk.DismissRoomByStrRoomId, ok)
        await asyncio.wait_for(erin.closed.wait(), 10)
        assert erin.close_code == 4002
    finally:
        await erin.close()


async def test_bad_tokens_and_limits(server: LiveServer, tenant: Tenant) -> None:
    other = await asyncio.to_thread(make_tenant, server, "mallory")
    app = str(tenant.app.sdk_app_id)
    cases = [
        RoomClient(server.url, app_id=app, room_id="r", user_id="u1", token="garbage"),
        RoomClient(
            server.url, app_id=app, room_id="r", user_id="u1", token=issue_usersig(tenant.app, "someone-else")
        ),
        RoomClient(server.url, app_id=app, room_id="r", user_id="u1", token=issue_usersig(other.app, "u1")),
        RoomClient(
            server.url, app_id=app, room_id="r", user_id="u1", token=issue_jwt(tenant.app, "u1", room_id="r9")
        ),
        RoomClient(
            server.url, app_id="999", room_id="r", user_id="u1", token=issue_usersig(tenant.app, "u1")
        ),
    ]
    for c in cases:
        with pytest.raises(ClientError) as ei:
            await c.connect()
        assert ei.value.code == "unauthorized"
        await c.close()

    # The room limit (3 here) refuses the fourth participant with a clear error.
    members = [member(server, tenant, f"m{i}", room="full") for i in range(4)]
    try:
        for m in members[:3]:
            await m.connect()
        with pytest.raises(ClientError) as ei:
            await members[3].connect()
        assert ei.value.code == "room_full"
    finally:
        for m in members:
            await m.close()
