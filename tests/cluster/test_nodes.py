"""Two ``roomcast serve`` processes on one PostgreSQL and one Redis: one service.

Joins through either node reach the room's node, moderation sent to the other node acts on the
room, throttling is shared, a killed node's room moves to the survivor when its clients
reconnect, and a Redis outage keeps the rooms running and recovers when Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from huaweicloudsdkcloudrtc.v2 import CloudRTCClient, RemoveRoomRequest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from sqlalchemy import select
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.config import Settings
from roomcast.rtc.client import ClientError, RoomClient, WhepViewer, WhipPublisher
from roomcast.rtc.testing import ColorVideoTrack, ToneAudioTrack
from roomcast.rtc.track import TrackKind
from roomcast.runtime import Runtime
from roomcast.services.join_tokens import issue_usersig
from roomcast.services.tasks import TaskService
from roomcast.store.tables import NodeRow
from tests.api.conftest import Tenant
from tests.e2e.test_trtc_cloud_recording import req
from tests.support.nodes import LEASE_S, Node, Nodes

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]


def member(node: Node, t: Tenant, user: str, room: str) -> RoomClient:
    return RoomClient(
        node.url, app_id=str(t.app.sdk_app_id), room_id=room, user_id=user, token=issue_usersig(t.app, user)
    )


def tracks(color: tuple[int, int]) -> Any:
    return {TrackKind.AUDIO: ToneAudioTrack(), TrackKind.CAMERA: ColorVideoTrack(color=color)}


def trtc(node: Node, t: Tenant) -> trtc_client.TrtcClient:
    prof = ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{node.port}", protocol="http"))
    return trtc_client.TrtcClient(
        credential.Credential(t.creds.secret_id, t.creds.secret_key), "ap-guangzhou", prof
    )


def spark(node: Node, t: Tenant) -> CloudRTCClient:
    creds = BasicCredentials(t.creds.secret_id, t.creds.secret_key, t.creds.project_id)
    return CloudRTCClient.new_builder().with_credentials(creds).with_endpoints([node.url]).build()


async def frames_flow(c: RoomClient, track_id: str, within: float = 2.0) -> bool:
    before = c.received.frames(track_id)
    await asyncio.sleep(within)
    return c.received.frames(track_id) > before + 3


def remove_user(node: Node, t: Tenant, room: int, user: str) -> Any:
    rm = models.RemoveUserRequest()
    rm.SdkAppId, rm.RoomId, rm.UserIds = t.app.sdk_app_id, room, [user]
    return asyncio.to_thread(trtc(node, t).RemoveUser, rm)


async def test_joins_through_either_node_meet_and_moderation_reaches_the_room(
    cluster: Nodes, tenant: Tenant
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    alice, bob = member(a, tenant, "alice", "101"), member(b, tenant, "bob", "101")
    try:
        await alice.connect(auto_subscribe=True)
        await bob.connect(auto_subscribe=True)
        # One of the two was sent on to the other's node: both are in one room on one node.
        assert cluster.serving(alice) is cluster.serving(bob)
        assert bool(alice.node_id) != bool(bob.node_id)
        await alice.publish(tracks((90, 200)))
        await bob.publish(tracks((200, 90)))
        await bob.wait_frames("alice/camera", 10)
        await alice.wait_frames("bob/camera", 10)
        await alice.wait_frames("bob/audio", 10)

        home = cluster.serving(alice)
        away = cluster.other(home)
        # The native API of the other node lists the room and shows who is in it, and blocks.
        async with httpx.AsyncClient(
            base_url=f"{away.url}/api/v1", auth=(tenant.creds.secret_id, tenant.creds.secret_key)
        ) as native:
            app_ref = tenant.app.app_id
            listed = (await native.get(f"/apps/{app_ref}/rooms")).json()
            assert [(r["room_id"], r["participants"]) for r in listed] == [("101", 2)], listed
            detail = (await native.get(f"/apps/{app_ref}/rooms/101")).json()
            assert [u["user_id"] for u in detail["users"]] == ["alice", "bob"], detail
            assert {t["track_id"] for u in detail["users"] for t in u["tracks"]} >= {
                "alice/camera",
                "bob/camera",
            }
            resp = await native.post(f"/apps/{app_ref}/rooms/101/users/alice/block", json={"video": True})
            assert resp.status_code == 204, resp.text
            await bob.wait_event("media_blocked", lambda m: m["user_id"] == "alice")
            detail = (await native.get(f"/apps/{app_ref}/rooms/101")).json()
            alice_tracks = {t["track_id"]: t["blocked"] for t in detail["users"][0]["tracks"]}
            assert alice_tracks["alice/camera"] and not alice_tracks["alice/audio"], detail
            assert (await native.get(f"/apps/{app_ref}/rooms/nope")).status_code == 404

        # RemoveUser sent to the node that does not serve the room removes bob there.
        await remove_user(away, tenant, 101, "bob")
        await asyncio.wait_for(bob.closed.wait(), 10)
        assert bob.close_code == 4001
        await alice.wait_event(
            "participant_left", lambda m: m["user_id"] == "bob" and m["reason"] == "removed"
        )

        # A room no node serves: the dialect's own error, from either node.
        for node in (a, b):
            with pytest.raises(TencentCloudSDKException) as exc:
                await remove_user(node, tenant, 999, "bob")
            assert exc.value.code == "FailedOperation.RoomNotExist"

        # WHIP through the other node is redirected (307) to the room's node; WHEP too.
        token = issue_usersig(tenant.app, "carol")
        app = tenant.app.sdk_app_id
        whip = await WhipPublisher.start(f"{away.url}/rtc/whip/{app}/101/carol", token, tracks((40, 40)))
        assert f":{home.port}/" in whip.resource_url
        viewer_token = issue_usersig(tenant.app, "dave")
        whep = await WhepViewer.start(f"{away.url}/rtc/whep/{app}/101/dave?publisher=carol", viewer_token)
        assert f":{home.port}/" in whep.resource_url
        await whep.received.wait_frames("video0", 10)
        await alice.wait_frames("carol/camera", 10)
        assert await whep.stop() == 200
        assert await whip.stop() == 200

        # A SparkRTC dismiss through the other node ends the room.
        resp = await asyncio.to_thread(
            spark(away, tenant).remove_room, RemoveRoomRequest(app_id=tenant.app.app_id, room_id="101")
        )
        assert resp.status_code == 202
        await asyncio.wait_for(alice.closed.wait(), 10)
        assert alice.close_code == 4002
    finally:
        await alice.close()
        await bob.close()


async def _task(cluster: Nodes, sdk_app_id: int, task_id: str) -> tuple[Any, list[Any]]:
    rt = await Runtime.open(Settings(data_dir=cluster.data, database_url=cluster.pg))
    try:
        tasks = TaskService(rt.db.sessions, rt.box)
        return await tasks.get(sdk_app_id, task_id), await tasks.files(task_id)
    finally:
        await rt.close()


async def _node_id(cluster: Nodes, node: Node) -> str:
    rt = await Runtime.open(Settings(data_dir=cluster.data, database_url=cluster.pg))
    try:
        async with rt.db.sessions() as s:
            rows = (await s.execute(select(NodeRow).where(NodeRow.state == "alive"))).scalars()
            return next(r.node_id for r in rows if r.public_url == node.url)
    finally:
        await rt.close()


def _vod_body(t: Tenant, room: str) -> dict[str, Any]:
    """A per-user recording to roomcast's media library (no object store needed)."""
    return {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": room,
        "UserId": f"rec-{room}",
        "UserSig": issue_usersig(t.app, f"rec-{room}"),
        "RecordParams": {"RecordMode": 1, "MaxIdleTime": 30, "OutputFormat": 3, "AvMerge": 1},
        "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 0}}},
    }


async def _until_stored(cluster: Nodes, app: int, task_id: str) -> tuple[Any, list[Any]]:
    for _ in range(150):
        task, files = await _task(cluster, app, task_id)
        if task.state.value == "exited" and files and all(f.state in ("stored", "failed") for f in files):
            break
        await asyncio.sleep(0.2)
    assert task.state.value == "exited", task
    return task, files


async def test_a_recording_started_on_the_other_node_records_the_room(cluster: Nodes, tenant: Tenant) -> None:
    a = cluster.nodes["a"]
    kim = member(a, tenant, "kim", "404")
    app = tenant.app.sdk_app_id
    try:
        await kim.connect()
        await kim.publish(tracks((200, 200)))
        home = cluster.serving(kim)
        away = cluster.other(home)
        client = trtc(away, tenant)
        created = await asyncio.to_thread(
            client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, _vod_body(tenant, "404"))
        )
        task_id = created.TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, home)  # run where the room is
        await asyncio.sleep(1.5)
        # Modified through the other node too: the new user selection reaches the task's node.
        subscribe = {"SubscribeAudioUserIds": ["kim", "nobody"], "SubscribeVideoUserIds": ["kim"]}
        await asyncio.to_thread(
            client.ModifyCloudRecording,
            req(
                models.ModifyCloudRecordingRequest,
                {"SdkAppId": app, "TaskId": task_id, "SubscribeStreamUserIds": subscribe},
            ),
        )
        task, _ = await _task(cluster, app, task_id)
        assert "nobody" in json.dumps(task.spec), task.spec
        await asyncio.sleep(1.5)
        # Stopped through the other node too.
        await asyncio.to_thread(
            client.DeleteCloudRecording,
            req(models.DeleteCloudRecordingRequest, {"SdkAppId": app, "TaskId": task_id}),
        )
        task, files = await _until_stored(cluster, app, task_id)
        assert files and all(f.state == "stored" and (f.size or 0) > 1000 for f in files), files
        assert max(f.duration_ms or 0 for f in files) > 1500, files
    finally:
        await kim.close()


async def test_throttling_is_shared_by_the_nodes(cluster: Nodes, tenant: Tenant) -> None:
    # SparkRTC room calls: 60 per minute per account. Alternating between two nodes, 80 calls
    # get about 60 through (each node alone would let all 80 pass: 40 each).
    clients = [spark(n, tenant) for n in cluster.nodes.values()]

    def one(i: int) -> int:
        try:
            clients[i % 2].remove_room(RemoveRoomRequest(app_id=tenant.app.app_id, room_id="nobody-here"))
        except ClientRequestException as exc:
            return int(exc.status_code)
        return 202

    started = time.monotonic()
    codes = [await asyncio.to_thread(one, i) for i in range(80)]
    elapsed = time.monotonic() - started
    assert set(codes) <= {404, 429}, codes
    passed = codes.count(404)
    # 60, less what earlier tests of this account spent, plus one a second of refill.
    assert 55 <= passed <= 60 + elapsed + 1, (elapsed, codes)
    assert codes[:55] == [404] * 55 and 429 in codes, codes


async def test_a_killed_node_s_room_moves_to_the_survivor(cluster: Nodes, tenant: Tenant) -> None:
    a = cluster.nodes["a"]
    erin, frank = member(a, tenant, "erin", "202"), member(a, tenant, "frank", "202")
    try:
        await erin.connect(auto_subscribe=True)
        await erin.publish(tracks((10, 220)))
        dead = cluster.serving(erin)
        survivor = cluster.other(dead)
        # A recording of the room runs on the node that will die.
        app = tenant.app.sdk_app_id
        client = trtc(survivor, tenant)
        created = await asyncio.to_thread(
            client.CreateCloudRecording, req(models.CreateCloudRecordingRequest, _vod_body(tenant, "202"))
        )
        task_id = created.TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, dead)
        await asyncio.sleep(2)
        survivor_id = await _node_id(cluster, survivor)
        cluster.kill(dead.name)
        await asyncio.wait_for(erin.closed.wait(), 15)

        assert erin.close_code == 1006

        # Clients reconnect through the survivor; once the dead node's lease ran out the room
        # is placed there (until then the join is sent to the dead node, refused, and retried).
        # erin rejoins with her session's tracks; frank is new.
        await erin.rejoin(tracks((10, 220)), base_url=survivor.url, retry_s=LEASE_S * 4)
        frank = member(survivor, tenant, "frank", "202")
        await frank.connect(auto_subscribe=True, retry_s=LEASE_S * 4)
        assert cluster.serving(erin) is survivor and cluster.serving(frank) is survivor
        await frank.wait_frames("erin/camera", 10)

        # The survivor took the task over and records the room again (a new run).
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == survivor_id and task.run >= 2, task
        await asyncio.sleep(2)
        await asyncio.to_thread(
            client.DeleteCloudRecording,
            req(models.DeleteCloudRecordingRequest, {"SdkAppId": app, "TaskId": task_id}),
        )
        task, files = await _until_stored(cluster, app, task_id)
        # The dead node's half-written files were finalized and stored too, then the new run's.
        assert len(files) >= 2 and all(f.state == "stored" for f in files), files
    finally:
        await erin.close()
        await frank.close()
        cluster.start(dead.name)  # back for the next tests, as a new node


async def test_a_paused_node_gives_its_room_up_when_it_wakes(cluster: Nodes, tenant: Tenant) -> None:
    a = cluster.nodes["a"]
    lea = member(a, tenant, "lea", "505")
    lea2 = member(a, tenant, "lea", "505")
    max_ = member(a, tenant, "max", "505")
    frozen: Node | None = None
    try:
        await lea.connect(auto_subscribe=True)
        await lea.publish(tracks((60, 160)))
        frozen = cluster.serving(lea)
        awake = cluster.other(frozen)
        cluster.pause(frozen.name)
        # Past the frozen node's lease, the room is placed on the other node.
        lea2 = member(awake, tenant, "lea", "505")
        max_ = member(awake, tenant, "max", "505")
        await asyncio.sleep(LEASE_S + 0.5)
        await lea2.connect(auto_subscribe=True, retry_s=LEASE_S * 3)
        await max_.connect(auto_subscribe=True, retry_s=LEASE_S * 3)
        assert cluster.serving(lea2) is awake and cluster.serving(max_) is awake
        await lea2.publish(tracks((60, 160)))
        await max_.wait_frames("lea/camera", 10)
        # The old node wakes up: it finds its room placed elsewhere and closes it (no split brain).
        cluster.resume(frozen.name)
        frozen = None
        await asyncio.wait_for(lea.closed.wait(), LEASE_S * 3)
        assert lea.close_code == 4004
        assert await frames_flow(max_, "lea/camera", 1.5)
        assert not max_.closed.is_set() and not lea2.closed.is_set()
    finally:
        if frozen is not None:
            cluster.resume(frozen.name)
        for c in (lea, lea2, max_):
            await c.close()


async def test_redis_outage_keeps_rooms_and_recovers(cluster: Nodes, tenant: Tenant) -> None:
    a = cluster.nodes["a"]
    gina, hal = member(a, tenant, "gina", "303"), member(a, tenant, "hal", "303")
    ivy = member(a, tenant, "ivy", "304")
    try:
        await gina.connect(auto_subscribe=True)
        await hal.connect(auto_subscribe=True)
        await gina.publish(tracks((120, 30)))
        await hal.wait_frames("gina/camera", 10)

        cluster.redis.stop()
        # The room goes on; a join that needs a placement gets a clear error.
        assert await frames_flow(hal, "gina/camera", 2.0)
        health = await asyncio.to_thread(httpx.get, f"{a.url}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["redis"] is False, health.text
        with pytest.raises(ClientError) as exc:
            await ivy.connect()
        assert exc.value.code == "routing_unavailable"
        await ivy.close()

        cluster.redis.start()  # empty, as after a crash without persistence
        ivy = member(a, tenant, "ivy", "304")
        await ivy.connect(retry_s=LEASE_S * 3)
        # The nodes registered again and re-claimed their rooms: nobody was moved.
        await asyncio.sleep(LEASE_S)
        assert not gina.closed.is_set() and not hal.closed.is_set()
        # Every node reaches Redis again (each reconnects on its own schedule).
        for node in cluster.nodes.values():
            deadline = asyncio.get_running_loop().time() + LEASE_S * 3
            while True:
                health = await asyncio.to_thread(httpx.get, f"{node.url}/healthz", timeout=5)
                if health.json()["redis"] is True:
                    break
                assert asyncio.get_running_loop().time() < deadline, health.text
                await asyncio.sleep(0.2)
        assert await frames_flow(hal, "gina/camera", 1.5)
        late = member(cluster.other(cluster.serving(gina)), tenant, "jay", "303")
        try:
            await late.connect(auto_subscribe=True)
            assert cluster.serving(late) is cluster.serving(gina)
            await late.wait_frames("gina/camera", 10)
        finally:
            await late.close()
        # Calls between nodes work again too, once each node has subscribed its channel again
        # (the answer says so meanwhile: the dialect's unavailable error).
        deadline = asyncio.get_running_loop().time() + LEASE_S * 3
        while True:
            try:
                await remove_user(cluster.other(cluster.serving(hal)), tenant, 303, "hal")
                break
            except TencentCloudSDKException as exc:
                assert exc.code == "ResourceUnavailable", exc
                assert asyncio.get_running_loop().time() < deadline, exc
                await asyncio.sleep(0.5)
        await asyncio.wait_for(hal.closed.wait(), 10)
        assert hal.close_code == 4001
    finally:
        for c in (gina, hal, ivy):
            await c.close()
