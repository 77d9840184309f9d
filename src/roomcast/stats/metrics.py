"""``GET /metrics``: the node's state in the Prometheus text format (the standard client library).

Gauges are read when scraped: rooms, participants and published tracks from the SFU, the bitrate
forwarded to subscribers (the latest samples of the statistics recorder), tasks by kind and
state, the upload queue and the callback backlog from the database, and the event loop's lag,
measured every second by a background probe.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomcast.background import Background
from roomcast.rtc.room import RoomManager
from roomcast.stats.recorder import StatsRecorder
from roomcast.store.tables import CallbackRow, TaskRow, UploadRow

CONTENT_TYPE = CONTENT_TYPE_LATEST
LAG_PROBE_S = 1.0


class NodeMetrics:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sfu: RoomManager,
        stats: StatsRecorder | None = None,
    ) -> None:
        self._sessions = sessions
        self._sfu = sfu
        self._stats = stats
        self._bg = Background("metrics")
        self.lag_s = 0.0
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rooms = Gauge("roomcast_rooms", "Rooms open on this node", registry=r)
        self.participants = Gauge(
            "roomcast_participants", "Participants in the rooms of this node", ["hidden"], registry=r
        )
        self.tracks = Gauge("roomcast_tracks", "Published tracks", ["kind"], registry=r)
        self.forwarded = Gauge(
            "roomcast_forwarded_bitrate_bps", "Bitrate forwarded to subscribers (latest samples)", registry=r
        )
        self.tasks = Gauge("roomcast_tasks", "Tasks by kind and state", ["kind", "state"], registry=r)
        self.uploads = Gauge("roomcast_uploads", "Upload queue rows by state", ["state"], registry=r)
        self.callbacks = Gauge("roomcast_callbacks", "Callback outbox rows by state", ["state"], registry=r)
        self.loop_lag = Gauge("roomcast_event_loop_lag_seconds", "Event-loop lag (last probe)", registry=r)

    def start(self) -> None:
        self._bg.spawn("lag-probe", self._probe())

    async def stop(self) -> None:
        await self._bg.close()

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self.lag_s = max(0.0, loop.time() - before - LAG_PROBE_S)

    async def render(self) -> bytes:
        rooms = self._sfu.rooms()
        self.rooms.set(len(rooms))
        people = {"false": 0, "true": 0}
        kinds: dict[str, int] = {}
        for room in rooms:
            for p in room.participants.values():
                people["true" if p.hidden else "false"] += 1
            for pt in room.published_tracks():
                kinds[pt.info.kind.value] = kinds.get(pt.info.kind.value, 0) + 1
        for hidden, n in people.items():
            self.participants.labels(hidden=hidden).set(n)
        self.tracks.clear()
        for kind, n in kinds.items():
            self.tracks.labels(kind=kind).set(n)
        self.forwarded.set(self._stats.forwarded_bps(time.time()) if self._stats else 0.0)
        async with self._sessions() as s:
            tasks = (
                await s.execute(
                    select(TaskRow.kind, TaskRow.state, func.count()).group_by(TaskRow.kind, TaskRow.state)
                )
            ).all()
            uploads = (await s.execute(select(UploadRow.state, func.count()).group_by(UploadRow.state))).all()
            callbacks = (
                await s.execute(
                    select(CallbackRow.state, func.count())
                    .where(CallbackRow.state.not_in(("delivered",)))
                    .group_by(CallbackRow.state)
                )
            ).all()
        self.tasks.clear()
        for kind, state, n in tasks:
            self.tasks.labels(kind=kind, state=state).set(n)
        self.uploads.clear()
        for state, n in uploads:
            self.uploads.labels(state=state).set(n)
        self.callbacks.clear()
        for state, n in callbacks:
            self.callbacks.labels(state=state).set(n)
        self.loop_lag.set(self.lag_s)
        return generate_latest(self.registry)
