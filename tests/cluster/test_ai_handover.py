"""AI robot tasks between nodes below the API (SQLite and PostgreSQL): two services with their own
SFUs, linked by an in-process stand-in for the cluster's placement and RPC, for the paths two real
nodes cannot show (a task's node that does not answer and follows its rows, a hand-over to a
third node)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from roomcast.domain import ai
from roomcast.domain.errors import NotFound, Unavailable
from roomcast.domain.task import TaskState
from roomcast.domain.tenancy import App
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.runtime import Runtime
from roomcast.services.ai import AiService
from roomcast.services.tasks import TaskService

pytestmark = [pytest.mark.timeout(90)]

ASR = ai.AsrConfig(engine=ai.AsrEngine.OPENAI, url="http://127.0.0.1:9/v1/audio/transcriptions")


@dataclass
class Net:
    services: dict[str, AiService] = field(default_factory=dict)
    rooms: dict[tuple[str, str], str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Link:
    net: Net
    me: str

    async def room_node(self, app_key: str, room_id: str) -> str | None:
        owner = self.net.rooms.setdefault((app_key, room_id), self.me)
        return None if owner == self.me else owner

    async def call(self, node_id: str, method: str, params: dict[str, Any]) -> Any:
        self.net.calls.append((node_id, method))
        if node_id in self.net.gone:
            raise Unavailable(f"node {node_id} is gone", subject="node")
        return await self.net.services[node_id].calls()[method](params)


def service(runtime: Runtime, sfu: RoomManager, name: str, net: Net | None) -> AiService:
    return AiService(
        tasks=TaskService(runtime.db.sessions, runtime.box),
        box=runtime.box,
        sfu=sfu,
        apps=runtime.tenancy.get_app,
        node_id=name,
        url_policy=UrlPolicy(allow_private=True),
        nodes=Link(net, name) if net is not None else None,
    )


@pytest.fixture
async def app(runtime: Runtime) -> App:
    acc = await runtime.tenancy.create_account("ai-handover")
    return await runtime.tenancy.create_app(acc.account_id, "ai-handover")


@pytest.fixture
async def nodes(runtime: Runtime) -> AsyncIterator[tuple[Net, dict[str, RoomManager]]]:
    net = Net()
    sfus: dict[str, RoomManager] = {}
    for name in ("node-x", "node-y"):
        sfus[name] = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
        net.services[name] = service(runtime, sfus[name], name, net)
    try:
        yield net, sfus
    finally:
        for svc in net.services.values():
            await svc.close()
        for sfu in sfus.values():
            await sfu.close()


def spec(user: str = "scribe") -> ai.TranscriptionSpec:
    return ai.TranscriptionSpec(robot_user_id=user, asr=ASR)


def in_room(sfu: RoomManager, app: App, room: str, user: str = "scribe") -> bool:
    r = sfu.get_room(str(app.sdk_app_id), room)
    return r is not None and user in r.participants


async def until(check: Callable[[], bool], limit: float) -> None:
    for _ in range(int(limit * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_start_and_stop_through_the_other_node(
    runtime: Runtime, app: App, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    net.rooms[(str(app.sdk_app_id), "r1")] = "node-x"
    task = await y.start(app, "r1", spec(), dialect="trtc", request={"RoomId": "r1", "SecretKey": "k"})
    assert task.node_id == "node-x" and ("node-x", "ai.start") in net.calls
    assert in_room(sfus["node-x"], app, "r1") and not in_room(sfus["node-y"], app, "r1")
    assert list(x.robots) == [task.task_id] and not y.robots
    assert (await y.tasks.get(app.sdk_app_id, task.task_id)).request["RoomId"] == "r1"
    with pytest.raises(NotFound):  # not a conversation: refused on the robot's node
        await y.push_text(task, "hello", interrupt=False, stop_after=False)
    await y.stop(task)
    assert ("node-x", "ai.stop") in net.calls
    ended = await y.tasks.get(app.sdk_app_id, task.task_id)
    assert ended.state is TaskState.EXITED and ended.reason == "stopped"
    assert not in_room(sfus["node-x"], app, "r1") and not x.robots


async def test_a_task_whose_node_does_not_answer_is_ended_through_its_row(
    runtime: Runtime, app: App, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    net.rooms[(str(app.sdk_app_id), "r2")] = "node-x"
    task = await y.start(app, "r2", spec(), dialect="trtc", request={})
    net.gone.add("node-x")  # its RPC channel is gone (Redis cut off): the row is the way
    with pytest.raises(NotFound):
        await y.push_text(task, "hello", interrupt=False, stop_after=False)
    await y.stop(task)
    ended = await y.tasks.get(app.sdk_app_id, task.task_id)
    assert ended.state is TaskState.EXITED and ended.reason == "stopped"
    # x reads its robots' rows: the robot leaves.
    assert in_room(sfus["node-x"], app, "r2")
    await until(lambda: not in_room(sfus["node-x"], app, "r2"), 8)
    assert not x.robots


async def test_a_taken_over_task_goes_to_the_room_s_node(
    runtime: Runtime, app: App, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    # A task of node-z, which stops (its tasks stay for another node).
    sfu_z = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    z = service(runtime, sfu_z, "node-z", None)
    task = await z.start(app, "r3", spec(), dialect="trtc", request={})
    await z.close()
    await sfu_z.close()
    # The room is still placed on a node that is gone, then on node-x: node-y takes the task over
    # and hands it to node-x, whose robot joins.
    key = (str(app.sdk_app_id), "r3")
    net.rooms[key] = "node-w"
    net.gone.add("node-w")

    async def replaced() -> None:
        await asyncio.sleep(1.5)
        net.rooms[key] = "node-x"

    later = asyncio.ensure_future(replaced())
    await y.take_over()
    await until(lambda: in_room(sfus["node-x"], app, "r3"), 15)
    await later
    moved = await y.tasks.get(app.sdk_app_id, task.task_id)
    assert moved.node_id == "node-x" and moved.state is TaskState.RUNNING, moved
    assert list(x.robots) == [task.task_id] and not y.robots and not in_room(sfus["node-y"], app, "r3")
    assert ("node-w", "ai.adopt") in net.calls and ("node-x", "ai.adopt") in net.calls
    await y.stop(moved)
    assert not in_room(sfus["node-x"], app, "r3")
