"""This node's membership in a cluster: shared throttling, the directory and room placement,
calls to other nodes, and the heartbeat that keeps them fresh. Built only with ``redis_url``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from roomcast.background import Background
from roomcast.config import Settings
from roomcast.domain.errors import NotFound, Unavailable
from roomcast.log import event
from roomcast.rtc.events import RoomClosed, RoomEvent
from roomcast.rtc.room import RoomManager
from roomcast.rtc.routing import RoomElsewhere, RoutingUnavailable
from roomcast.services.rooms import RoomService

from .placement import RoomPlacement
from .redis import Keys, RedisError, connect
from .rpc import Handler, NodeGone, NodeRpc
from .throttle import SharedNonceMemory, SharedRateLimiter

log = logging.getLogger("roomcast.cluster")


class Cluster:
    """Created with the app (the gateways need the shared limiter), started in its lifespan."""

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url
        self.settings = settings
        self.keys = Keys(settings.redis_key_prefix)
        self.redis = connect(settings.redis_url)
        self._blocking = connect(settings.redis_url, timeout_s=settings.rpc_timeout_s + 2.0)
        self.limiter = SharedRateLimiter(self.redis, self.keys)
        self.nonces = SharedNonceMemory(self.redis, self.keys)
        self.placement: RoomPlacement | None = None
        self.rpc: NodeRpc | None = None
        self._sfu: RoomManager | None = None
        self._bg = Background("cluster")
        self._pins: list[Callable[[str, str], bool]] = []

    @property
    def reachable(self) -> bool:
        """Whether the last heartbeat reached Redis."""
        return self.placement is not None and self.placement.reachable

    @property
    def node_id(self) -> str:
        assert self.placement is not None
        return self.placement.node_id

    async def start(self, node_id: str, sfu: RoomManager) -> None:
        """Join the directory (if Redis answers; otherwise the heartbeat keeps trying), gate the
        SFU's joins and serve calls from other nodes."""
        self._sfu = sfu
        self.placement = RoomPlacement(
            self.redis,
            self.keys,
            node_id=node_id,
            public_url=self.settings.resolved_public_url,
            lease_s=self.settings.node_lease_s,
            participants=lambda: sum(len(r.participants) for r in sfu.rooms()),
            is_open=lambda app_key, room_id: (
                sfu.get_room(app_key, room_id) is not None or any(pin(app_key, room_id) for pin in self._pins)
            ),
            on_lost=self._room_lost,
            full=lambda: len(sfu.rooms()) >= sfu.config.max_rooms,
        )
        self.rpc = NodeRpc(
            self.redis, self._blocking, self.keys, node_id=node_id, timeout_s=self.settings.rpc_timeout_s
        )
        for method, handler in RoomService(sfu).calls().items():  # no nodes: answers for rooms here
            self.rpc.handle(method, handler)
        self.rpc.start()
        sfu.gate = self.placement.gate
        sfu.events.add_handler(self._on_room_closed, types=(RoomClosed,))
        await self.placement.heartbeat()
        self._bg.spawn("heartbeat", self._heartbeat_loop())

    async def stop(self) -> None:
        await self._bg.close()
        if self._sfu is not None:
            self._sfu.gate = None
            self._sfu.events.remove_handler(self._on_room_closed)
        if self.rpc is not None:
            await self.rpc.stop()
        if self.placement is not None:
            await self.placement.leave()
        await self.redis.aclose()
        await self._blocking.aclose()

    def handle(self, method: str, handler: Handler) -> None:
        """Serve ``method`` for other nodes (e.g. starting a task on the room's node)."""
        assert self.rpc is not None
        self.rpc.handle(method, handler)

    def pin_rooms(self, pinned: Callable[[str, str], bool]) -> None:
        """Keep a room placed here while ``pinned(app_key, room_id)``, even with nobody in it
        (a recording waiting for its room's publishers)."""
        self._pins.append(pinned)

    async def call_other_nodes(self, method: str, params: dict[str, Any]) -> list[Any]:
        assert self.placement is not None and self.rpc is not None
        try:
            others = [n for n in await self.placement.nodes() if n != self.node_id]
        except RedisError as exc:
            raise Unavailable("the cluster's Redis cannot be reached", subject="node") from exc
        answers = await asyncio.gather(
            *(self.rpc.call(n, method, params) for n in others), return_exceptions=True
        )
        out = []
        for node_id, answer in zip(others, answers, strict=True):
            if isinstance(answer, BaseException):
                event(
                    log, "cluster.node_left_out", level=logging.WARNING, node_id=node_id, error=repr(answer)
                )
                continue
            out.append(answer)
        return out

    # -- tasks.TaskNodes (recordings, ingests) ------------------------------------------------------
    async def room_node(self, app_key: str, room_id: str) -> str | None:
        assert self.placement is not None
        try:
            await self.placement.gate(app_key, room_id)
        except RoomElsewhere as exc:
            return exc.node_id
        except RoutingUnavailable as exc:
            raise Unavailable(str(exc), subject="node") from None
        return None

    async def call(self, node_id: str, method: str, params: dict[str, Any]) -> Any:
        assert self.rpc is not None
        return await self.rpc.call(node_id, method, params)

    async def _heartbeat_loop(self) -> None:
        assert self.placement is not None
        interval = max(0.2, self.settings.node_lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.placement.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster.heartbeat_failed")

    def _on_room_closed(self, ev: RoomEvent) -> Any:
        if self.placement is not None:
            return self.placement.release(ev.app_key, ev.room_id)
        return None

    async def _room_lost(self, app_key: str, room_id: str) -> None:
        """Another node serves this room now: close it here; its clients reconnect there."""
        if self._sfu is not None and self._sfu.get_room(app_key, room_id) is not None:
            await self._sfu.evict_room(app_key, room_id, "moved")
            event(log, "cluster.room_moved", app_key=app_key, room_id=room_id)

    # -- calls on rooms served elsewhere -----------------------------------------------------------
    async def call_room_node(self, app_key: str, room_id: str, method: str, params: dict[str, Any]) -> Any:
        """Run ``method`` on the node serving the room. NotFound(room) if no alive node serves it."""
        assert self.placement is not None and self.rpc is not None
        try:
            owner = await self.placement.owner(app_key, room_id)
        except RedisError as exc:
            raise Unavailable("the cluster's Redis cannot be reached", subject="node") from exc
        if owner is None or owner.node_id == self.node_id:
            raise NotFound(f"room {room_id} does not exist", subject="room")
        try:
            return await self.rpc.call(
                owner.node_id, method, {"app_key": app_key, "room_id": room_id, **params}
            )
        except NodeGone:
            # Its node died with the room; the clients re-place it when they reconnect.
            raise NotFound(f"room {room_id} does not exist (its node is gone)", subject="room") from None
