"""The room whiteboard over signalling: live strokes, order, idempotent ids, late joiners,
permission to draw, and a board that survives a server restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomcast.rtc.auth import Permission
from roomcast.rtc.client import ClientError, RoomClient
from roomcast.services.join_tokens import issue_jwt, issue_usersig
from tests.api.conftest import Tenant, make_tenant
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("wb")) / "var"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[LiveServer]:
    with live_server(data_dir, empty_room_grace_s=0.5) as srv:
        yield srv


@pytest.fixture(scope="module")
def tenant(server: LiveServer) -> Tenant:
    return make_tenant(server, "wb")


def client(server: LiveServer, t: Tenant, room: str, user: str, token: str | None = None) -> RoomClient:
    return RoomClient(
        server.url,
        app_id=str(t.app.sdk_app_id),
        room_id=room,
        user_id=user,
        token=token or issue_usersig(t.app, user),
    )


async def test_strokes_reach_everyone_in_order(server: LiveServer, tenant: Tenant) -> None:
    async with client(server, tenant, "wb1", "alice") as a, client(server, tenant, "wb1", "bob") as b:
        await a.connect()
        await b.connect()
        await asyncio.gather(a.sync_board(), b.sync_board())
        pen = await a.draw("pen", points=[[0.1, 0.1], [0.2, 0.3], [0.3, 0.2]], color="#ff0000", width=6)
        rect = await b.draw("rect", points=[[0.5, 0.5], [0.8, 0.9]], color="#0000ff", width=3)
        assert (pen["seq"], rect["seq"]) == (1, 2) and not pen["duplicate"]
        again = await a.draw("pen", op_id=pen["op_id"], points=[[0.0, 0.0], [1.0, 1.0]])
        assert again == {**pen, "duplicate": True, "id": again["id"]}  # the first one is kept
        for c in (a, b):
            board = await c.wait_board(2)
            shapes = board.visible()
            assert [(s["kind"], s["user_id"], s["seq"]) for s in shapes] == [
                ("pen", "alice", 1),
                ("rect", "bob", 2),
            ]
            assert shapes[0]["color"] == "#ff0000" and shapes[0]["points"][1] == [0.2, 0.3]
        # Undo is per user: bob's undo hides bob's rectangle, not alice's stroke.
        await b.draw("undo")
        await a.wait_board(3)
        assert [s["kind"] for s in a.board.visible()] == ["pen"]
        await b.draw("redo")
        await a.draw("clear")
        await b.wait_board(5)
        assert b.board.visible() == []
        await a.draw("undo")  # alice's last drawing is the clear: both shapes come back
        await b.wait_board(6)
        assert [s["kind"] for s in b.board.visible()] == ["pen", "rect"]
        # Pages: a new page becomes current and has its own background and shapes.
        await a.draw("page_add", page="p2", url="https://example.com/slide2.png")
        await a.draw("text", points=[[0.1, 0.2]], text="hello", size=50, color="#00aa00")
        await b.wait_board(8)
        assert b.board.current == "p2" and b.board.pages["p2"].background.endswith("slide2.png")
        assert [s["text"] for s in b.board.visible()] == ["hello"]
        assert [s["kind"] for s in b.board.visible("1")] == ["pen", "rect"]


async def test_refusals(server: LiveServer, tenant: Tenant) -> None:
    viewer = issue_jwt(
        tenant.app, "viewer", permissions=frozenset({Permission.PUBLISH, Permission.SUBSCRIBE})
    )
    async with (
        client(server, tenant, "wb2", "drawer") as d,
        client(server, tenant, "wb2", "viewer", viewer) as v,
    ):
        await d.connect()
        await v.connect()
        with pytest.raises(ClientError) as denied:
            await v.draw("line", points=[[0, 0], [1, 1]])
        assert denied.value.code == "permission_denied"
        for bad in (
            {"kind": "pen", "points": [[0, 0], [2, 2]]},  # off the page
            {"kind": "pen", "points": [[0, 0]], "color": "red"},
            {"kind": "rect", "points": [[0, 0]]},
            {"kind": "line", "page": "nope", "points": [[0, 0], [1, 1]]},
            {"kind": "spray", "points": [[0, 0]]},
            {"kind": "page_add", "page": "1"},
            {"kind": "text", "points": [[0, 0]], "text": ""},
        ):
            with pytest.raises(ClientError) as refused:
                await d.draw(**bad)  # type: ignore[arg-type]
            assert refused.value.code == "invalid_op", bad
        with pytest.raises(ClientError):
            await d.request({"type": "wb_op", "op": "not an object"})
        with pytest.raises(ClientError):
            await d.request({"type": "wb_sync", "since": -1})
        # Still connected and drawing after every refusal; the viewer still sees the board.
        ack = await d.draw("ellipse", points=[[0.2, 0.2], [0.4, 0.4]], fill="#ffff00")
        await v.sync_board()
        assert v.board.seq == ack["seq"] == 1


async def test_late_joiner_and_restart(data_dir: Path, server: LiveServer, tenant: Tenant) -> None:
    async with client(server, tenant, "wb3", "early") as e:
        await e.connect()
        for n in range(30):
            await e.draw("line", points=[[n / 40, 0.1], [n / 40, 0.9]], width=2)
    async with client(server, tenant, "wb3", "late") as late:
        await late.connect()
        board = await late.sync_board()
        assert board.seq == 30 and len(board.visible()) == 30
    # Another server on the same data: the board is in the database.
    with live_server(data_dir, empty_room_grace_s=0.5) as again:
        async with client(again, tenant, "wb3", "after") as after:
            await after.connect()
            board = await after.sync_board()
            assert [s["points"][0][0] for s in board.visible()] == [n / 40 for n in range(30)]
            ack = await after.draw("eraser", points=[[0.0, 0.5], [1.0, 0.5]], width=20)
            assert ack["seq"] == 31


async def test_flood_is_limited(server: LiveServer, tenant: Tenant) -> None:
    async with client(server, tenant, "wb4", "flood") as c:
        await c.connect()
        # Refused operations count too (they cost the server as much to look at), and fail fast.
        bad = {"kind": "pen", "page": "1", "points": [[9, 9]]}
        results = await asyncio.gather(
            *(c.draw(op_id=f"f{n}", **bad) for n in range(150)),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        codes = [r.code for r in results if isinstance(r, ClientError)]
        assert len(codes) == 150
        assert 60 <= codes.count("invalid_op") < 150 and codes.count("rate_limited") > 0
        await asyncio.sleep(0.5)  # the budget refills
        ack = await c.draw("pen", op_id="after", page="1", points=[[0.5, 0.5]])
        assert ack["seq"] == 1


async def test_drafts_show_strokes_while_drawn(server: LiveServer, tenant: Tenant) -> None:
    async with client(server, tenant, "wb5", "painter") as a, client(server, tenant, "wb5", "watcher") as b:
        await a.connect()
        await b.connect()
        await asyncio.gather(a.sync_board(), b.sync_board())
        points = [[0.1, 0.1]]
        for n in range(1, 4):
            points.append([0.1 + n / 10, 0.1])
            await a.draft("pen", op_id="stroke-1", points=points, color="#123456", width=3)
        await b.wait_event("wb_draft", lambda m: len(m["op"]["points"]) == 4)
        assert b.drafts["painter"]["op_id"] == "stroke-1" and b.board.seq == 0  # nothing stored
        await a.draft("pen", op_id="bad", points=[[5, 5]])  # malformed: dropped, no answer
        await a.draw("pen", op_id="stroke-1", points=points, color="#123456", width=3)
        await b.wait_board(1)
        assert b.drafts == {} and b.board.visible()[0]["op_id"] == "stroke-1"
