"""Stream ingest on two ``roomcast serve`` nodes (PostgreSQL + Redis): a task started through the
node that does not serve the room runs on the room's node, is paused, described and stopped
through the other node; a task for a room nobody serves places the room; a killed node's task is
taken over and its room placed on the survivor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.trtc.v20190722 import models, trtc_client

from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant
from tests.cluster.test_nodes import _node_id, _task, frames_flow, member, trtc
from tests.support.ingest_media import make_media, media_server
from tests.support.nodes import LEASE_S, Nodes

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]

BOT = "ingest-bot"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = Path(tmp_path_factory.mktemp("ingest-nodes-media"))
    make_media(d / "clip.mp4", 2)
    with media_server(d) as base:
        yield base


def call(client: trtc_client.TrtcClient, action: str, params: dict[str, Any]) -> Any:
    req = getattr(models, f"{action}Request")()
    req.from_json_string(json.dumps(params))
    return asyncio.to_thread(getattr(client, action), req)


def start(client: trtc_client.TrtcClient, t: Tenant, room: str, url: str) -> Any:
    params = {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": room,
        "RoomIdType": 1,
        "UserId": BOT,
        "UserSig": issue_usersig(t.app, BOT),
        "StreamUrl": url,
        "RepeatNum": -1,
    }
    return call(client, "StartStreamIngest", params)


async def status(client: trtc_client.TrtcClient, t: Tenant, task_id: str) -> str:
    resp = await call(client, "DescribeStreamIngest", {"SdkAppId": t.app.sdk_app_id, "TaskId": task_id})
    return str(resp.Status)


async def test_an_ingest_started_on_the_other_node_runs_in_the_room(
    cluster: Nodes, tenant: Tenant, media: str
) -> None:
    app = tenant.app.sdk_app_id
    viewer = member(cluster.nodes["a"], tenant, "viewer", "601")
    try:
        await viewer.connect(auto_subscribe=True)
        home = cluster.serving(viewer)
        away = cluster.other(home)
        client = trtc(away, tenant)
        task_id = (await start(client, tenant, "601", f"{media}/clip.mp4")).TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, home)  # run where the room is
        await viewer.wait_frames(f"{BOT}/camera", 10)
        for node in (home, away):
            assert await status(trtc(node, tenant), tenant, task_id) == "InProgress"

        # Paused and resumed through the other node: the room's node follows at once.
        await call(client, "UpdateStreamIngest", {"SdkAppId": app, "TaskId": task_id, "IsPause": True})
        await asyncio.sleep(0.5)
        assert not await frames_flow(viewer, f"{BOT}/camera", 1.5)
        await call(client, "UpdateStreamIngest", {"SdkAppId": app, "TaskId": task_id, "IsPause": False})
        assert await frames_flow(viewer, f"{BOT}/camera", 2.0)

        # Stopped through the other node: the user has left when the answer comes.
        await call(client, "StopStreamIngest", {"SdkAppId": app, "TaskId": task_id})
        await viewer.wait_event("participant_left", lambda m: m.get("user_id") == BOT, time_limit=1.0)
        for node in (home, away):
            assert await status(trtc(node, tenant), tenant, task_id) == "NotExist"
        task, _ = await _task(cluster, app, task_id)
        assert task.state.value == "exited" and task.reason == "stopped", task
    finally:
        await viewer.close()


async def test_an_ingest_into_an_empty_room_places_it(cluster: Nodes, tenant: Tenant, media: str) -> None:
    app = tenant.app.sdk_app_id
    asked = cluster.nodes["b"]
    task_id = (await start(trtc(asked, tenant), tenant, "602", f"{media}/clip.mp4")).TaskId
    task, _ = await _task(cluster, app, task_id)
    # Nobody served the room: it was placed (on the least-loaded node) and the task runs there.
    ids = {n.name: await _node_id(cluster, n) for n in cluster.nodes.values()}
    home = next(n for n in cluster.nodes.values() if ids[n.name] == task.node_id)
    viewer = member(cluster.other(home), tenant, "viewer", "602")
    try:
        await viewer.connect(auto_subscribe=True)
        assert cluster.serving(viewer) is home  # sent on to the room's node
        await viewer.wait_frames(f"{BOT}/camera", 10)
        await call(
            trtc(cluster.other(home), tenant), "StopStreamIngest", {"SdkAppId": app, "TaskId": task_id}
        )
        await viewer.wait_event("participant_left", lambda m: m.get("user_id") == BOT, time_limit=1.0)
    finally:
        await viewer.close()


async def test_a_killed_node_s_ingest_moves_to_the_survivor(
    cluster: Nodes, tenant: Tenant, media: str
) -> None:
    app = tenant.app.sdk_app_id
    viewer = member(cluster.nodes["a"], tenant, "viewer", "603")
    await viewer.connect(auto_subscribe=True)
    dead = cluster.serving(viewer)
    try:
        survivor = cluster.other(dead)
        client = trtc(survivor, tenant)
        task_id = (await start(client, tenant, "603", f"{media}/clip.mp4")).TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, dead)
        await viewer.wait_frames(f"{BOT}/camera", 10)
        survivor_id = await _node_id(cluster, survivor)
        cluster.kill(dead.name)
        await asyncio.wait_for(viewer.closed.wait(), 15)
        await viewer.close()

        # The survivor takes the task over and places the room on itself; the viewer, rejoining
        # through either node, finds the ingested user there.
        viewer = member(survivor, tenant, "viewer", "603")
        await viewer.connect(auto_subscribe=True, retry_s=LEASE_S * 4)
        assert cluster.serving(viewer) is survivor
        await viewer.wait_frames(f"{BOT}/camera", 10, time_limit=LEASE_S * 4)
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == survivor_id and task.state.value == "running", task
        assert await status(client, tenant, task_id) == "InProgress"
        await call(client, "StopStreamIngest", {"SdkAppId": app, "TaskId": task_id})
        await viewer.wait_event("participant_left", lambda m: m.get("user_id") == BOT)
    finally:
        await viewer.close()
        if dead.proc is None:
            cluster.start(dead.name)  # back for the next tests, as a new node
