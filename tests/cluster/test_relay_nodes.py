"""CDN relays on two ``roomcast serve`` nodes (PostgreSQL + Redis): a relay started through the
node that does not serve the room pushes from the room's node, and is updated and stopped through
the other node; a killed node's relay is taken over by the survivor where its room is placed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.trtc.v20190722 import trtc_client

from roomcast.domain.relay import relay_from_json
from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant
from tests.cluster.test_ingest_nodes import call
from tests.cluster.test_nodes import _node_id, _task, member, tracks, trtc
from tests.support.nodes import LEASE_S, Nodes
from tests.support.rtmp import RtmpServer, capture, rtmp_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def rtmp() -> Iterator[RtmpServer]:
    with rtmp_server() as srv:
        yield srv


def start(client: trtc_client.TrtcClient, t: Tenant, room: str, url: str) -> Any:
    body = {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": room,
        "RoomIdType": 1,
        "AgentParams": {
            "UserId": "relay-bot",
            "UserSig": issue_usersig(t.app, "relay-bot"),
            "MaxIdleTime": 30,
        },
        "WithTranscoding": 1,
        "AudioParams": {"AudioEncode": {"SampleRate": 48000, "Channel": 2, "BitRate": 64}},
        "VideoParams": {
            "VideoEncode": {"Width": 320, "Height": 180, "Fps": 15, "BitRate": 300, "Gop": 1},
            "LayoutParams": {"MixLayoutMode": 3},
        },
        "PublishCdnParams": [{"PublishCdnUrl": url, "IsTencentCdn": 0}],
    }
    return call(client, "StartPublishCdnStream", body)


async def pushed(url: str, path: Path) -> int:
    """Video packets of one second of the stream at ``url`` (raises if nothing is pushed there)."""
    return len(await asyncio.to_thread(capture, url, path, seconds=1.0, timeout=8.0))


async def test_a_relay_started_on_the_other_node_pushes_the_room(
    cluster: Nodes, tenant: Tenant, rtmp: RtmpServer, tmp_path: Path
) -> None:
    app = tenant.app.sdk_app_id
    alice = member(cluster.nodes["a"], tenant, "alice", "801")
    try:
        await alice.connect()
        await alice.publish(tracks((200, 40)))
        home = cluster.serving(alice)
        away = cluster.other(home)
        client = trtc(away, tenant)
        task_id = (await start(client, tenant, "801", rtmp.url("n801a"))).TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, home)  # run where the room is
        assert await pushed(rtmp.url("n801a"), tmp_path / "a.mkv") > 0

        # Updated and stopped through the other node.
        update = {
            "SdkAppId": app,
            "TaskId": task_id,
            "SequenceNumber": 1,
            "WithTranscoding": 1,
            "PublishCdnParams": [{"PublishCdnUrl": rtmp.url("n801b"), "IsTencentCdn": 0}],
        }
        await call(client, "UpdatePublishCdnStream", update)
        assert await pushed(rtmp.url("n801b"), tmp_path / "b.mkv") > 0
        task, _ = await _task(cluster, app, task_id)
        assert relay_from_json(task.spec).outputs == (rtmp.url("n801b"),)
        await call(client, "StopPublishCdnStream", {"SdkAppId": app, "TaskId": task_id})
        for _ in range(20):
            task, _ = await _task(cluster, app, task_id)
            if task.state.value == "exited":
                break
            await asyncio.sleep(0.5)
        assert task.state.value == "exited" and task.reason == "stopped", task
    finally:
        await alice.close()


async def test_a_killed_node_s_relay_moves_to_the_survivor(
    cluster: Nodes, tenant: Tenant, rtmp: RtmpServer, tmp_path: Path
) -> None:
    app = tenant.app.sdk_app_id
    alice = member(cluster.nodes["a"], tenant, "alice", "803")
    await alice.connect()
    dead = cluster.serving(alice)
    try:
        survivor = cluster.other(dead)
        client = trtc(survivor, tenant)
        task_id = (await start(client, tenant, "803", rtmp.url("n803"))).TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, dead)
        survivor_id = await _node_id(cluster, survivor)
        cluster.kill(dead.name)
        await asyncio.wait_for(alice.closed.wait(), 15)
        await alice.close()

        # The survivor takes the relay over and pushes the room, placed on itself, again.
        alice = member(survivor, tenant, "alice", "803")
        await alice.connect(retry_s=LEASE_S * 4)
        await alice.publish(tracks((40, 200)))
        assert cluster.serving(alice) is survivor
        for _ in range(LEASE_S * 10):
            task, _ = await _task(cluster, app, task_id)
            if task.node_id == survivor_id and task.run >= 2:
                break
            await asyncio.sleep(1.0)
        assert task.node_id == survivor_id and task.state.value == "running", task
        assert await pushed(rtmp.url("n803"), tmp_path / "after.mkv") > 0
        await call(client, "StopPublishCdnStream", {"SdkAppId": app, "TaskId": task_id})
    finally:
        await alice.close()
        if dead.proc is None:
            cluster.start(dead.name)  # back for the next tests, as a new node
