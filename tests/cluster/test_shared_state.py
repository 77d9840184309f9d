"""Redis-backed pieces on a real Redis: throttling and nonces shared by nodes, room placement
with fencing, calls between nodes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from roomcast.cluster.placement import RoomPlacement
from roomcast.cluster.redis import Keys, connect
from roomcast.cluster.rpc import NodeGone, NodeRpc
from roomcast.cluster.throttle import SharedNonceMemory, SharedRateLimiter
from roomcast.domain.errors import NotFound, Unavailable
from roomcast.rtc.routing import RoomElsewhere, RoutingUnavailable
from tests.support.redis import RedisServer


async def test_rate_limit_is_shared_by_two_nodes(redis_url: str, prefix: str) -> None:
    a_redis, b_redis = connect(redis_url), connect(redis_url)
    a = SharedRateLimiter(a_redis, Keys(prefix))
    b = SharedRateLimiter(b_redis, Keys(prefix))
    try:
        # 20 per minute, burst 20: the two nodes together get 20, not 40.
        key = ("sparkrtc", "account-1", "room")
        results = [await (a if i % 2 else b).allow(key, 20, 60.0) for i in range(40)]
        assert results == [True] * 20 + [False] * 20
        # Another key has its own bucket.
        assert await a.allow(("sparkrtc", "account-2", "room"), 20, 60.0)
        # A bucket refills at its rate: 5 per half second, burst 5.
        fast = ("trtc", 1400000001, "DescribeCloudRecording")
        assert [await a.allow(fast, 5, 0.5) for _ in range(6)] == [True] * 5 + [False]
        await asyncio.sleep(0.6)
        again = [await (b if i % 2 else a).allow(fast, 5, 0.5) for i in range(10)]
        assert 5 <= again.count(True) <= 7 and again[:5] == [True] * 5, again
    finally:
        await a_redis.aclose()
        await b_redis.aclose()


async def test_rate_limit_falls_back_to_the_node_when_redis_is_unreachable() -> None:
    dead = connect("redis://127.0.0.1:1/0", timeout_s=0.5)
    limiter = SharedRateLimiter(dead, Keys("x"))
    try:
        results = [await limiter.allow("k", 3, 60.0) for _ in range(5)]
        assert results == [True, True, True, False, False]  # the same limit, per node
    finally:
        await dead.aclose()


async def test_a_nonce_is_claimed_once_across_nodes(redis_url: str, prefix: str) -> None:
    a_redis, b_redis = connect(redis_url), connect(redis_url)
    a = SharedNonceMemory(a_redis, Keys(prefix))
    b = SharedNonceMemory(b_redis, Keys(prefix))
    try:
        until = time.time() + 2
        assert await a.claim("trtc-v1:AKID", "123", until)
        assert not await b.claim("trtc-v1:AKID", "123", until)
        assert await b.claim("trtc-v1:AKID2", "123", until)
        assert await b.claim("trtc-v1:AKID", "124", until)
        ttl = await a_redis.pttl(Keys(prefix).nonce("trtc-v1:AKID", "123"))
        assert 0 < ttl <= 2100  # forgotten when the window ends
        assert await a.claim("trtc-v1:AKID", "999", time.time() - 1)  # outside any window
    finally:
        await a_redis.aclose()
        await b_redis.aclose()


class _Node:
    """A placement with a fake SFU: the set of rooms open here."""

    def __init__(self, url: str, prefix: str, node_id: str, lease_s: float = 1.5) -> None:
        self.redis = connect(url, timeout_s=0.5)
        self.open: set[tuple[str, str]] = set()
        self.lost: list[tuple[str, str]] = []
        self.load = 0

        async def on_lost(app_key: str, room_id: str) -> None:
            self.lost.append((app_key, room_id))
            self.open.discard((app_key, room_id))

        self.p = RoomPlacement(
            self.redis,
            Keys(prefix),
            node_id=node_id,
            public_url=f"http://{node_id}.test",
            lease_s=lease_s,
            participants=lambda: self.load,
            is_open=lambda a, r: (a, r) in self.open,
            on_lost=on_lost,
        )

    async def join(self, app_key: str, room_id: str) -> None:
        await self.p.gate(app_key, room_id)
        self.open.add((app_key, room_id))

    async def close(self) -> None:
        await self.redis.aclose()


async def test_rooms_go_to_the_least_loaded_node_and_stay_there(redis_url: str, prefix: str) -> None:
    a, b = _Node(redis_url, prefix, "a"), _Node(redis_url, prefix, "b")
    try:
        a.load, b.load = 5, 0
        await a.p.heartbeat()
        await b.p.heartbeat()
        with pytest.raises(RoomElsewhere) as moved:
            await a.join("1400", "r1")
        assert moved.value.node_id == "b" and moved.value.base_url == "http://b.test"
        await b.join("1400", "r1")
        # Sticky: even when b becomes the busier one.
        b.load = 50
        await b.p.heartbeat()
        with pytest.raises(RoomElsewhere):
            await a.join("1400", "r1")
        await b.join("1400", "r1")
        # A new room goes to a now.
        await a.join("1400", "r2")
        owner = await b.p.owner("1400", "r2")
        assert owner is not None and owner.node_id == "a"
        # Closing a room frees it.
        b.open.discard(("1400", "r1"))
        await b.p.release("1400", "r1")
        assert await a.p.owner("1400", "r1") is None
    finally:
        await a.close()
        await b.close()


async def test_a_burst_of_new_rooms_spreads_over_the_nodes(redis_url: str, prefix: str) -> None:
    a, b = _Node(redis_url, prefix, "a"), _Node(redis_url, prefix, "b")
    try:
        await a.p.heartbeat()
        await b.p.heartbeat()
        owners = []
        for i in range(6):  # all asked through a, faster than any heartbeat
            try:
                await a.join("1400", f"burst{i}")
                owners.append("a")
            except RoomElsewhere as exc:
                owners.append(exc.node_id)
        assert sorted(owners) == ["a"] * 3 + ["b"] * 3, owners
    finally:
        await a.close()
        await b.close()


async def test_a_full_node_gets_no_new_rooms_but_keeps_its_own(redis_url: str, prefix: str) -> None:
    a, b = _Node(redis_url, prefix, "a"), _Node(redis_url, prefix, "b")
    try:
        await a.p.heartbeat()
        await b.p.heartbeat()
        await a.join("1400", "mine")
        a.p._full = lambda: True
        await a.p.heartbeat()
        for i in range(3):
            with pytest.raises(RoomElsewhere):
                await a.join("1400", f"new{i}")
        await a.join("1400", "mine")  # still here
        with pytest.raises(RoomElsewhere) as exc:
            await b.join("1400", "mine")
        assert exc.value.node_id == "a"
    finally:
        await a.close()
        await b.close()


async def test_a_crashed_node_on_this_host_is_forgotten_at_once(redis_url: str, prefix: str) -> None:
    import socket
    import sys

    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    a = _Node(redis_url, prefix, "a", lease_s=30)
    keys = Keys(prefix)
    try:
        # "ghost" ran on this host, holds a room, and its lease has long to go, but its process is gone.
        await a.redis.hset(
            keys.node("ghost"),
            mapping={"url": "http://ghost.test", "host": socket.gethostname(), "pid": dead.pid},
        )
        await a.redis.pexpire(keys.node("ghost"), 30_000)
        await a.redis.zadd(keys.nodes, {"ghost": 0})
        await a.redis.set(keys.room("1400", "haunted"), "ghost 1", px=30_000)
        with pytest.raises(RoomElsewhere):
            await a.join("1400", "haunted")
        await a.p.heartbeat()
        assert not await a.redis.exists(keys.node("ghost"))
        await a.join("1400", "haunted")  # placed here at once
    finally:
        await a.close()


async def test_a_node_back_from_a_pause_gives_its_room_up(redis_url: str, prefix: str) -> None:
    a, b = (
        _Node(redis_url, prefix, "a", lease_s=1.0),
        _Node(redis_url, prefix, "b", lease_s=1.0),
    )
    try:
        b.load = 10
        await a.p.heartbeat()
        await b.p.heartbeat()
        await a.join("1400", "r")
        # a stops renewing (a pause longer than its lease): its keys expire, b takes the room.
        await asyncio.sleep(1.3)
        await b.p.heartbeat()
        await b.join("1400", "r")
        # a comes back: it must not admit anyone, and its next heartbeat closes the room here.
        with pytest.raises(RoomElsewhere):
            await a.join("1400", "r")
        await a.p.heartbeat()
        assert a.lost == [("1400", "r")]
        owner = await a.p.owner("1400", "r")
        assert owner is not None and owner.node_id == "b"
        # b keeps it.
        await b.p.heartbeat()
        assert b.lost == []
    finally:
        await a.close()
        await b.close()


async def test_redis_outage_keeps_rooms_and_refuses_new_placements(tmp_path: Path, prefix: str) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    a = _Node(server.url, prefix, "a", lease_s=1.0)
    try:
        await a.p.heartbeat()
        await a.join("1400", "kept")
        server.stop()
        # Within the local lease, joins into the room held here need no Redis.
        await a.join("1400", "kept")
        await a.p.heartbeat()  # fails quietly
        with pytest.raises(RoutingUnavailable):
            await a.join("1400", "new")
        await asyncio.sleep(1.1)
        with pytest.raises(RoutingUnavailable):
            await a.join("1400", "kept")  # the lease ran out: not without Redis
        assert a.lost == []  # but the room stays open with its participants
        # Redis returns (empty): the next heartbeat registers the node and re-claims the room.
        server.start()
        await a.p.heartbeat()
        owner = await a.p.owner("1400", "kept")
        assert owner is not None and owner.node_id == "a"
        await a.join("1400", "kept")
        await a.join("1400", "new")
    finally:
        await a.close()
        server.stop()


async def test_calls_between_nodes(redis_url: str, prefix: str) -> None:
    ra, rb = connect(redis_url), connect(redis_url)
    blocking = connect(redis_url, timeout_s=5)
    a = NodeRpc(ra, blocking, Keys(prefix), node_id="a", timeout_s=0.5)
    b = NodeRpc(rb, blocking, Keys(prefix), node_id="b", timeout_s=0.5)

    async def add(p: dict[str, object]) -> object:
        return int(str(p["x"])) + 1

    async def missing(p: dict[str, object]) -> object:
        raise NotFound("room r does not exist", subject="room")

    async def slow(p: dict[str, object]) -> object:
        await asyncio.sleep(2)
        return None

    b.handle("add", add)
    b.handle("missing", missing)
    b.handle("slow", slow)
    b.start()
    try:
        await asyncio.wait_for(b.listening.wait(), 5)
        assert await a.call("b", "add", {"x": 41}) == 42
        with pytest.raises(NotFound) as nf:
            await a.call("b", "missing", {})
        assert nf.value.subject == "room"
        with pytest.raises(Unavailable) as slow_exc:
            await a.call("b", "slow", {})
        assert "did not answer" in slow_exc.value.message
        started = time.monotonic()
        with pytest.raises(NodeGone):
            await a.call("c", "add", {"x": 1})
        assert time.monotonic() - started < 0.4  # at once, not after the timeout
    finally:
        await b.stop()
        for r in (ra, rb, blocking):
            await r.aclose()


def test_redis_url_needs_a_shared_postgresql_database(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from roomcast.config import Settings

    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0")
    s = Settings(
        data_dir=tmp_path,
        redis_url="redis://127.0.0.1:6379/0",
        database_url="postgresql+asyncpg://u:p@127.0.0.1/db",
    )
    assert s.redis_url and s.redis_key_prefix == "roomcast" and s.rpc_timeout_s == 5.0
