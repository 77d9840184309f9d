"""Ingest tasks between nodes below the API (SQLite and PostgreSQL): two services with their own
SFUs, linked by an in-process stand-in for the cluster's placement and RPC, to check the paths
two real nodes cannot show (a hand-over to a third node, a gone node asked again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from roomcast.domain.errors import Unavailable
from roomcast.domain.ingest import FOREVER, IngestSpec
from roomcast.domain.task import TaskState
from roomcast.domain.tenancy import App
from roomcast.net.urls import UrlPolicy
from roomcast.rtc.room import RoomManager, SfuConfig
from roomcast.runtime import Runtime
from roomcast.services.ingests import IngestRequest, IngestService
from roomcast.services.tasks import TaskService
from tests.support.ingest_media import make_media, media_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = Path(tmp_path_factory.mktemp("ingest-handover-media"))
    make_media(d / "clip.mp4", 2)
    with media_server(d) as base:
        yield base


@dataclass
class Net:
    """Room placement and calls between the services of one test."""

    services: dict[str, IngestService] = field(default_factory=dict)
    rooms: dict[tuple[str, str], str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Link:
    """One node's view of the :class:`Net` (``services.tasks.TaskNodes``)."""

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


@pytest.fixture
async def app(runtime: Runtime) -> App:
    acc = await runtime.tenancy.create_account("handover")
    return await runtime.tenancy.create_app(acc.account_id, "handover")


@pytest.fixture
async def nodes(runtime: Runtime) -> AsyncIterator[tuple[Net, dict[str, RoomManager]]]:
    net = Net()
    sfus: dict[str, RoomManager] = {}
    for name in ("node-x", "node-y"):
        sfus[name] = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
        net.services[name] = IngestService(
            TaskService(runtime.db.sessions, runtime.box),
            sfus[name],
            UrlPolicy(allow_private=True),
            node_id=name,
            nodes=Link(net, name),
            apps=runtime.tenancy.get_app,
        )
    try:
        yield net, sfus
    finally:
        for svc in net.services.values():
            await svc.close()
        for sfu in sfus.values():
            await sfu.close()


def request(app: App, url: str, room: str) -> IngestRequest:
    return IngestRequest(
        app=app,
        room_id=room,
        user_id="bot",
        spec=IngestSpec(url=url, repeats=FOREVER),
        dialect="trtc",
        dialect_request={"params": {"RoomId": room}},
    )


def in_room(sfu: RoomManager, app: App, room: str) -> bool:
    r = sfu.get_room(str(app.sdk_app_id), room)
    return r is not None and "bot" in r.participants


async def until(check: Callable[[], bool], limit: float) -> None:
    for _ in range(int(limit * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_start_update_stop_through_the_other_node(
    runtime: Runtime, app: App, media: str, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    net.rooms[(str(app.sdk_app_id), "r1")] = "node-x"
    task = await y.start(request(app, f"{media}/clip.mp4", "r1"))
    assert task.node_id == "node-x" and task.state is TaskState.RUNNING
    assert in_room(sfus["node-x"], app, "r1") and not in_room(sfus["node-y"], app, "r1")
    assert x.running() == [task.task_id] and y.running() == []
    assert task.request == {"params": {"RoomId": "r1"}}

    # Update: the running job follows at once (not at its next read of the row).
    await y.update(app, task.task_id, volume=30, paused=True)
    assert x._runs[task.task_id].spec.paused and x._runs[task.task_id].job.controls.paused
    assert ("node-x", "ingests.update") in net.calls
    # Stop: the user has left when the call returns.
    stopped = await y.stop(app, task.task_id)
    assert stopped.state is TaskState.EXITED and stopped.reason == "stopped"
    assert not in_room(sfus["node-x"], app, "r1") and x.running() == []


async def test_a_gone_node_s_task_is_ended_through_its_row(
    runtime: Runtime, app: App, media: str, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    net.rooms[(str(app.sdk_app_id), "r2")] = "node-x"
    task = await y.start(request(app, f"{media}/clip.mp4", "r2"))
    net.gone.add("node-x")  # its RPC channel is gone (Redis cut off): the row is the way
    await y.update(app, task.task_id, paused=True)
    stopped = await y.stop(app, task.task_id)
    assert stopped.state is TaskState.EXITED
    # x's job reads its row and follows: its user leaves.
    await until(lambda: not in_room(sfus["node-x"], app, "r2"), 6)
    assert x.running() == []


async def test_a_taken_over_task_goes_to_the_room_s_node(
    runtime: Runtime, app: App, media: str, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    # A task of node-z, which stops (its tasks stay for another node).
    sfu_z = RoomManager(SfuConfig(stats_interval=0, empty_room_grace=0))
    z = IngestService(
        TaskService(runtime.db.sessions, runtime.box), sfu_z, UrlPolicy(allow_private=True), node_id="node-z"
    )
    task = await z.start(request(app, f"{media}/clip.mp4", "r3"))
    await z.close()
    await sfu_z.close()
    # The room is still placed on a node that is gone, then on node-x (its entry expired and a
    # client rejoined there): node-y takes the task over and hands it to node-x.
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
    moved = await x.get(app, task.task_id)
    assert moved.node_id == "node-x" and moved.state is TaskState.RUNNING
    assert x.running() == [task.task_id] and y.running() == []
    assert not in_room(sfus["node-y"], app, "r3")
    assert net.calls.count(("node-w", "ingests.adopt")) >= 1 and ("node-x", "ingests.adopt") in net.calls
    await x.stop(app, task.task_id)


async def test_a_task_follows_its_room_to_another_node(
    runtime: Runtime, app: App, media: str, nodes: tuple[Net, dict[str, RoomManager]]
) -> None:
    net, sfus = nodes
    x, y = net.services["node-x"], net.services["node-y"]
    key = (str(app.sdk_app_id), "r4")
    task = await x.start(request(app, f"{media}/clip.mp4", "r4"))
    assert task.node_id == "node-x" and in_room(sfus["node-x"], app, "r4")
    # node-x was paused past its lease: the room was placed on node-y and node-x closes it.
    net.rooms[key] = "node-y"
    await sfus["node-x"].evict_room(*key, "moved")
    await until(lambda: in_room(sfus["node-y"], app, "r4"), 15)
    moved = await y.get(app, task.task_id)
    assert moved.node_id == "node-y" and moved.state is TaskState.RUNNING, moved
    assert y.running() == [task.task_id] and x.running() == []
    await x.stop(app, task.task_id)  # through the node that lost it
    assert not in_room(sfus["node-y"], app, "r4")


def test_a_room_node_that_does_not_answer_is_resource_unavailable() -> None:
    from roomcast.api.trtc.ingest import _source_error

    assert _source_error(Unavailable("node n-1 did not answer in 5 s", subject="node")).code == (
        "ResourceUnavailable"
    )
    # The source itself unreachable stays the vendor's StreamUrl error.
    assert _source_error(Unavailable("refused", subject="stream_url")).code == "InvalidParameter.StreamUrl"
