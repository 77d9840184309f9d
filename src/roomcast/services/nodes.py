"""Nodes: each roomcast process registers itself and renews a heartbeat lease in the database.

Work that belongs to a node (tasks it runs, uploads whose local files are on its disk, the room and
user sessions of its SFU) carries that node's id. Another node takes such work over only when its
owner is gone: it stopped cleanly, its lease expired, or it ran on this same host and its process
no longer exists (a crash found at once, without waiting for the lease). Taking over a node is a
compare-and-set on its row (``alive``/``stopped`` -> ``reaped``), so exactly one node does it.

After marking gone nodes, the reaper runs every registered take-over handler; a handler moves rows
whose owner is not an alive node (``store.ownership.orphaned``) to this node, each with a
compare-and-set on the owner column, and resumes or finishes that work. Rows a handler cannot
serve (a local file on another host) stay where they are, for a node that can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.log import event
from roomcast.store.ownership import ALIVE
from roomcast.store.ownership import orphaned as orphaned
from roomcast.store.tables import NodeRow, utcnow

log = logging.getLogger("roomcast.nodes")

STOPPED = "stopped"
REAPED = "reaped"

TakeOver = Callable[[], Awaitable[object]]
"""Moves rows owned by nodes that are not alive to this node, and resumes or finishes that work."""


def new_node_id() -> str:
    return f"n-{uuid.uuid4().hex[:20]}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    host: str
    pid: int
    state: str
    heartbeat_at: datetime
    lease_expires_at: datetime
    public_url: str | None


class NodeRegistry:
    """This process's node row, its heartbeat, and the reaper that takes over dead nodes' work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lease_s: float = 15.0,
        public_url: str | None = None,
        node_id: str | None = None,
    ) -> None:
        self._sessions = sessions
        self.node_id = node_id or new_node_id()
        self.lease_s = lease_s
        self.public_url = public_url
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._handlers: list[tuple[str, TakeOver]] = []
        self._lost_handlers: list[tuple[str, TakeOver]] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._reap_lock = asyncio.Lock()
        self.lease_lost = False

    def on_take_over(self, name: str, handler: TakeOver) -> None:
        """Register a handler; handlers run in registration order on every reaper pass."""
        self._handlers.append((name, handler))

    def on_lease_lost(self, name: str, handler: TakeOver) -> None:
        """Register a handler that gives up, locally, the work other nodes took from this one."""
        self._lost_handlers.append((name, handler))

    # -- lifecycle ----------------------------------------------------------------------------------
    async def register(self) -> None:
        now = utcnow()
        async with self._sessions.begin() as s:
            s.add(
                NodeRow(
                    node_id=self.node_id,
                    host=self.host,
                    pid=self.pid,
                    public_url=self.public_url,
                    state=ALIVE,
                    started_at=now,
                    heartbeat_at=now,
                    lease_expires_at=now + timedelta(seconds=self.lease_s),
                )
            )
        event(log, "node.registered", node_id=self.node_id, host=self.host, pid=self.pid)

    def start(self) -> None:
        """Heartbeat and reap in the background (every third of the lease)."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="node-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat and mark the node stopped: its unfinished work is free to take."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        now = utcnow()
        with contextlib.suppress(Exception):
            async with self._sessions.begin() as s:
                await s.execute(
                    update(NodeRow)
                    .where(NodeRow.node_id == self.node_id, NodeRow.state == ALIVE)
                    .values(state=STOPPED, stopped_at=now, heartbeat_at=now)
                )
        event(log, "node.stopped", node_id=self.node_id)

    async def _loop(self) -> None:
        interval = max(0.2, self.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node.heartbeat_failed")

    async def heartbeat(self) -> None:
        now = utcnow()
        async with self._sessions.begin() as s:
            res = await s.execute(
                update(NodeRow)
                .where(NodeRow.node_id == self.node_id, NodeRow.state == ALIVE)
                .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=self.lease_s))
            )
        if int(getattr(res, "rowcount", 0) or 0) == 0:
            await self._lost()

    async def _lost(self) -> None:
        """Another node judged this one dead (a pause longer than the lease) and took its work:
        give that work up here, then come back as a live node with what is still ours."""
        self.lease_lost = True
        event(log, "node.lease_lost", level=logging.ERROR, node_id=self.node_id)
        for name, handler in self._lost_handlers:
            try:
                await handler()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node.lease_lost_handler_failed", extra={"fields": {"handler": name}})
        now = utcnow()
        async with self._sessions.begin() as s:
            await s.execute(
                update(NodeRow)
                .where(NodeRow.node_id == self.node_id)
                .values(
                    state=ALIVE,
                    reaped_by=None,
                    heartbeat_at=now,
                    lease_expires_at=now + timedelta(seconds=self.lease_s),
                )
            )
        self.lease_lost = False
        event(log, "node.rejoined", node_id=self.node_id)

    # -- taking over ------------------------------------------------------------------------------
    async def nodes(self) -> list[NodeInfo]:
        async with self._sessions() as s:
            rows = (await s.execute(select(NodeRow).order_by(NodeRow.id))).scalars()
            return [
                NodeInfo(r.node_id, r.host, r.pid, r.state, r.heartbeat_at, r.lease_expires_at, r.public_url)
                for r in rows
            ]

    async def _candidates(self) -> list[NodeRow]:
        now = utcnow()
        async with self._sessions() as s:
            rows = list(
                (
                    await s.execute(
                        select(NodeRow).where(
                            NodeRow.node_id != self.node_id,
                            or_(
                                NodeRow.state == STOPPED,
                                NodeRow.state == ALIVE,
                            ),
                        )
                    )
                ).scalars()
            )
        out = []
        for r in rows:
            if r.state == STOPPED or r.lease_expires_at <= now:
                out.append(r)
            elif r.host == self.host and r.pid != self.pid and not _process_exists(r.pid):
                out.append(r)  # crashed on this host: no need to wait for its lease
        return out

    async def reap(self) -> list[str]:
        """Mark every gone node reaped, then let the handlers take the work of nodes not alive.

        Returns the ids of the nodes reaped by this call. Safe to run on several nodes at once.
        """
        if self.lease_lost:
            return []
        async with self._reap_lock:
            async with self._sessions() as s:
                mine = (
                    await s.execute(select(NodeRow.state).where(NodeRow.node_id == self.node_id))
                ).scalar_one_or_none()
            if mine != ALIVE:
                await self._lost()  # judged dead by another node: what was ours is theirs now
                return []
            taken: list[str] = []
            for r in await self._candidates():
                async with self._sessions.begin() as s:
                    res = await s.execute(
                        update(NodeRow)
                        .where(NodeRow.node_id == r.node_id, NodeRow.state == r.state)
                        .values(state=REAPED, reaped_by=self.node_id)
                    )
                if int(getattr(res, "rowcount", 0) or 0) != 1:
                    continue  # another node was faster
                event(log, "node.taken_over", node_id=r.node_id, by=self.node_id, was=r.state)
                taken.append(r.node_id)
            for name, handler in self._handlers:
                try:
                    await handler()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("node.take_over_failed", extra={"fields": {"handler": name}})
            return taken
