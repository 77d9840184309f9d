"""Room custom messages (TRTC's sendCustomCmdMsg) over the signalling socket, from clients and from
the server, to everyone or to chosen users, with the size and command-id rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roomcast.rtc.auth import StaticTokenAuthenticator
from roomcast.rtc.client import ClientError, RoomClient
from roomcast.rtc.room import RoomManager, SfuConfig, default_identity
from roomcast.rtc.testing import serve_sfu

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

TOKEN = "t"
APP = "app1"


@pytest.fixture
async def sfu() -> AsyncIterator[tuple[RoomManager, str]]:
    manager = RoomManager(SfuConfig(empty_room_grace=0.3, stats_interval=0))
    async with serve_sfu(manager, StaticTokenAuthenticator(TOKEN)) as url:
        yield manager, url


def client(url: str, user: str) -> RoomClient:
    return RoomClient(url, app_id=APP, room_id="r1", user_id=user, token=TOKEN)


async def test_clients_and_server_exchange_custom_messages(sfu: tuple[RoomManager, str]) -> None:
    manager, url = sfu
    a, b, c = client(url, "alice"), client(url, "bob"), client(url, "carol")
    try:
        for x in (a, b, c):
            await x.connect()
        robot = await manager.join(default_identity(APP, "r1", "robot", hidden=True))
        heard: list[tuple[str, int, str]] = []
        robot.on_custom = lambda sender, cmd, data: heard.append((sender, cmd, data))

        assert await a.send_custom(3, "héllo") == 3  # bob and carol over the socket; the robot in-process
        for x in (b, c):
            m = await x.wait_event("custom_message")
            assert (m["sender"], m["cmd_id"], m["data"]) == ("alice", 3, "héllo")
        assert heard == [("alice", 3, "héllo")]
        assert a.custom_messages() == []  # never echoed to the sender

        assert await a.send_custom(4, "just bob", to=["bob"]) == 1
        await b.wait_event("custom_message", lambda m: m["cmd_id"] == 4)
        assert [m["cmd_id"] for m in c.custom_messages()] == [3]

        # Order is kept per receiver.
        for i in range(20):
            await a.send_custom(5, str(i), to=["carol"])
        await c.wait_event("custom_message", lambda m: m["data"] == "19")
        assert [m["data"] for m in c.custom_messages(5)] == [str(i) for i in range(20)]

        # A server robot's message (larger than a client may send).
        big = "x" * 4000
        assert await manager.send_custom(APP, "r1", "robot", 1, big) == 3
        m = await b.wait_event("custom_message", lambda m: m["sender"] == "robot")
        assert m["data"] == big and m["cmd_id"] == 1

        for bad in (
            {"cmd_id": 0, "data": "x"},
            {"cmd_id": 11, "data": "x"},
            {"cmd_id": 1, "data": "y" * 1025},
        ):
            with pytest.raises(ClientError) as info:
                await a.request({"type": "custom_message", **bad})
            assert info.value.code == "bad_request"
        with pytest.raises(ClientError):
            await a.request({"type": "custom_message", "cmd_id": 1, "data": 5})
        with pytest.raises(ClientError):
            await a.request({"type": "custom_message", "cmd_id": 1, "data": "x", "to": "bob"})
    finally:
        for x in (a, b, c):
            await x.close()
