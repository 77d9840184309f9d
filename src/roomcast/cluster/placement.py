"""The node directory and room placement in Redis, with fencing so a room has one node.

Keys (``cluster.redis.Keys``):

* ``node:<id>``: a hash (public URL, load) that expires after the node lease; a node is alive in
  the directory while it exists. ``nodes``: a sorted set of node ids by load: the rooms the node
  holds, plus its participants / 1000 to tell nodes with as many rooms apart. Placing a room adds
  one at once, so a burst of new rooms spreads before the next heartbeat reports.
* ``room:<app>:<room>``: ``"<node id> <epoch>"``, the room's node and a fencing token from a
  global counter, expiring after the lease unless the node renews it.

Placement (one Lua script, atomic): a room whose key names an alive node stays there (sticky);
otherwise it goes to the least-loaded alive node with a new epoch. The owner renews its rooms'
keys on every heartbeat with a compare-and-set on the exact value, so a node that was paused or
cut off past its lease, and whose rooms were placed elsewhere meanwhile, finds its value gone and
closes those rooms (their clients reconnect and are sent to the new node). A node also stops
accepting joins to a room once its own lease on it (counted from the last renewal it *sent*) has
run out, so it never admits anyone into a room another node may already serve.

A node whose process is gone from this same host (several nodes on one machine) is removed from
the directory by the next heartbeat of any node on the host, so its rooms are placed again at once
instead of after its lease.

Redis unreachable: rooms held here keep their participants; joins into them are accepted until
the local lease runs out; joins that need a placement get :class:`RoutingUnavailable`. When Redis
is back, the next heartbeat registers the node again and re-claims the rooms it still holds
(``SET NX``; a room placed elsewhere meanwhile is closed here).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from roomcast.log import event
from roomcast.rtc.routing import RoomElsewhere, RoutingUnavailable

from .redis import Keys, RedisError, unreachable

log = logging.getLogger("roomcast.cluster.placement")

_PLACE = """
local prefix = ARGV[1]
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner = string.match(cur, '^(%S+)')
  local url = redis.call('HGET', prefix .. ':node:' .. owner, 'url')
  if url then return {cur, url} end
end
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, id in ipairs(ids) do
  local url = redis.call('HGET', prefix .. ':node:' .. id, 'url')
  if url then
    local value = id .. ' ' .. redis.call('INCR', prefix .. ':epoch')
    redis.call('SET', KEYS[1], value, 'PX', tonumber(ARGV[2]))
    redis.call('ZINCRBY', KEYS[2], 1, id)
    return {value, url}
  end
  redis.call('ZREM', KEYS[2], id)
end
return false
"""

_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
if not cur then
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then return 1 end
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_OWNER = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local owner = string.match(cur, '^(%S+)')
local url = redis.call('HGET', ARGV[1] .. ':node:' .. owner, 'url')
if not url then return false end
return {owner, url}
"""

RoomKey = tuple[str, str]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


LostRoom = Callable[[str, str], Awaitable[None]]


@dataclass
class _Hold:
    value: str
    until: float  # monotonic: joins are accepted here until then without asking Redis
    placed: float  # monotonic


@dataclass(frozen=True)
class Owner:
    node_id: str
    url: str


class RoomPlacement:
    """This node's entry in the directory and the rooms it holds."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        node_id: str,
        public_url: str,
        lease_s: float,
        participants: Callable[[], int],
        is_open: Callable[[str, str], bool],
        on_lost: LostRoom,
        full: Callable[[], bool] = lambda: False,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.node_id = node_id
        self.public_url = public_url.rstrip("/")
        self.lease_s = lease_s
        self._participants = participants
        self._is_open = is_open
        self._full = full
        self._on_lost = on_lost
        self._place = redis.register_script(_PLACE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._owner = redis.register_script(_OWNER)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._held: dict[RoomKey, _Hold] = {}
        self._releasing: set[asyncio.Task[Any]] = set()
        self._alive_until = 0.0
        self.reachable = False

    @property
    def _ttl_ms(self) -> int:
        return int(self.lease_s * 1000)

    async def _forget_dead_neighbours(self) -> None:
        """Remove nodes of this host whose process no longer exists (a crash seen at once)."""
        ids = [str(i) for i in await self._redis.zrange(self._keys.nodes, 0, -1) if str(i) != self.node_id]
        if not ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hmget(self._keys.node(i), ["host", "pid"])
            found = await pipe.execute()
        for node_id, (host, pid) in zip(ids, found, strict=True):
            if host == self.host and pid and pid.isdigit() and not _process_exists(int(pid)):
                await self._redis.delete(self._keys.node(node_id))
                await self._redis.zrem(self._keys.nodes, node_id)
                event(log, "cluster.node_gone", node_id=node_id, pid=int(pid))

    def held(self) -> list[RoomKey]:
        return list(self._held)

    # -- directory ----------------------------------------------------------------------------------
    async def heartbeat(self) -> None:
        """Refresh this node's entry and load, then renew (or re-claim) the rooms held here."""
        sent = time.monotonic()
        load = len(self._held) + self._participants() / 1000
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    self._keys.node(self.node_id),
                    mapping={"url": self.public_url, "load": load, "host": self.host, "pid": self.pid},
                )
                pipe.pexpire(self._keys.node(self.node_id), self._ttl_ms)
                if self._full():  # no new rooms here (its rooms stay: the node key is what counts)
                    pipe.zrem(self._keys.nodes, self.node_id)
                else:
                    pipe.zadd(self._keys.nodes, {self.node_id: load})
                await pipe.execute()
            self._alive_until = sent + self.lease_s
            await self._forget_dead_neighbours()
            lost: list[RoomKey] = []
            renew: list[tuple[RoomKey, _Hold]] = []
            for key, hold in list(self._held.items()):
                if not self._is_open(*key) and sent - hold.placed > self.lease_s:
                    # Placed here, but the join failed or never came: free the room.
                    del self._held[key]
                    await self._release(keys=[self._keys.room(*key)], args=[hold.value])
                else:
                    renew.append((key, hold))
            if renew:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, hold in renew:
                        await self._renew(
                            keys=[self._keys.room(*key)], args=[hold.value, self._ttl_ms], client=pipe
                        )
                    renewed = await pipe.execute()
                for (key, hold), ok in zip(renew, renewed, strict=True):
                    if ok:
                        hold.until = sent + self.lease_s
                    elif self._held.get(key) is hold:
                        lost.append(key)
        except RedisError as exc:
            if not unreachable(exc):
                raise
            if self.reachable:
                event(log, "cluster.redis_unreachable", level=logging.WARNING, error=repr(exc))
            self.reachable = False
            return
        if not self.reachable:
            event(log, "cluster.directory_joined", node_id=self.node_id, url=self.public_url)
        self.reachable = True
        for key in lost:
            self._held.pop(key, None)
            event(log, "cluster.room_lost", level=logging.WARNING, app_key=key[0], room_id=key[1])
            try:
                await self._on_lost(*key)
            except Exception:
                log.exception("cluster.room_lost_failed")

    async def leave(self) -> None:
        """Leave the directory and give up every room (a clean stop)."""
        if self._releasing:
            await asyncio.wait(self._releasing, timeout=2.0)
        try:
            for key, hold in list(self._held.items()):
                await self._release(keys=[self._keys.room(*key)], args=[hold.value])
            await self._redis.delete(self._keys.node(self.node_id))
            await self._redis.zrem(self._keys.nodes, self.node_id)
        except RedisError as exc:
            if not unreachable(exc):
                raise
        self._held.clear()

    # -- rooms --------------------------------------------------------------------------------------
    async def gate(self, app_key: str, room_id: str) -> None:
        """The SFU's join gate: returns if the room is (now) served here."""
        key = (app_key, room_id)
        now = time.monotonic()
        hold = self._held.get(key)
        if hold is not None and min(hold.until, self._alive_until) > now:
            return
        try:
            found = await self._place(
                keys=[self._keys.room(app_key, room_id), self._keys.nodes],
                args=[self._keys.prefix, self._ttl_ms],
            )
        except RedisError as exc:
            if not unreachable(exc):
                raise
            raise RoutingUnavailable(
                "room routing is unavailable (the cluster's Redis cannot be reached); retry shortly"
            ) from None
        if not found:
            raise RoutingUnavailable("no node is available to serve the room; retry shortly")
        value, url = str(found[0]), str(found[1])
        owner = value.split(" ", 1)[0]
        if owner != self.node_id:
            raise RoomElsewhere(url, owner)
        self._held[key] = _Hold(value, now + self.lease_s, now)

    async def nodes(self) -> list[str]:
        """The alive nodes of the directory. Raises RedisError if unreachable."""
        ids = [str(i) for i in await self._redis.zrange(self._keys.nodes, 0, -1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.exists(self._keys.node(i))
            found = await pipe.execute()
        return [i for i, ok in zip(ids, found, strict=True) if ok]

    async def owner(self, app_key: str, room_id: str) -> Owner | None:
        """The alive node serving the room, if any (no placement). Raises RedisError if unreachable."""
        found = await self._owner(keys=[self._keys.room(app_key, room_id)], args=[self._keys.prefix])
        if not found:
            return None
        return Owner(str(found[0]), str(found[1]))

    async def release(self, app_key: str, room_id: str) -> None:
        """The room closed here: free its key (only if it is still ours)."""
        hold = self._held.pop((app_key, room_id), None)
        if hold is None:
            return
        task = asyncio.current_task()
        if task is not None:
            self._releasing.add(task)  # a clean stop waits for it before closing the client
        try:
            await self._release(keys=[self._keys.room(app_key, room_id)], args=[hold.value])
        except RedisError as exc:
            if not unreachable(exc):
                raise  # unreachable: the key expires by itself
        finally:
            if task is not None:
                self._releasing.discard(task)
