"""AI conversations on two ``roomcast serve`` nodes (PostgreSQL + Redis): a robot started through
the node that does not serve the room joins it on the room's node, and is pushed text, updated,
described and stopped through the other node; a killed node's robot is taken over by the survivor,
which places the room on itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import trtc_client

from roomcast.services.join_tokens import issue_usersig
from tests.api.conftest import Tenant
from tests.cluster.test_ingest_nodes import call
from tests.cluster.test_nodes import _node_id, _task, member, trtc
from tests.e2e.test_ai_conversation import subtitles
from tests.e2e.test_ai_transcription import wait_for
from tests.support.llm import StandInLlm, stand_in_llm
from tests.support.nodes import LEASE_S, Nodes

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(150)]

AGENT = "agent"
WELCOME = "hello from the robot"
PUSHED = "the stock market is going up"


@pytest.fixture(scope="module")
def llm() -> Iterator[StandInLlm]:
    with stand_in_llm("fine") as s:
        yield s


def start(client: trtc_client.TrtcClient, t: Tenant, room: str, llm: StandInLlm) -> Any:
    body = {
        "SdkAppId": t.app.sdk_app_id,
        "RoomId": room,
        "AgentConfig": {
            "UserId": AGENT,
            "UserSig": issue_usersig(t.app, AGENT),
            "TargetUserId": "viewer",
            "WelcomeMessage": WELCOME,
            "MaxIdleTime": 60,
        },
        "STTConfig": {"Language": "en"},
        "LLMConfig": json.dumps({"LLMType": "openai", "Model": "m", "APIKey": "k", "APIUrl": llm.url}),
        "TTSConfig": json.dumps({"TTSType": "espeak", "Voice": "en-us"}),
    }
    return call(client, "StartAIConversation", body)


async def status(client: trtc_client.TrtcClient, task_id: str) -> str:
    return str((await call(client, "DescribeAIConversation", {"TaskId": task_id})).Status)


async def test_a_robot_started_on_the_other_node_joins_the_room(
    cluster: Nodes, tenant: Tenant, llm: StandInLlm
) -> None:
    app = tenant.app.sdk_app_id
    viewer = member(cluster.nodes["a"], tenant, "viewer", "701")
    try:
        await viewer.connect(auto_subscribe=True)
        home = cluster.serving(viewer)
        away = cluster.other(home)
        client = trtc(away, tenant)
        task_id = (await start(client, tenant, "701", llm)).TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, home)  # run where the room is
        await wait_for(lambda: WELCOME in subtitles(viewer, AGENT), 30)
        for node in (home, away):
            assert await status(trtc(node, tenant), task_id) == "InProgress"

        # Controlled and updated through the other node: the robot on the room's node acts.
        push = {"TaskId": task_id, "Command": "ServerPushText", "ServerPushText": {"Text": PUSHED}}
        await call(client, "ControlAIConversation", push)
        await wait_for(lambda: PUSHED in subtitles(viewer, AGENT), 30)
        await call(client, "UpdateAIConversation", {"TaskId": task_id, "WelcomeMessage": "changed"})
        task, _ = await _task(cluster, app, task_id)
        assert task.spec["welcome"] == "changed"

        # Stopped through the other node: the robot has left when the answer comes.
        await call(client, "StopAIConversation", {"TaskId": task_id})
        await viewer.wait_event("participant_left", lambda m: m.get("user_id") == AGENT, time_limit=2.0)
        task, _ = await _task(cluster, app, task_id)
        assert task.state.value == "exited" and task.reason == "stopped", task
        for node in (home, away):
            assert await status(trtc(node, tenant), task_id) == "Stopped"
    finally:
        await viewer.close()


async def test_a_killed_node_s_robot_moves_to_the_survivor(
    cluster: Nodes, tenant: Tenant, llm: StandInLlm
) -> None:
    app = tenant.app.sdk_app_id
    viewer = member(cluster.nodes["a"], tenant, "viewer", "703")
    await viewer.connect(auto_subscribe=True)
    dead = cluster.serving(viewer)
    try:
        survivor = cluster.other(dead)
        client = trtc(survivor, tenant)
        task_id = (await start(client, tenant, "703", llm)).TaskId
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == await _node_id(cluster, dead)
        survivor_id = await _node_id(cluster, survivor)
        cluster.kill(dead.name)
        await asyncio.wait_for(viewer.closed.wait(), 15)
        await viewer.close()

        # The survivor takes the task over and places the room on itself: the robot is there.
        viewer = member(survivor, tenant, "viewer", "703")
        await viewer.connect(auto_subscribe=True, retry_s=LEASE_S * 4)
        assert cluster.serving(viewer) is survivor
        push = {"TaskId": task_id, "Command": "ServerPushText", "ServerPushText": {"Text": PUSHED}}

        # Pushed text is refused until the robot is back in the room (resuming), then said.
        for _ in range(LEASE_S * 10):
            try:
                await call(client, "ControlAIConversation", push)
                break
            except TencentCloudSDKException as exc:
                assert exc.code == "FailedOperation.TaskNotExist", exc
                await asyncio.sleep(1.0)
        task, _ = await _task(cluster, app, task_id)
        assert task.node_id == survivor_id and task.state.value == "running", task
        await wait_for(lambda: PUSHED in subtitles(viewer, AGENT), 30)
        await call(client, "StopAIConversation", {"TaskId": task_id})
        await viewer.wait_event("participant_left", lambda m: m.get("user_id") == AGENT)
    finally:
        await viewer.close()
        if dead.proc is None:
            cluster.start(dead.name)  # back for the next tests, as a new node
